r"""Stackelberg duopoly (leader moves first, follower observes), :math:`P = a - b(q_L + q_F)`.

Backward induction: the follower's best response is
:math:`q_F(q_L) = \max\{(a - c_F - b q_L) / (2b), 0\}`; the leader maximises
:math:`(a - b(q_L + q_F(q_L)) - c_L)\, q_L`, so (interior case)

.. math::

    q_L = \frac{a - 2c_L + c_F}{2b},\qquad q_F = \frac{a + 2c_L - 3c_F}{4b},\qquad
    P = \frac{a + 2 c_L + c_F}{4}.

With equal costs: :math:`q_L = (a-c)/(2b)`, :math:`q_F = (a-c)/(4b)`, :math:`P = (a+3c)/4`.
"""

from __future__ import annotations

import numpy as np


def follower_best_response(a: float, b: float, c_f: float, q_leader: np.ndarray) -> np.ndarray:
    return np.maximum((a - c_f - b * np.asarray(q_leader)) / (2 * b), 0.0)


def subgame_perfect(a: float, b: float, c_l: float, c_f: float) -> np.ndarray:
    """Leader and follower quantities of the subgame-perfect equilibrium (interior case)."""
    q_l = max((a - 2 * c_l + c_f) / (2 * b), 0.0)
    return np.array([q_l, float(follower_best_response(a, b, c_f, q_l))])
