r"""Exact equilibria of a market's *discretised* stage game (the game the agents actually play).

Closed forms live on the continuum; a learned policy lives on the action grid, where
the stage game at state :math:`s` is the finite game ``market.payoff_table(s)``. Its pure
equilibria are enumerated exactly (often several, e.g. Cournot on an integer grid), and
one is selected with the same rule Nash-Q uses.

Aggregative markets with more joint actions than a table can hold (many firms) are solved from
their exact profits by best-reply dynamics (:func:`~nashrl.equilibrium.aggregative.solve_aggregative`):
every equilibrium reported is exact (Nash gap 0 on the grid), but only those the dynamics reach
from their starts are listed.
"""

from __future__ import annotations

import numpy as np
import torch

from nashrl.equilibrium import pure_equilibrium_mask, solve


def grid_equilibria(market, state: np.ndarray, selection: str = "pareto") -> dict:
    if not market.has_payoff_table:
        return _aggregative_grid_equilibria(market, state, selection)
    table = market.payoff_table(state)
    game = torch.as_tensor(table[None])
    pure = np.argwhere(pure_equilibrium_mask(game)[0].numpy())
    sol = solve(game, selection=selection)
    strategies = [s[0].numpy() for s in sol.strategies]
    expected_action = [float(x @ g) for x, g in zip(strategies, market.grids)]
    return {
        "pure_profiles": [market.action_values(p).tolist() for p in pure],
        "selected_actions": expected_action,
        "selected_indices": [int(x.argmax()) for x in strategies],
        "selected_is_pure": bool(all(x.max() > 1 - 1e-9 for x in strategies)),
        "selected_profits": sol.values[0].tolist(),
        "nash_gap": float(sol.nash_gap[0]),
    }


def market_deviations(market, state: np.ndarray):
    """The deviation oracle (:mod:`~nashrl.equilibrium.aggregative`) of an aggregative market's
    exact profits at ``state``."""

    def deviations(profile: torch.Tensor, firm: int) -> torch.Tensor:
        x = market.contribution_values(profile.cpu().numpy())  # [B, N]
        rivals = x.sum(1) - x[:, firm]
        return torch.as_tensor(market.aggregate_profits(state, firm, rivals), dtype=torch.float64)

    return deviations


def _aggregative_grid_equilibria(market, state: np.ndarray, selection: str) -> dict:
    from nashrl.equilibrium.aggregative import candidate_equilibria, selected_equilibria

    found = candidate_equilibria(market_deviations(market, state), market.action_sizes, 1, tol=1e-12)
    sol = selected_equilibria(found, market.action_sizes, selection, 1e-12, torch.float64)
    chosen = np.array([int(s[0].argmax()) for s in sol.strategies])
    profiles = found.profiles[0][found.valid[0]].numpy()
    return {
        "pure_profiles": [market.action_values(p).tolist() for p in profiles],
        "selected_actions": market.action_values(chosen).tolist(),
        "selected_indices": chosen.tolist(),
        "selected_is_pure": True,
        "selected_profits": sol.values[0].tolist(),
        "nash_gap": float(sol.nash_gap[0]),
        "search": "best replies from the lowest, highest and middle profiles (aggregative market)",
    }


def grid_subgame_perfect(market) -> dict:
    """Backward induction on the grid of :class:`~nashrl.markets.stackelberg.StackelbergMarket`.

    The follower best-responds to every leader quantity (ties: the response better for
    the leader); the leader picks the quantity with the highest resulting profit.
    """
    grid_l, grid_f = market.grids
    best = None
    for i_l in range(len(grid_l)):
        profits = market.stage_profits(
            np.array([1, i_l]), np.stack([np.zeros(len(grid_f), int), np.arange(len(grid_f))], 1)
        )
        responses = np.flatnonzero(profits[:, 1] >= profits[:, 1].max() - 1e-12)
        i_f = responses[np.argmax(profits[responses, 0])]
        if best is None or profits[i_f, 0] > best[2][0] + 1e-12:
            best = (i_l, int(i_f), profits[i_f])
    i_l, i_f, prof = best
    return {"indices": [i_l, i_f], "actions": [float(grid_l[i_l]), float(grid_f[i_f])], "profits": prof.tolist()}
