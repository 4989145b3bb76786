r"""Markov perfect equilibrium of the capacity game (Pakes and McGuire 1994).

With values :math:`V_i(s)` the stage game at state :math:`s` is

.. math::

    U_i(s, x) = \pi_i(s, x) + \beta \sum_{s'} \prod_j T(k_j' \mid k_j, x_j)\, V_i(s'),

and an MPE is a fixed point :math:`V_i(s) = U_i(s, \sigma(s))` where :math:`\sigma(s)` is
a (selected) Nash equilibrium of :math:`U(s, \cdot)`. Every step solves the stage games
of all :math:`K^N` states in one batch with :func:`nashrl.equilibrium.solve`. Two ways to
the fixed point, tried in this order by ``method="auto"``:

1. ``policy_iteration``: solve the stage games at :math:`V`, then set :math:`V` to the
   *exact* value of the selected profile, :math:`(I - \beta P_\sigma)^{-1} r_\sigma`
   (Pakes-McGuire with policy evaluation). It ends in a few steps unless the selected
   equilibria keep switching;
2. ``value_iteration``: :math:`V \leftarrow U(\cdot, \sigma)` (Jacobi sweeps), then damped
   sweeps :math:`V \leftarrow d V + (1-d)\, U` with :math:`d = 0.5, 0.9` if it still moves.

Whatever the route, the final profile :math:`\sigma` is verified the same way: its exact
values :math:`V^\sigma`, the Nash gap of :math:`\sigma` in the stage games at
:math:`V^\sigma`, and each firm's exact best response (a single-agent dynamic program,
:func:`nashrl.theory.mdp.optimal_values`) against the rivals' strategies. By the one-shot
deviation principle :math:`\sigma` is an MPE iff that best-response gain is zero;
``converged`` means both gaps are within ``1e-6`` of the value scale, and the values
returned are :math:`V^\sigma`. A result that fails says so (``method`` names the route and
whether it reached a fixed point, ``best_response_gain`` the distance).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import torch

from nashrl.equilibrium import solve
from nashrl.equilibrium.payoffs import nash_gap
from nashrl.theory.mdp import optimal_values, policy_value

#: An investment is in an equilibrium strategy's support when played with at least this probability.
SUPPORT_TOL = 1e-6


@dataclass
class MarkovPerfectEquilibrium:
    states: np.ndarray  # [S, N] capacity levels
    strategies: list[np.ndarray]  # per firm [S, A]
    values: np.ndarray  # [S, N]
    stage_gap: np.ndarray  # [S] Nash gap of the stage games at the fixed point
    iterations: int
    converged: bool
    method: str = "policy_iteration"
    best_response_gain: float = 0.0  # max over firms and states of V^BR - V (exact)

    def expected_investment(self, grid: np.ndarray) -> np.ndarray:
        return np.stack([s @ grid for s in self.strategies], axis=1)

    def ergodic(self, market) -> np.ndarray:
        """``[S]`` stationary distribution of the state under the equilibrium's play."""
        return stationary_distribution(market, self.joint())

    def joint(self) -> np.ndarray:
        """``[S, A_1, ..., A_N]`` joint action distribution at every state."""
        joint = self.strategies[0]
        for s in self.strategies[1:]:
            joint = joint[..., None] * s.reshape(s.shape[0], *([1] * (joint.ndim - 1)), -1)
        return joint


def _einsum_spec(n: int) -> str:
    letters = string.ascii_lowercase
    cur, act, nxt = letters[:n], letters[n : 2 * n], letters[2 * n : 3 * n]
    return ",".join(f"{cur[j]}{act[j]}{nxt[j]}" for j in range(n)), cur, act, nxt


def _cached(market, name: str, build) -> np.ndarray:
    """A read-only array computed once per market (markets do not change after construction):
    policy and value iteration use the flows and transitions at every step."""
    cache = market.__dict__.setdefault("_mpe_arrays", {})
    if name not in cache:
        cache[name] = build()
        cache[name].setflags(write=False)
    return cache[name]


def transition_tensor(market) -> np.ndarray:
    """``T[s, x_1, ..., x_N, s']``: probability of moving from state s to s' under joint investment x."""

    def build():
        n, k = market.n_firms, market.levels
        factors, cur, act, nxt = _einsum_spec(n)
        t = np.einsum(f"{factors}->{cur}{act}{nxt}", *([market.moves] * n))
        return t.reshape(len(market.state_list), *market.action_sizes, k**n)

    return _cached(market, "transitions", build)


def stage_games(market, values: np.ndarray) -> np.ndarray:
    """``[S, N, A, ..., A]`` payoffs of every state's stage game given continuation ``values``."""
    n, k = market.n_firms, market.levels
    factors, cur, act, nxt = _einsum_spec(n)
    games = []
    for i in range(n):
        v_i = values[:, i].reshape((k,) * n)
        expected = np.einsum(f"{factors},{nxt}->{cur}{act}", *([market.moves] * n), v_i)  # [k..., x...]
        games.append(expected.reshape(len(market.state_list), *market.action_sizes))
    continuation = np.stack(games, axis=1)
    return _flows(market) + market.discount * continuation


