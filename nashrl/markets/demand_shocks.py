r"""Cournot oligopoly with Markov demand shocks.

The demand intercept :math:`a_t \in \{a^{(1)}, \dots, a^{(K)}\}` follows a Markov chain:
it stays with probability ``persistence`` and otherwise moves to one of the other
levels uniformly (or follows an explicit ``transition_matrix``). Firms observe the
current level before choosing quantities; :math:`\pi_i = (\max(a_t - bQ, 0) - c_i) q_i`.

Because the shock is exogenous (actions do not move it), the Markov perfect equilibrium
in strategies that condition on the shock is the static Cournot-Nash equilibrium at
each level, the benchmark :mod:`nashrl.theory.benchmarks` reports.

Config: ``n_firms``, ``a_levels``, ``b``, ``costs``, ``persistence`` or
``transition_matrix``, ``quantities``, ``memory``. State: ``[shock index, last
memory periods' quantity indices]``. Observation: one-hot shock (K entries) followed by
the scaled past quantity indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, RepeatedGameMarket
from nashrl.theory import cournot


def markov_chain(params: dict[str, Any], n_levels: int) -> np.ndarray:
    """Validated transition matrix from ``transition_matrix`` or ``persistence``."""
    if "transition_matrix" in params:
        p = np.asarray(params["transition_matrix"], dtype=float)
        if p.shape != (n_levels, n_levels):
            raise v.ConfigError(
                f"market.transition_matrix: expected a {n_levels}x{n_levels} matrix, got shape {p.shape}"
            )
        if np.any(p < 0) or not np.allclose(p.sum(1), 1.0):
            raise v.ConfigError("market.transition_matrix: expected non-negative rows that sum to 1")
        return p
    rho = v.number(params.get("persistence", 0.9), "market.persistence", nonneg=True)
    if rho > 1:
        raise v.ConfigError(f"market.persistence: expected a probability in [0, 1], got {rho}")
    if n_levels == 1:
        return np.ones((1, 1))
    return np.where(np.eye(n_levels, dtype=bool), rho, (1 - rho) / (n_levels - 1))


class DemandShockMarket(RepeatedGameMarket):
    market_type = "demand_shocks"
    action_label = "quantity"
    metadata = {**RepeatedGameMarket.metadata, "name": "demand_shocks_v0"}
    deterministic = False  # random state process
    FIELDS = COMMON_FIELDS | {
        "n_firms",
        "a_levels",
        "b",
        "costs",
        "persistence",
        "transition_matrix",
        "quantities",
        "memory",
    }

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 2))
        levels = params.get("a_levels", [8.0, 10.0, 12.0])
        if not isinstance(levels, (list, tuple)) or not levels:
            raise v.ConfigError(f"market.a_levels: expected a non-empty list of demand intercepts, got {levels!r}")
        self.a_levels = np.array([v.number(x, f"market.a_levels[{i}]", positive=True) for i, x in enumerate(levels)])
        self.b = v.number(params.get("b", 1.0), "market.b", positive=True)
        self.costs = v.per_firm(params.get("costs", 1.0), n, "market.costs", nonneg=True)
        if np.any(self.a_levels.min() <= self.costs):
            raise v.ConfigError("market.a_levels: expected every demand level above every marginal cost")
        self.chain = markov_chain(params, len(self.a_levels))
        q_max = float(cournot.nash(self.a_levels.max(), self.b, self.costs).max())
        grid = v.grid(params.get("quantities", {"low": 0.0, "high": 1.5 * q_max, "size": 15}), "market.quantities")
        super().__init__(n, [grid] * n, params)

    @property
    def observation_size(self) -> int:
        return len(self.a_levels) + self.memory * self.n_firms

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        shock = rng.integers(0, len(self.a_levels))
        return np.concatenate([[shock], super().initial_state(rng).ravel()])

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shock = rng.choice(len(self.a_levels), p=self.chain[state[0]])
        past = super().transition(state[1:].reshape(self.memory, self.n_firms), actions, rng)
        return np.concatenate([[shock], past.ravel()])

    def observe(self, state: np.ndarray) -> np.ndarray:
        one_hot = np.eye(len(self.a_levels))[state[0]]
        return np.concatenate([one_hot, self.observe_past(state[1:].reshape(self.memory, self.n_firms))])

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return cournot.profits(self.a_levels[state[0]], self.b, self.costs, self.action_values(actions))

    def representative_states(self) -> list[np.ndarray]:
        zeros = np.zeros(self.memory * self.n_firms, dtype=np.int64)
        return [np.concatenate([[k], zeros]) for k in range(len(self.a_levels))]

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """Cournot-Nash, cartel and the grid's exact equilibrium at every demand level (the MPE:
        the shock is exogenous)."""
        from nashrl.theory.rows import grid_row, row

        rows = []
        for k, state in enumerate(self.representative_states()):
            a = self.a_levels[k]
            label = f"a={a:g}"
            q_n, q_m = cournot.nash(a, self.b, self.costs), cournot.cartel(a, self.b, self.costs)
            rows.append(row("nash", q_n, cournot.profits(a, self.b, self.costs, q_n), label, state))
            rows.append(row("cartel", q_m, cournot.profits(a, self.b, self.costs, q_m), label, state))
            rows.append(grid_row(self, state, label, selection))
        return rows

    def finite_model(self):
        if self.memory != 0:
            return None
        return self.representative_states(), lambda s, joint: self.chain[s]
