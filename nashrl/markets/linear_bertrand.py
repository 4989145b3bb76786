r"""Bertrand competition with linear differentiated demand (Singh-Vives), N firms.

Demand :math:`q = \max(D(a - p), 0)` with :math:`D = ((1-\gamma)I + \gamma \mathbf 1\mathbf 1^\top)^{-1}`
(see :mod:`nashrl.theory.linear_bertrand`), :math:`\pi_i = (p_i - c_i) q_i`.

Config: ``n_firms``, ``a`` (demand intercept, one or per firm), ``substitutability``
:math:`\gamma \in [0, 1)` (``gamma`` is accepted as its old name; it is no discount),
``costs``, ``prices`` (default: 15 points spaced :math:`(p^M - p^N)/10` from two steps below
:math:`p^N` to two steps above :math:`p^M`, so both are on the grid),
``memory``. Parameters under which a firm would sell nothing at the Nash or the
joint-profit prices are refused (the demand system has no exit rule; see
:func:`nashrl.theory.linear_bertrand.check_all_active`). Observation: the last ``memory``
periods' price indices scaled to ``[0, 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, RepeatedGameMarket
from nashrl.theory import linear_bertrand


class LinearBertrandMarket(RepeatedGameMarket):
    market_type = "linear_bertrand"
    action_label = "price"
    metadata = {**RepeatedGameMarket.metadata, "name": "linear_bertrand_v0"}
    FIELDS = COMMON_FIELDS | {"n_firms", "a", "substitutability", "gamma", "costs", "prices", "memory"}

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 2))
        self.a = v.per_firm(params.get("a", 1.0), n, "market.a", positive=True)
        if "gamma" in params and "substitutability" in params:
            raise v.ConfigError("market.substitutability: give substitutability or its old name gamma, not both")
        field = "market.gamma" if "gamma" in params else "market.substitutability"
        value = params.get("substitutability", params.get("gamma", 0.5))
        self.gamma = v.number(value, field, nonneg=True, below=1.0)  # substitutability, not a discount
        self.costs = v.per_firm(params.get("costs", 0.0), n, "market.costs", nonneg=True)
        if np.any(self.a <= self.costs):
            raise v.ConfigError(
                f"market.a: expected a > every marginal cost (a={self.a.tolist()}, costs={self.costs.tolist()})"
            )
        p_n = linear_bertrand.nash(self.a, self.gamma, self.costs)
        p_m = linear_bertrand.joint_profit(self.a, self.costs)
        linear_bertrand.check_all_active(self.a, self.gamma, self.costs)
        step = float(p_m.max() - p_n.min()) / 10
        default = {"low": float(p_n.min() - 2 * step), "high": float(p_m.max() + 2 * step), "size": 15}
        grid = v.grid(params.get("prices", default), "market.prices")
        super().__init__(n, [grid] * n, params)

    def price_or_quantity_profits(self, values: np.ndarray) -> np.ndarray:
        return linear_bertrand.profits(self.a, self.gamma, self.costs, values)

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """Bertrand-Nash, joint-profit prices, and the grid's exact equilibrium."""
        from nashrl.theory.rows import static_rows

        return static_rows(
            self,
            linear_bertrand.nash(self.a, self.gamma, self.costs),
            linear_bertrand.joint_profit(self.a, self.costs),
            "joint_profit",
            selection,
        )
