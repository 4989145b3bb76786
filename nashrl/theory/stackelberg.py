r"""Stackelberg duopoly (leader moves first, follower observes), :math:`P = \max(a - b(q_L + q_F), 0)`.

Backward induction. The follower's best response is the *function*

.. math::

    q_F(q_L) = \max\{(a - c_F - b q_L) / (2b),\ 0\},

positive below the follower's shut-down point :math:`\bar q = (a - c_F)/b` and zero from
there on. The leader maximises :math:`\pi_L(q) = (P(q + q_F(q)) - c_L)\, q` over
:math:`q \ge 0`, a continuous function with two pieces:

- accommodation, :math:`q < \bar q`: :math:`\pi_L = ((a + c_F - b q)/2 - c_L)\, q`,
  maximised at :math:`q^A = (a - 2c_L + c_F)/(2b)` (clamped to :math:`[0, \bar q]`);
- deterrence, :math:`q \ge \bar q` (follower stays out): :math:`\pi_L = (a - bq - c_L)\, q`,
  maximised at :math:`\max(\bar q, q^M)` with the monopoly output :math:`q^M = (a - c_L)/(2b)`:
  the monopoly output when it already deters, else *limit output* :math:`\bar q`.

The subgame-perfect leader output is the better of the two candidates (ties: the smaller
output). With equal costs accommodation is interior:
:math:`q_L = (a-c)/(2b)`, :math:`q_F = (a-c)/(4b)`, :math:`P = (a+3c)/4`. With a
follower much costlier than the leader (:math:`c_F > (a + 2c_L)/3`) the leader deters entry.

Reference: von Stackelberg (1934); the entry-deterrence corner as in Dixit (1979).
"""

from __future__ import annotations

import numpy as np


def follower_best_response(a: float, b: float, c_f: float, q_leader: np.ndarray) -> np.ndarray:
    return np.maximum((a - c_f - b * np.asarray(q_leader)) / (2 * b), 0.0)


def leader_profit(a: float, b: float, c_l: float, c_f: float, q_leader: np.ndarray) -> np.ndarray:
    """The leader's profit when the follower best-responds to ``q_leader``."""
    q_leader = np.asarray(q_leader, dtype=float)
    total = q_leader + follower_best_response(a, b, c_f, q_leader)
    return (np.maximum(a - b * total, 0.0) - c_l) * q_leader


def subgame_perfect(a: float, b: float, c_l: float, c_f: float) -> np.ndarray:
    """Leader and follower quantities of the subgame-perfect equilibrium, corners included."""
    shut_down = max((a - c_f) / b, 0.0)  # the follower produces nothing from here on
    accommodate = min(max((a - 2 * c_l + c_f) / (2 * b), 0.0), shut_down)
    deter = max(shut_down, max(a - c_l, 0.0) / (2 * b))
    candidates = np.array([0.0, accommodate, deter])
    profits = leader_profit(a, b, c_l, c_f, candidates)
    q_l = float(candidates[np.flatnonzero(profits >= profits.max() - 1e-12)].min())
    return np.array([q_l, float(follower_best_response(a, b, c_f, q_l))])


def outcome_kind(a: float, b: float, c_l: float, c_f: float) -> str:
    """``"accommodation"`` (follower produces) or ``"deterrence"`` (follower shut out)."""
    return "accommodation" if subgame_perfect(a, b, c_l, c_f)[1] > 0 else "deterrence"