def target_variance(market, values: np.ndarray) -> np.ndarray:
    r"""``[S, A_1, ..., A_N, N]``: the variance of a one-step TD target
    :math:`r_i(s, x) + \delta V_i(s')` after joint investment :math:`x` in state :math:`s`, from
    the random next state alone (the flow is deterministic):
    :math:`\delta^2 \big(E[V_i(s')^2] - E[V_i(s')]^2\big)`, :math:`s' \sim T(\cdot \mid s, x)`.
    With the MPE's ``values`` it is the noise no learner can avoid when it estimates
    :math:`Q_i(s, x)` from sampled transitions (``benchmarks/capacity_margins.py``)."""
    n_states = len(market.state_list)
    trans = transition_tensor(market).reshape(n_states, -1, n_states)
    mean = trans @ values
    variance = market.discount**2 * np.maximum(trans @ values**2 - mean**2, 0.0)
    return variance.reshape(n_states, *market.action_sizes, values.shape[1])


def _flows(market) -> np.ndarray:
    return _cached(market, "flows", lambda: np.stack([market.payoff_table(s) for s in market.state_list]))


def transition_matrix(market, joint: np.ndarray) -> np.ndarray:
    """``[S, S']`` state transitions when play at state s is the joint distribution ``joint[s]``."""
    flat = joint.reshape(joint.shape[0], -1)
    return np.einsum("sa,sat->st", flat, transition_tensor(market).reshape(*flat.shape, -1))


def profile_values(market, joint: np.ndarray) -> np.ndarray:
    """Exact values ``[S, N]`` of playing the joint distribution ``joint [S, A_1..A_N]`` forever."""
    n_states = joint.shape[0]
    flat = joint.reshape(n_states, -1)
    rewards = np.einsum("sa,sna->sn", flat, _flows(market).reshape(n_states, market.n_firms, -1))
    return policy_value(rewards, transition_matrix(market, joint), market.discount)


def stationary_distribution(market, joint: np.ndarray) -> np.ndarray:
    r"""``[S]`` stationary distribution :math:`\mu P_\sigma = \mu` of the state when play at
    state s is the joint distribution ``joint[s]`` ``[S, A_1..A_N]`` (an equilibrium's, or a
    learned greedy policy's as one-hot rows; :func:`nashrl.theory.ccp.stationary`)."""
    from nashrl.theory.ccp import stationary

    return stationary(torch.as_tensor(transition_matrix(market, joint))).numpy()


def best_response_gain(market, strategies: list[np.ndarray]) -> np.ndarray:
    r"""Per firm, :math:`\max_s V^{BR}_i(s) - V^\sigma_i(s)` against the rivals' (mixed) strategies."""
    n = market.n_firms
    v_sigma = profile_values(market, MarkovPerfectEquilibrium(None, strategies, None, None, 0, False).joint())
    flows, trans = _flows(market), transition_tensor(market)
    gains = []
    for i in range(n):
        weight = _rivals_joint(strategies, i)  # [S, A_1..A_N], constant along firm i's axis
        rest = tuple(1 + j for j in range(n) if j != i)
        reward = (weight * flows[:, i]).sum(axis=rest)  # [S, A_i]
        transition = (weight[..., None] * trans).sum(axis=rest)  # [S, A_i, S']
        v_best, _ = optimal_values(reward, transition, market.discount)
        gains.append(float(np.max(v_best - v_sigma[:, i])))
    return np.array(gains)


def own_action_payoffs(market, values: np.ndarray, strategies: list[np.ndarray]) -> list[np.ndarray]:
    r"""Per firm, ``[S, A]``: :math:`U_i(s, a_i, \sigma_{-i}(s))`, the stage-game payoff of each own
    investment against the rivals' strategies, with continuation ``values``. At an MPE (``values``
    its own) the support of :math:`\sigma_i(s)` attains the row's maximum; the margin to the next
    investment says how sharply the equilibrium determines the firm's choice there, and
    ``max_a U_i - U_i(s, a')`` is what playing :math:`a'` for one period costs the firm."""
    games = stage_games(market, values)
    out = []
    for i in range(market.n_firms):
        rest = tuple(1 + j for j in range(market.n_firms) if j != i)
        out.append((_rivals_joint(strategies, i) * games[:, i]).sum(axis=rest))
    return out


def _rivals_joint(strategies: list[np.ndarray], i: int) -> np.ndarray:
    """``[S, A_1..A_N]`` product of the rivals' strategies, constant along firm i's axis."""
    n = len(strategies)
    out = np.ones((strategies[0].shape[0],) + (1,) * n)
    for j, s in enumerate(strategies):
        if j == i:
            continue
        shape = [s.shape[0]] + [1] * n
        shape[1 + j] = s.shape[1]
        out = out * s.reshape(shape)
    return out


