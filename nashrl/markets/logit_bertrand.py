r"""Logit Bertrand market exactly as Calvano, Calzolari, Denicolò and Pastorello (2020).

Shares :math:`q_i = e^{(a_i-p_i)/\mu} / (\sum_j e^{(a_j-p_j)/\mu} + e^{a_0/\mu})`, profits
:math:`(p_i - c_i) q_i`; the state is the last ``memory`` (:math:`k`) periods' prices;
prices lie on ``m`` evenly spaced points of
:math:`[p^N - \xi(p^M - p^N),\ p^M + \xi(p^M - p^N)]` (Nash and joint-profit prices of
the one-shot game). Baseline: ``a = 2, a0 = 0, mu = 0.25, costs = 1, m = 15, xi = 0.1,
memory = 1, discount = 0.95``.

Observation: the last ``memory`` periods' price indices scaled to ``[0, 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, RepeatedGameMarket
from nashrl.theory import logit


class LogitBertrandMarket(RepeatedGameMarket):
    market_type = "logit_bertrand"
    action_label = "price"
    aggregative = True  # a firm's profit depends on its own price and its rivals' total logit attraction
    aggregate_transform = "log"
    metadata = {**RepeatedGameMarket.metadata, "name": "logit_bertrand_v0"}
    FIELDS = COMMON_FIELDS | {"n_firms", "a", "a0", "mu", "costs", "m", "xi", "memory"}

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 2))
        self.a = v.per_firm(params.get("a", 2.0), n, "market.a")
        self.a0 = v.number(params.get("a0", 0.0), "market.a0")
        self.mu = v.number(params.get("mu", 0.25), "market.mu", positive=True)
        self.costs = v.per_firm(params.get("costs", 1.0), n, "market.costs", nonneg=True)
        if np.any(self.a <= self.costs):
            raise v.ConfigError(
                f"market.a: expected quality a > marginal cost (a={self.a.tolist()}, costs={self.costs.tolist()})"
            )
        m = v.integer(params.get("m", 15), "market.m")
        xi = v.number(params.get("xi", 0.1), "market.xi", nonneg=True)
        self.p_nash = logit.nash(self.a, self.a0, self.mu, self.costs)
        self.p_monopoly = logit.joint_profit(self.a, self.a0, self.mu, self.costs)
        low = float(self.p_nash.min() - xi * (self.p_monopoly.max() - self.p_nash.min()))
        high = float(self.p_monopoly.max() + xi * (self.p_monopoly.max() - self.p_nash.min()))
        grid = np.linspace(low, high, m)
        super().__init__(n, [grid] * n, params)

    def price_or_quantity_profits(self, values: np.ndarray) -> np.ndarray:
        return logit.profits(self.a, self.a0, self.mu, self.costs, values)

    def contributions(self) -> np.ndarray:
        r"""Each firm's attraction :math:`e^{(a_i - p)/\mu}` at each of its prices."""
        return np.exp((self.a[:, None] - np.stack(self.grids)) / self.mu)

    def aggregate_profits(self, state: np.ndarray, firm: int, aggregate: np.ndarray) -> np.ndarray:
        r""":math:`(p - c_i)\, e_i(p) / (e_i(p) + X_{-i} + e^{a_0/\mu})` for every own price ``p``."""
        own = self.contributions()[firm][None, :]
        share = own / (own + np.asarray(aggregate, float)[:, None] + np.exp(self.a0 / self.mu))
        return (self.grids[firm][None, :] - self.costs[firm]) * share

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """Logit Bertrand-Nash and joint-profit prices (Calvano et al. 2020), and the grid's exact equilibrium."""
        from nashrl.theory.rows import static_rows

        return static_rows(self, self.p_nash, self.p_monopoly, "joint_profit", selection)
