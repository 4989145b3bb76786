r"""Stackelberg duopoly as a sequential-move stochastic game.

Each period has two steps. At step 1 (phase 0) the leader ``firm_0`` chooses its
quantity; the follower's action at this step is ignored. At step 2 (phase 1) the
follower ``firm_1`` observes the leader's quantity and chooses its own; the leader's
action at this step is ignored and both are paid Cournot profits
:math:`(a - b(q_L+q_F) - c_i) q_i`. Nash-Q on this game is backward induction: the
leader's value at phase 0 is its payoff in the follower's equilibrium response at
phase 1, so what it learns is the subgame-perfect outcome, not the Cournot one.

Config: ``a``, ``b``, ``costs`` (leader, follower), ``quantities``, ``episode_length``
(periods; an episode has twice as many steps). Observation:
``[phase, leader quantity index / (A - 1)]`` (the second entry is 0 in phase 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, MarketEnv
from nashrl.markets.cournot import cournot_demand
from nashrl.theory import cournot, stackelberg


class StackelbergMarket(MarketEnv):
    market_type = "stackelberg"
    action_label = "quantity"
    metadata = {**MarketEnv.metadata, "name": "stackelberg_v0"}
    sequential = True
    deterministic = True
    FIELDS = COMMON_FIELDS | {"a", "b", "costs", "quantities", "n_firms"}

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        if params.get("n_firms", 2) != 2:
            raise v.ConfigError(f"market.n_firms: Stackelberg is a duopoly, expected 2, got {params['n_firms']!r}")
        self.a, self.b, self.costs = cournot_demand(params, 2)
        q_l = stackelberg.subgame_perfect(self.a, self.b, *self.costs)[0]
        grid = v.grid(params.get("quantities", {"low": 0.0, "high": 1.5 * q_l, "size": 13}), "market.quantities")
        if grid.min() < 0:
            raise v.ConfigError(f"market.quantities: expected quantities >= 0, got min {grid.min()}")
        params = dict(params)
        params["episode_length"] = 2 * v.integer(params.get("episode_length", 1), "market.episode_length")
        super().__init__(2, [grid, grid], params)

    @property
    def observation_size(self) -> int:
        return 2

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([0, 0], dtype=np.int64)  # (phase, leader's action index)

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if state[0] == 0:
            return np.array([1, actions[0]], dtype=np.int64)
        return np.array([0, 0], dtype=np.int64)

    def observe(self, state: np.ndarray) -> np.ndarray:
        return np.array([state[0], state[1] / max(len(self.grids[0]) - 1, 1)], dtype=np.float64)

    def movers(self, state: np.ndarray) -> np.ndarray:
        """Which firm's action matters at ``state``: the leader in phase 0, the follower in phase 1."""
        return np.array([state[0] == 0, state[0] == 1])

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if state[0] == 0:
            return np.zeros(actions.shape, dtype=float)
        q = np.stack([np.broadcast_to(self.grids[0][state[1]], actions.shape[:-1]), self.grids[1][actions[..., 1]]], -1)
        return cournot.profits(self.a, self.b, self.costs, q)

    def representative_states(self) -> list[np.ndarray]:
        """Every state: phase 0, then phase 1 after each leader quantity."""
        return [np.array([0, 0])] + [np.array([1, i]) for i in range(len(self.grids[0]))]

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """Subgame-perfect outcome (deterrence corners included), Cournot-Nash, and backward
        induction on the grid."""
        from nashrl.theory.grid import grid_subgame_perfect
        from nashrl.theory.rows import row

        (c_l, c_f), costs = self.costs, self.costs
        q_s = stackelberg.subgame_perfect(self.a, self.b, c_l, c_f)
        q_c = cournot.nash(self.a, self.b, costs)
        grid = grid_subgame_perfect(self)
        return [
            row(
                "subgame_perfect",
                q_s,
                cournot.profits(self.a, self.b, costs, q_s),
                outcome=stackelberg.outcome_kind(self.a, self.b, c_l, c_f),
            ),
            row("cournot_nash", q_c, cournot.profits(self.a, self.b, costs, q_c)),
            row("grid_subgame_perfect", grid["actions"], grid["profits"]),
        ]
