r"""Markov perfect equilibrium of the capacity game by value iteration (Pakes-McGuire).

With values :math:`V_i(s)` the stage game at state :math:`s` is

.. math::

    U_i(s, x) = \pi_i(s, x) + \beta \sum_{s'} \prod_j T(k_j' \mid k_j, x_j)\, V_i(s'),

and an MPE is a fixed point :math:`V_i(s) = U_i(s, \sigma(s))` where :math:`\sigma(s)` is
a (selected) Nash equilibrium of :math:`U(s, \cdot)`. Every sweep solves the stage games
of all :math:`K^N` states in one batch with :func:`nashrl.equilibrium.solve`; by the
one-shot deviation principle a fixed point whose stage games are all solved exactly
is an MPE.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import torch

from nashrl.equilibrium import solve


@dataclass
class MarkovPerfectEquilibrium:
    states: np.ndarray  # [S, N] capacity levels
    strategies: list[np.ndarray]  # per firm [S, A]
    values: np.ndarray  # [S, N]
    stage_gap: np.ndarray  # [S] Nash gap of the stage games at the fixed point
    iterations: int
    converged: bool

    def expected_investment(self, grid: np.ndarray) -> np.ndarray:
        return np.stack([s @ grid for s in self.strategies], axis=1)


def stage_games(market, values: np.ndarray) -> np.ndarray:
    """``[S, N, A, ..., A]`` payoffs of every state's stage game given continuation ``values``."""
    n, k = market.n_firms, market.levels
    letters = string.ascii_lowercase
    cur, act, nxt = letters[:n], letters[n : 2 * n], letters[2 * n : 3 * n]
    spec = ",".join(f"{cur[j]}{act[j]}{nxt[j]}" for j in range(n)) + f",{nxt}->{cur}{act}"
    games = []
    for i in range(n):
        v_i = values[:, i].reshape((k,) * n)
        expected = np.einsum(spec, *([market.moves] * n), v_i)  # [k..., x...]
        games.append(expected.reshape(len(market.state_list), *market.action_sizes))
    continuation = np.stack(games, axis=1)
    flows = np.stack([market.payoff_table(s) for s in market.state_list])
    return flows + market.discount * continuation


def solve_mpe(market, *, selection: str = "pareto", tol: float = 1e-9, max_iter: int = 5000, damping: float = 0.0):
    """Value iteration to an MPE of :class:`~nashrl.markets.capacity.CapacityMarket`."""
    values = np.zeros((len(market.state_list), market.n_firms))
    converged = False
    iterations = 0
    while iterations < max_iter and not converged:
        iterations += 1
        sol = solve(torch.as_tensor(stage_games(market, values)), selection=selection)
        new = sol.values.numpy()
        change = np.max(np.abs(new - values))
        values = damping * values + (1 - damping) * new
        converged = change < tol * max(1.0, np.abs(values).max())
    sol = solve(torch.as_tensor(stage_games(market, values)), selection=selection)
    return MarkovPerfectEquilibrium(
        states=np.stack(market.state_list),
        strategies=[s.numpy() for s in sol.strategies],
        values=sol.values.numpy(),
        stage_gap=sol.nash_gap.numpy(),
        iterations=iterations,
        converged=converged and bool(sol.solved.all()),
    )
