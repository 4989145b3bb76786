r"""Bertrand competition with linear differentiated demand (Singh and Vives 1984, N firms).

Inverse demand :math:`p = a - M q` with :math:`M = (1-\gamma) I + \gamma \mathbf 1 \mathbf 1^\top`,
:math:`0 \le \gamma < 1` (substitutes), hence direct demand :math:`q = D (a - p)`,
:math:`D = M^{-1}`. For two firms :math:`q_i = \big(a(1-\gamma) - p_i + \gamma p_j\big)/(1-\gamma^2)`.

Nash: the first-order conditions :math:`q_i = (p_i - c_i) D_{ii}` are linear,

.. math::

    p^N = (D + \operatorname{diag} D)^{-1} (D a + \operatorname{diag}(D)\, c),

which for :math:`a = 1, c = 0`, two firms is :math:`p^N = (1-\gamma)/(2-\gamma)`.
Joint-profit maximum: :math:`D(a - p) = D(p - c)`, i.e. :math:`p^M = (a + c)/2`.

Both formulas assume every firm sells (:math:`q_i > 0`, :math:`p_i > c_i`). Demand is
clipped at zero, which is not a demand system with exit (the rivals' demand would have to
be re-derived with that firm's quantity at zero), so markets whose Nash or joint-profit
solution has a firm selling nothing are refused rather than reported wrongly
(:func:`check_all_active`).
"""

from __future__ import annotations

import numpy as np


def demand_matrix(n_firms: int, gamma: float) -> np.ndarray:
    m = (1 - gamma) * np.eye(n_firms) + gamma * np.ones((n_firms, n_firms))
    return np.linalg.inv(m)


def quantities(a: np.ndarray, gamma: float, prices: np.ndarray) -> np.ndarray:
    """Demand ``max(D (a - p), 0)`` for prices ``[..., N]``."""
    prices = np.asarray(prices, dtype=float)
    d = demand_matrix(prices.shape[-1], gamma)
    return np.maximum((np.asarray(a) - prices) @ d.T, 0.0)


def profits(a: np.ndarray, gamma: float, costs: np.ndarray, prices: np.ndarray) -> np.ndarray:
    return (np.asarray(prices) - costs) * quantities(a, gamma, prices)


def nash(a: np.ndarray, gamma: float, costs: np.ndarray) -> np.ndarray:
    d = demand_matrix(len(costs), gamma)
    diag = np.diag(np.diag(d))
    return np.linalg.solve(d + diag, d @ np.asarray(a, float) + diag @ np.asarray(costs, float))


def check_all_active(a: np.ndarray, gamma: float, costs: np.ndarray) -> None:
    """Raise ``ConfigError`` when a firm sells nothing at the Nash or joint-profit prices."""
    from nashrl.markets.validation import ConfigError

    d = demand_matrix(len(costs), gamma)
    for name, p in (("Nash", nash(a, gamma, costs)), ("joint-profit", joint_profit(a, costs))):
        q = (np.asarray(a, float) - p) @ d.T  # unclipped
        out = np.flatnonzero((q <= 1e-12) | (p <= np.asarray(costs) + 1e-12))
        if out.size:
            raise ConfigError(
                f"market.costs: firm(s) {out.tolist()} would sell nothing at the {name} prices "
                f"{np.round(p, 6).tolist()} (quantities {np.round(q, 6).tolist()}); linear_bertrand has no exit "
                "rule: expected a, gamma and costs under which every firm is active"
            )


def joint_profit(a: np.ndarray, costs: np.ndarray) -> np.ndarray:
    return (np.asarray(a, float) + np.asarray(costs, float)) / 2
