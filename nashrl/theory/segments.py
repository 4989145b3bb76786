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


def nash(a, a0s, mus, weights, costs, iters: int = 1000) -> np.ndarray:
    """Static Nash prices: iterate the markup equation :math:`p \\leftarrow c + q / (-\\partial q / \\partial p)`
    from :math:`c + \\sum_s w_s \\mu_s` (about ten steps at the shipped segments), then Powell's
    hybrid method from the last iterate if the iteration has not reached a residual of 1e-10."""
    costs = np.asarray(costs, float)

    def equations(p):
        sig = segment_shares(a, a0s, mus, p)
        q = sig.T @ weights
        slope = (sig * (1 - sig) / mus[:, None]).T @ weights
        return p - costs - q / slope

    p = costs + weights @ mus
    for _ in range(iters):
        step = equations(p)
        p = p - step
        if np.max(np.abs(step)) < 1e-14:
            break
    if np.max(np.abs(equations(p))) <= 1e-10:
        return p
    sol = root(equations, p, method="hybr", tol=1e-13)
    if np.max(np.abs(equations(sol.x))) > 1e-8:
        raise RuntimeError(f"segments Nash: the fixed point did not converge ({sol.message})")
    return sol.x
