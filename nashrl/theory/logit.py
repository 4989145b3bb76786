r"""Bertrand competition with logit demand, as in Calvano, Calzolari, Denicolò and Pastorello (2020).

Shares :math:`q_i = e^{(a_i - p_i)/\mu} / \big(\sum_j e^{(a_j - p_j)/\mu} + e^{a_0/\mu}\big)`,
profits :math:`\pi_i = (p_i - c_i) q_i`.

Nash: since :math:`\partial q_i / \partial p_i = -q_i(1-q_i)/\mu`, the first-order
conditions are the fixed point :math:`p_i = c_i + \mu / (1 - q_i(p))`.
Joint-profit maximum: all markups are equal, :math:`p_i - c_i = m` with
:math:`m = \mu / (1 - \sum_j q_j(p))`; the right side falls in :math:`m`, so this is one
monotone equation in the common markup, solved by bracketing (asymmetric qualities and costs
included).

At the baseline (:math:`a_i = 2, a_0 = 0, \mu = 1/4, c_i = 1`, two firms):
:math:`p^N = 1.47293`, :math:`p^M = 1.92498`, :math:`\pi^N = 0.22293`, :math:`\pi^M = 0.33749`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, root


def shares(a: np.ndarray, a0: float, mu: float, prices: np.ndarray) -> np.ndarray:
    """Market shares ``[..., N]`` for prices ``[..., N]`` (numerically stable)."""
    u = (np.asarray(a, float) - np.asarray(prices, float)) / mu
    top = np.maximum(u.max(-1, keepdims=True), a0 / mu)
    e = np.exp(u - top)
    return e / (e.sum(-1, keepdims=True) + np.exp(a0 / mu - top))


def profits(a: np.ndarray, a0: float, mu: float, costs: np.ndarray, prices: np.ndarray) -> np.ndarray:
    return (np.asarray(prices) - costs) * shares(a, a0, mu, prices)


def _solve(equations, start: np.ndarray, what: str) -> np.ndarray:
    sol = root(equations, start, method="hybr", tol=1e-13)
    if not sol.success or np.max(np.abs(equations(sol.x))) > 1e-9:
        raise RuntimeError(f"logit {what}: the fixed point did not converge ({sol.message})")
    return sol.x


def nash(a: np.ndarray, a0: float, mu: float, costs: np.ndarray) -> np.ndarray:
    costs = np.asarray(costs, float)
    return _solve(lambda p: p - costs - mu / (1 - shares(a, a0, mu, p)), costs + mu, "Nash prices")


def joint_profit(a: np.ndarray, a0: float, mu: float, costs: np.ndarray) -> np.ndarray:
    costs = np.asarray(costs, float)

    def excess(markup: float) -> float:  # increasing in the markup, negative at 0
        return markup - mu / (1 - shares(a, a0, mu, costs + markup).sum())

    high = 2 * mu
    while excess(high) <= 0:
        high *= 2
    markup = brentq(excess, 0.0, high, xtol=1e-15, rtol=1e-15, maxiter=500)
    return costs + markup
