r"""The selection rules of :mod:`~nashrl.equilibrium.selection` in compiled code, for the fused
kernels (:mod:`~nashrl.equilibrium._bimatrix_numba`, :mod:`~nashrl.equilibrium._n_player_numba`).

Candidates are rows of ``v [K, N]`` (their payoff vectors, in discovery order). Rules, as the torch
path applies them: ``first`` (0) the first; ``utilitarian`` (1) the largest sum; ``egalitarian``
(2) the largest minimum, ties by the larger sum; ``pareto`` (3) drop every candidate that another
weakly dominates with one strict inequality, then as ``egalitarian``; ``strict`` (4) the largest
strictness margin (``margin [K]``, :func:`nashrl.equilibrium.pure.strictness_margins`), ties as
``pareto``. Ties within :data:`SELECT_EPS` go to the earliest candidate.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTIONS = {"cache": True, "error_model": "numpy"}

#: Selection rules, in the codes the kernels take (:data:`nashrl.equilibrium.selection.SELECTIONS`).
RULES = {"first": 0, "utilitarian": 1, "egalitarian": 2, "pareto": 3, "strict": 4}
SELECT_EPS = 1e-12  # as nashrl.equilibrium.selection._EPS
STRICT = RULES["strict"]  # (a constant the kernels can read: the rule that needs the margins)


@njit(**_OPTIONS)
def _worst(v, c):
    low = v[c, 0]
    for i in range(1, v.shape[1]):
        low = min(low, v[c, i])
    return low


@njit(**_OPTIONS)
def _total(v, c):
    total = 0.0
    for i in range(v.shape[1]):
        total += v[c, i]
    return total


@njit(**_OPTIONS)
def _lexicographic_min_sum(v, allowed, k):
    """Earliest allowed candidate maximising min(v), ties by the larger sum (selection's order)."""
    best = -np.inf
    for c in range(k):
        if allowed[c]:
            best = max(best, _worst(v, c))
    for c in range(k):
        if allowed[c] and not _worst(v, c) >= best - SELECT_EPS:
            allowed[c] = False
    best = -np.inf
    for c in range(k):
        if allowed[c]:
            best = max(best, _total(v, c))
    for c in range(k):
        if allowed[c] and _total(v, c) >= best - SELECT_EPS:
            return c
    return 0


@njit(**_OPTIONS)
def _dominates(v, d, c):
    """True where candidate ``d`` Pareto-dominates ``c`` (weakly in every payoff, strictly in one)."""
    strictly = False
    for i in range(v.shape[1]):
        if not v[d, i] >= v[c, i] - SELECT_EPS:
            return False
        strictly = strictly or v[d, i] > v[c, i] + SELECT_EPS
    return strictly


@njit(**_OPTIONS)
def select_candidate(v, margin, k, rule, allowed):
    """Index of the candidate that ``rule`` selects among the first ``k`` rows of ``v`` (``margin``:
    their strictness margins, read by ``strict`` only; ``allowed``: a boolean scratch of at least ``k``)."""
    if k == 1 or rule == 0:
        return 0
    if rule == 1:
        best = -np.inf
        for c in range(k):
            best = max(best, _total(v, c))
        for c in range(k):
            if _total(v, c) >= best - SELECT_EPS:
                return c
        return 0
    allowed[:k] = True
    floor = -np.inf  # strict: only the strictest candidates (margin above floor) stay and dominate
    if rule == STRICT:
        for c in range(k):
            floor = max(floor, margin[c] - SELECT_EPS)
        for c in range(k):
            allowed[c] = margin[c] >= floor
    if rule == 3 or rule == STRICT:  # drop the Pareto-dominated candidates (by one of those kept)
        for c in range(k):
            if not allowed[c]:
                continue
            for d in range(k):
                if (rule != STRICT or margin[d] >= floor) and _dominates(v, d, c):
                    allowed[c] = False
                    break
    return _lexicographic_min_sum(v, allowed, k)
