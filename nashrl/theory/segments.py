r"""Logit demand with many consumer segments (a mixture of logits).

Segment :math:`s` (weight :math:`w_s`, :math:`\sum_s w_s = 1`) has price sensitivity
:math:`\mu_s` and outside option :math:`a_{0s}`; firm :math:`i`'s demand is

.. math::

    q_i(p) = \sum_s w_s\, \sigma_{is}(p), \qquad
    \sigma_{is} = \frac{e^{(a_i - p_i)/\mu_s}}{\sum_j e^{(a_j - p_j)/\mu_s} + e^{a_{0s}/\mu_s}},

and :math:`\partial q_i/\partial p_i = -\sum_s w_s \sigma_{is}(1 - \sigma_{is})/\mu_s`.
Static Nash prices solve :math:`p_i = c_i + q_i / (-\partial q_i/\partial p_i)`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import root


def segment_shares(a, a0s, mus, prices):
    """``[..., S, N]`` shares of every firm in every segment for prices ``[..., N]``."""
    u = (np.asarray(a)[None, :] - np.asarray(prices)[..., None, :]) / mus[:, None]
    outside = (a0s / mus)[:, None]
    top = np.maximum(u.max(-1, keepdims=True), outside)
    e = np.exp(u - top)
    return e / (e.sum(-1, keepdims=True) + np.exp(outside - top))


def demand(a, a0s, mus, weights, prices):
    return np.einsum("...sn,s->...n", segment_shares(a, a0s, mus, prices), weights)


def nash(a, a0s, mus, weights, costs) -> np.ndarray:
    costs = np.asarray(costs, float)

    def equations(p):
        sig = segment_shares(a, a0s, mus, p)
        q = sig.T @ weights
        slope = (sig * (1 - sig) / mus[:, None]).T @ weights
        return p - costs - q / slope

    sol = root(equations, costs + np.median(mus), method="hybr", tol=1e-13)
    if not sol.success or np.max(np.abs(equations(sol.x))) > 1e-8:
        raise RuntimeError(f"segments Nash: the fixed point did not converge ({sol.message})")
    return sol.x
