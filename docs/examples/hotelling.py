r"""A plug-in market: price competition on Hotelling's line (Hotelling 1929).

Two firms at the ends of the unit line, consumers uniform on it with transport cost ``t``
per unit distance, everyone buys (full coverage). The consumer indifferent between the firms
sits at :math:`x^* = (p_2 - p_1 + t)/(2t)`, so :math:`\pi_1 = (p_1 - c)\, x^*` and
:math:`\pi_2 = (p_2 - c)(1 - x^*)`; the Nash prices are :math:`p_1 = p_2 = c + t`.

Use it with ``market: {type: "hotelling:HotellingMarket", t: 1.0}`` once this folder is
importable (``PYTHONPATH=docs/examples``; on a cluster ship it with the job's runtime env).
"""

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, RepeatedGameMarket
from nashrl.theory.rows import grid_rows, row


class HotellingMarket(RepeatedGameMarket):
    market_type = "hotelling"
    action_label = "price"
    FIELDS = COMMON_FIELDS | {"t", "cost", "prices", "memory", "n_firms"}

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        self.t = v.number(params.get("t", 1.0), "market.t", positive=True)
        self.cost = v.number(params.get("cost", 0.0), "market.cost", nonneg=True)
        nash = self.cost + self.t
        prices = v.grid(params.get("prices", {"low": self.cost, "high": 2 * nash, "size": 11}), "market.prices")
        super().__init__(2, [prices, prices], params)

    def price_or_quantity_profits(self, values: np.ndarray) -> np.ndarray:
        p1, p2 = values[..., 0], values[..., 1]
        share = np.clip((p2 - p1 + self.t) / (2 * self.t), 0.0, 1.0)
        return np.stack([(p1 - self.cost) * share, (p2 - self.cost) * (1 - share)], axis=-1)

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        nash = np.full(2, self.cost + self.t)
        return [row("nash", nash, self.price_or_quantity_profits(nash)), *grid_rows(self, selection)]
