r"""Cournot oligopoly with linear inverse demand :math:`P = a - bQ` and constant marginal costs.

Nash equilibrium with asymmetric costs (active firms :math:`\mathcal A`, :math:`n = |\mathcal A|`):

.. math::

    q_i = \frac{a - (n+1) c_i + \sum_{j \in \mathcal A} c_j}{b (n+1)},\qquad
    P = \frac{a + \sum_{j \in \mathcal A} c_j}{n+1},

where firms whose formula gives :math:`q_i \le 0` stay out (the highest-cost firm
leaves first, and the rest is recomputed). With equal costs
:math:`q_i = (a-c)/(b(N+1))` and :math:`\pi_i = (a-c)^2 / (b (N+1)^2)`.

Cartel (joint-profit maximum): only the lowest-cost firms produce, total
:math:`Q = (a - c_{\min}) / (2b)`, split equally among them.
"""

from __future__ import annotations

import numpy as np


def price(a: float, b: float, quantities: np.ndarray) -> np.ndarray:
    """Inverse demand ``max(a - b Q, 0)`` for quantities ``[..., N]``."""
    return np.maximum(a - b * np.asarray(quantities).sum(-1), 0.0)


def profits(a: float, b: float, costs: np.ndarray, quantities: np.ndarray) -> np.ndarray:
    q = np.asarray(quantities, dtype=float)
    return (price(a, b, q)[..., None] - costs) * q


def nash(a: float, b: float, costs: np.ndarray) -> np.ndarray:
    """Cournot-Nash quantities with asymmetric costs and exit of unprofitable firms."""
    costs = np.asarray(costs, dtype=float)
    active = np.ones(len(costs), dtype=bool)
    while True:
        n = active.sum()
        q = np.where(active, (a - (n + 1) * costs + costs[active].sum()) / (b * (n + 1)), 0.0)
        if np.all(q[active] > 0) or n == 1:
            return np.maximum(q, 0.0)
        active[np.argmax(np.where(active, costs, -np.inf))] = False


def cartel(a: float, b: float, costs: np.ndarray) -> np.ndarray:
    """Joint-profit-maximising quantities: the lowest-cost firms share Q = (a - c_min)/(2b)."""
    costs = np.asarray(costs, dtype=float)
    low = np.isclose(costs, costs.min())
    total = max(a - costs.min(), 0.0) / (2 * b)
    return np.where(low, total / low.sum(), 0.0)
