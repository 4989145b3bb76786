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
(:mod:`nashrl.theory.capacity`). Observation, by ``encoding``: ``scaled`` (default)
:math:`k_i / (K-1)` for every firm; ``onehot`` each firm's level one-hot (:math:`N K` numbers);
``state`` the whole state one-hot (:math:`K^N` numbers, at most :data:`MAX_STATE_ONEHOT`: a
network that is a table).
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
ENCODINGS = ("scaled", "onehot", "state")
#: ``encoding: state`` is refused above this many states.
MAX_STATE_ONEHOT = 4096


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
        "encoding",
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
        self.encoding = params.get("encoding", "scaled")
        if self.encoding not in ENCODINGS:
            raise v.ConfigError(f"market.encoding: expected one of {list(ENCODINGS)}, got {self.encoding!r}")
        if self.encoding == "state" and self.levels**n > MAX_STATE_ONEHOT:
            raise v.ConfigError(
                f"market.encoding: 'state' codes each of the {self.levels**n:,} states; expected at most "
                f"{MAX_STATE_ONEHOT:,} (use 'scaled' or 'onehot')"
            )
        self.state_list = [np.array(s) for s in itertools.product(range(self.levels), repeat=n)]
        #: ``[K^N, N]`` product-market profits by state index (row-major over the levels).
        self.product_market_table = np.stack([self._product_market_profits(s) for s in self.state_list])
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
        if self.encoding == "onehot":
            return self.n_firms * self.levels
        if self.encoding == "state":
            return self.levels**self.n_firms
        return self.n_firms

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        if self.initial_capacity == "random":
            return rng.integers(0, self.levels, size=self.n_firms)
        return np.full(self.n_firms, self.initial_capacity)

    # Single-copy and K-copy methods share the array code (_next_levels, state_index); a subclass
    # that overrides a single-copy method keeps it with K copies (the base class's loop).
    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._next_levels(np.asarray(state)[None], np.asarray(actions)[None], rng)[0]

    def transitions(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self._own(CapacityMarket, "transition"):
            return super().transitions(states, actions, rng)
        return self._next_levels(states, actions, rng)

    def _next_levels(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each firm's next level ``~ T[k, x, .]`` by inverse CDF, one uniform per firm and copy."""
        cumulative = np.cumsum(self.moves[np.asarray(states, dtype=np.int64), np.asarray(actions, dtype=np.int64)], -1)
        u = rng.random(cumulative.shape[:-1])[..., None]
        return np.minimum((u >= cumulative).sum(-1), self.levels - 1)

    def state_index(self, states: np.ndarray) -> np.ndarray:
        """Row-major index of states ``[..., N]`` in :attr:`state_list`."""
        levels = tuple(np.moveaxis(np.asarray(states, dtype=np.int64), -1, 0))
        return np.ravel_multi_index(levels, (self.levels,) * self.n_firms)

    def observe(self, state: np.ndarray) -> np.ndarray:
        return self._encode(np.asarray(state)[None])[0]

    def observe_all(self, states: np.ndarray) -> np.ndarray:
        if not self._own(CapacityMarket, "observe"):
            return super().observe_all(states)
        return self._encode(states)

    def _encode(self, states: np.ndarray) -> np.ndarray:
        """Observations ``[K, observation_size]`` of states ``[K, N]`` in the market's ``encoding``."""
        if self.encoding == "scaled":
            return np.asarray(states, dtype=float) / (self.levels - 1)
        states = np.asarray(states, dtype=np.int64)
        rows = np.arange(len(states))
        out = np.zeros((len(states), self.observation_size))
        if self.encoding == "onehot":
            out[rows[:, None], np.arange(self.n_firms) * self.levels + states] = 1.0
        else:
            out[rows, self.state_index(states)] = 1.0
        return out

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        spend = self.investment_cost * self.action_values(actions)
        return self.product_market_table[self.state_index(state)] - spend

    def profits_at(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if not self._own(CapacityMarket, "stage_profits"):
            return super().profits_at(states, actions)
        return self.stage_profits(states, actions)  # the table lookup broadcasts over copies

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
