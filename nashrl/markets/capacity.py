r"""Capacity investment dynamic oligopoly in the style of Ericson and Pakes (1995).

Firm :math:`i` has capacity level :math:`k_i \in \{0, \dots, K-1\}` (capacity
:math:`\kappa_i = k_i \cdot` ``capacity_step``). Each period:

1. product market: capacity-constrained Cournot with :math:`P = a - bQ`, i.e. the Nash
   equilibrium of :math:`q_i \in [0, \kappa_i]`, paying :math:`\pi^{pm}_i(k)`;
2. firms choose investments :math:`x_i` on a grid at cost ``investment_cost`` :math:`\cdot x_i`;
3. capacity moves up one level with probability :math:`\alpha x_i / (1 + \alpha x_i)`
   and, independently, down one level with probability :math:`\delta` (depreciation),
   within ``[0, K-1]``.

Per-period profit: :math:`\pi^{pm}_i(k) - \text{investment\_cost}\cdot x_i`. With
:math:`K^N` states the Markov perfect equilibrium is computed exactly
(:mod:`nashrl.theory.capacity`). Observation: :math:`k_i / (K-1)` for every firm.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, MarketEnv
from nashrl.markets.cournot import cournot_demand


def constrained_cournot(a: float, b: float, costs: np.ndarray, capacities: np.ndarray, iters: int = 500) -> np.ndarray:
    """Nash quantities with :math:`0 \\le q_i \\le \\kappa_i` by Gauss-Seidel best responses."""
    q = np.zeros(len(costs))
    for _ in range(iters):
        previous = q.copy()
        for i in range(len(costs)):
            others = q.sum() - q[i]
            q[i] = np.clip((a - costs[i] - b * others) / (2 * b), 0.0, capacities[i])
        if np.max(np.abs(q - previous)) < 1e-13:
            break
    return q


MAX_STATES = 200_000


class CapacityMarket(MarketEnv):
    market_type = "capacity"
    action_label = "investment"
    metadata = {**MarketEnv.metadata, "name": "capacity_v0"}
    stage_game_is_benchmark = False  # investment pays tomorrow
    FIELDS = COMMON_FIELDS | {
        "n_firms",
        "a",
        "b",
        "costs",
        "capacity_levels",
        "capacity_step",
        "investments",
        "investment_cost",
        "alpha",
        "depreciation",
        "initial_capacity",
    }

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 2))
        self.a, self.b, self.costs = cournot_demand(params, n)
        self.levels = v.integer(params.get("capacity_levels", 5), "market.capacity_levels", minimum=2)
        self.capacity_step = v.number(params.get("capacity_step", 1.5), "market.capacity_step", positive=True)
        grid = v.grid(params.get("investments", [0.0, 0.5, 1.0, 2.0]), "market.investments")
        if grid.min() < 0:
            raise v.ConfigError(f"market.investments: expected investments >= 0, got min {grid.min()}")
        self.investment_cost = v.number(params.get("investment_cost", 1.0), "market.investment_cost", nonneg=True)
        self.alpha = v.number(params.get("alpha", 1.5), "market.alpha", positive=True)
        self.depreciation = v.number(params.get("depreciation", 0.2), "market.depreciation", nonneg=True)
        if self.depreciation > 1:
            raise v.ConfigError(f"market.depreciation: expected a probability in [0, 1], got {self.depreciation}")
        init = params.get("initial_capacity", "random")
        if init != "random":
            init = v.integer(init, "market.initial_capacity", minimum=0)
            if init >= self.levels:
                raise v.ConfigError(f"market.initial_capacity: expected 'random' or a level below {self.levels}")
        self.initial_capacity = init
        params = {"discount": 0.925, **params}
        if self.levels**n > MAX_STATES:
            raise v.ConfigError(
                f"market.capacity_levels: {self.levels}^{n} = {float(self.levels) ** n:.3g} states; expected at most "
                f"{MAX_STATES:,} (the state space is enumerated for the MPE)"
            )
        v.joint_actions([len(grid)] * n)
        self.state_list = [np.array(s) for s in itertools.product(range(self.levels), repeat=n)]
        self.product_market = {tuple(s): self._product_market_profits(s) for s in self.state_list}
        self.moves = self._capacity_moves(grid)
        super().__init__(n, [grid] * n, params)

    def _product_market_profits(self, levels: np.ndarray) -> np.ndarray:
        q = constrained_cournot(self.a, self.b, self.costs, levels * self.capacity_step)
        return (max(self.a - self.b * q.sum(), 0.0) - self.costs) * q

    def _capacity_moves(self, grid: np.ndarray) -> np.ndarray:
        """``T[k, x, k']``: one firm's probability of moving from level k to k' when investing x."""
        up = self.alpha * grid / (1 + self.alpha * grid)
        t = np.zeros((self.levels, len(grid), self.levels))
        for k in range(self.levels):
            hi, lo = min(k + 1, self.levels - 1), max(k - 1, 0)
            t[k, :, hi] += up * (1 - self.depreciation)
            t[k, :, lo] += (1 - up) * self.depreciation
            t[k, :, k] += up * self.depreciation + (1 - up) * (1 - self.depreciation)
        return t

    @property
    def observation_size(self) -> int:
        return self.n_firms

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        if self.initial_capacity == "random":
            return rng.integers(0, self.levels, size=self.n_firms)
        return np.full(self.n_firms, self.initial_capacity)

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.choice(self.levels, p=self.moves[k, x]) for k, x in zip(state, actions)])

    def observe(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=float) / (self.levels - 1)

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        spend = self.investment_cost * self.action_values(actions)
        return self.product_market[tuple(int(k) for k in state)] - spend

    def representative_states(self) -> list[np.ndarray]:
        return self.state_list

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """The computed MPE's expected investment and values in every state (flagged when not verified)."""
        from nashrl.theory.capacity import mpe_rows

        return mpe_rows(self, selection)

    def finite_model(self):
        states = self.state_list
        index = {tuple(s): k for k, s in enumerate(states)}

        def transition(s: int, joint: np.ndarray) -> np.ndarray:
            probs = np.ones(1)
            for k, a in zip(states[s], joint):
                probs = np.outer(probs, self.moves[k, a]).ravel()
            out = np.zeros(len(states))
            for flat, p in enumerate(probs):
                nxt = np.unravel_index(flat, (self.levels,) * self.n_firms)
                out[index[tuple(int(x) for x in nxt)]] += p
            return out

        return states, transition