def _solve_stage(market, values, selection):
    sol = solve(torch.as_tensor(stage_games(market, values)), selection=selection)
    return sol, [s.numpy() for s in sol.strategies]


def solve_mpe(
    market,
    *,
    selection: str = "pareto",
    tol: float = 1e-9,
    max_iter: int = 5000,
    method: str = "auto",
    policy_steps: int = 100,
) -> MarkovPerfectEquilibrium:
    """An MPE of :class:`~nashrl.markets.capacity.CapacityMarket` (see the module docstring).

    ``method``: ``"auto"`` (policy iteration, then value iteration with damping if needed),
    ``"policy_iteration"`` or ``"value_iteration"``. ``tol`` is relative to the largest
    value; ``max_iter`` bounds the value-iteration sweeps, ``policy_steps`` the policy
    evaluations.
    """
    if method not in ("auto", "policy_iteration", "value_iteration"):
        raise ValueError(f"method: expected 'auto', 'policy_iteration' or 'value_iteration', got {method!r}")
    values = np.zeros((len(market.state_list), market.n_firms))
    iterations, fixed, route = 0, False, method
    if method in ("auto", "policy_iteration"):
        route = "policy_iteration"
        for _ in range(policy_steps):
            iterations += 1
            sol, strategies = _solve_stage(market, values, selection)
            new = profile_values(market, MarkovPerfectEquilibrium(None, strategies, None, None, 0, False).joint())
            change = np.max(np.abs(new - values))
            values = new
            if change < tol * max(1.0, np.abs(values).max()):
                fixed = True
                break
    if not fixed and method in ("auto", "value_iteration"):
        for damping in (0.0, 0.5, 0.9):
            route = "value_iteration" if damping == 0 else f"damped_value_iteration({damping})"
            for _ in range(max_iter):
                iterations += 1
                sol, _ = _solve_stage(market, values, selection)
                new = sol.values.numpy()
                change = np.max(np.abs(new - values))
                values = damping * values + (1 - damping) * new
                if change < tol * max(1.0, np.abs(values).max()):
                    fixed = True
                    break
            if fixed:
                break
    _, strategies = _solve_stage(market, values, selection)
    # Verify the profile itself: its exact values, its stage games there, each firm's exact best response.
    exact = profile_values(market, MarkovPerfectEquilibrium(None, strategies, None, None, 0, False).joint())
    games = torch.as_tensor(stage_games(market, exact))
    stage_gap = nash_gap(games, [torch.as_tensor(s) for s in strategies]).numpy()
    gain = float(best_response_gain(market, strategies).max())
    scale = max(1.0, float(np.abs(exact).max()))
    return MarkovPerfectEquilibrium(
        states=np.stack(market.state_list),
        strategies=strategies,
        values=exact,
        stage_gap=stage_gap,
        iterations=iterations,
        converged=bool(gain <= 1e-6 * scale and stage_gap.max() <= 1e-6 * scale),
        method=route if fixed else f"{route} (no fixed point within the limit)",
        best_response_gain=gain,
    )


def mpe_rows(market, selection: str = "pareto") -> list[dict]:
    """Benchmark rows of the computed MPE, one per state; labelled ``mpe_not_converged`` (never
    ``mpe``) when the profile is not verified, with its best-response gain. Each row carries the
    state's ``ergodic_weight`` under the MPE, each firm's ``support`` (the investments it
    plays with positive probability) and ``stage_payoffs`` (per firm, each own investment's payoff
    in the MPE's stage game there, :func:`own_action_payoffs`), which evaluation compares a
    learned policy with."""
    from nashrl.theory.rows import row

    mpe = solve_mpe(market, selection=selection)
    invest = mpe.expected_investment(market.grids[0])
    weights = mpe.ergodic(market)
    supports = [
        [[float(g) for g in grid[strategy[k] > SUPPORT_TOL]] for strategy, grid in zip(mpe.strategies, market.grids)]
        for k in range(len(mpe.states))
    ]
    payoffs = own_action_payoffs(market, mpe.values, mpe.strategies)
    stage_payoffs = [[p[k].tolist() for p in payoffs] for k in range(len(mpe.states))]
    concept = "mpe" if mpe.converged else "mpe_not_converged"
    return [
        row(
            concept,
            x,
            vals,
            [int(k) for k in s],
            s,
            converged=bool(mpe.converged),
            method=mpe.method,
            best_response_gain=float(mpe.best_response_gain),
            stage_gap=float(gap),
            ergodic_weight=float(w),
            support=support,
            stage_payoffs=payoff,
        )
        for s, x, vals, gap, w, support, payoff in zip(
            mpe.states, invest, mpe.values, mpe.stage_gap, weights, supports, stage_payoffs
        )
    ]
