r"""Cournot oligopoly: firms choose quantities on a grid, :math:`P = \max(a - bQ, 0)`,
:math:`\pi_i = (P - c_i) q_i`.

Config (``market:``): ``n_firms``, ``a``, ``b``, ``costs`` (one number or one per firm),
``quantities`` (list, or ``{low, high, size}``; default 13 points on ``[0, 2 q^N]``, so the
symmetric Nash quantity is on the grid),
``memory`` (periods of past joint quantities in the state, default 1).
Observation: the last ``memory`` periods' quantity indices, scaled to ``[0, 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, RepeatedGameMarket
from nashrl.theory import cournot


def cournot_demand(params: dict[str, Any], n_firms: int) -> tuple[float, float, np.ndarray]:
    """Validated ``(a, b, costs)`` of a linear inverse demand market; refuses ``a <= c``."""
    a = v.number(params.get("a", 10.0), "market.a", positive=True)
    b = v.number(params.get("b", 1.0), "market.b", positive=True)
    costs = v.per_firm(params.get("costs", 1.0), n_firms, "market.costs", nonneg=True)
    if np.any(a <= costs):
        raise v.ConfigError(f"market.a: expected a > every marginal cost (a={a}, costs={costs.tolist()})")
    return a, b, costs


class CournotMarket(RepeatedGameMarket):
    market_type = "cournot"
    action_label = "quantity"
    aggregative = True  # a firm's profit depends on its own quantity and its rivals' total
    metadata = {**RepeatedGameMarket.metadata, "name": "cournot_v0"}
    FIELDS = COMMON_FIELDS | {"n_firms", "a", "b", "costs", "quantities", "memory"}

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 2))
        self.a, self.b, self.costs = cournot_demand(params, n)
        default = {"low": 0.0, "high": 2 * float(cournot.nash(self.a, self.b, self.costs).max()), "size": 13}
        grid = v.grid(params.get("quantities", default), "market.quantities")
        if grid.min() < 0:
            raise v.ConfigError(f"market.quantities: expected quantities >= 0, got min {grid.min()}")
        super().__init__(n, [grid] * n, params)

    def price_or_quantity_profits(self, values: np.ndarray) -> np.ndarray:
        return cournot.profits(self.a, self.b, self.costs, values)

    def contributions(self) -> np.ndarray:
        """Each firm's quantities: the rivals' aggregate is their total output."""
        return np.stack(self.grids)

    def aggregate_profits(self, state: np.ndarray, firm: int, aggregate: np.ndarray) -> np.ndarray:
        r""":math:`(\max(a - b (q + X_{-i}), 0) - c_i) q` for every own quantity ``q``."""
        q = self.grids[firm][None, :]
        price = np.maximum(self.a - self.b * (q + np.asarray(aggregate, float)[:, None]), 0.0)
        return (price - self.costs[firm]) * q

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """Cournot-Nash (exit of unprofitable firms), cartel, and the grid's exact equilibrium."""
        from nashrl.theory.rows import static_rows

        return static_rows(
            self,
            cournot.nash(self.a, self.b, self.costs),
            cournot.cartel(self.a, self.b, self.costs),
            "cartel",
            selection,
        )
