r"""The whole two-player Nash path of :func:`nashrl.equilibrium.solve` in compiled code (CPU).

For each game of the batch, in one compiled function (the steps of the torch path in
``solver.py``, with its tolerances, so both return the same solution):

1. scale: solve :math:`(A, B) / s` with :math:`s = \max(1, \max |A|, \max |B|)`;
2. pure equilibria: :math:`(i, j)` with :math:`A_{ij} \ge \max_{i'} A_{i'j} - 10^{-12}` and
   :math:`B_{ij} \ge \max_{j'} B_{ij'} - 10^{-12}`, in lexicographic order;
3. several: the selection rule of :mod:`~nashrl.equilibrium.selection`
   (:mod:`~nashrl.equilibrium._select_numba`);
4. none: Lemke-Howson from label 0 (:func:`~nashrl.equilibrium._lemke_howson_numba.lemke_howson_path`),
   accepted when the path ends and the Nash gap is within ``tol``;
5. values and Nash gap in the game's own units.

A game whose path does not end, or ends above ``tol``, is marked (``status = 1``) and the caller
solves it by the general path (residual minimiser), so nothing is lost by fusing. The torch
wrapper around separate kernels spent 1.4-2.8x the pivoting time on the pure mask, checks and
selection; here they cost a few passes over each game's payoffs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nashrl.equilibrium._lemke_howson_numba import lemke_howson_path
from nashrl.equilibrium._lemke_howson_numba import workspace as lh_workspace
from nashrl.equilibrium._select_numba import RULES, STRICT, select_candidate  # noqa: F401 (RULES: the caller's codes)

_OPTIONS = {"cache": True, "error_model": "numpy"}

NOT_FINITE = 2  # status of a game with a NaN or infinite payoff
PURE_TOL = 1e-12  # as nashrl.equilibrium.pure.pure_equilibrium_mask


@njit(**_OPTIONS)
def workspace(m, n):
    """Per-thread scratch of :func:`solve_one`: best replies, pure candidates (ids, payoffs, the
    selection's flags and strictness margins), deviation payoffs and the Lemke-Howson workspace."""
    return (
        np.empty(n),
        np.empty(m),
        np.empty(m * n, dtype=np.int64),
        np.empty((m * n, 2)),
        np.empty(m * n, dtype=np.bool_),
        np.empty(m * n),
        np.empty(m),
        np.empty(n),
        lh_workspace(m, n),
    )


@njit(**_OPTIONS)
def all_finite(x):
    """True when every entry of the 2-d array ``x`` is finite (``v - v`` is 0 for finite ``v``, NaN
    otherwise; counted as integers, a reduction that vectorises without reordering float sums). Not
    under fast-math flags: those let the compiler assume there is no NaN and drop the test."""
    bad = 0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            bad += x[i, j] - x[i, j] != 0.0
    return bad == 0


@njit(cache=True, error_model="numpy", fastmath={"nnan", "nsz"})
def _scan(a, b, col_best, row_best):
    """``scale = max(1, max |a|, max |b|)`` and the raw best replies ``col_best[j] = max_i a[i, j]``,
    ``row_best[i] = max_j b[i, j]`` of a finite game, in one pass (the flags let the
    max-reductions vectorise; they are exact for finite payoffs, the order of a max being free)."""
    m, n = a.shape
    scale = 1.0
    col_best[:] = a[0]
    for i in range(m):
        best = b[i, 0]
        for j in range(n):
            scale = max(scale, abs(a[i, j]), abs(b[i, j]))
            col_best[j] = max(col_best[j], a[i, j])
            best = max(best, b[i, j])
        row_best[i] = best
    return scale


@njit(**_OPTIONS)
def _loss(payoffs, own, value, inverse):
    """``value`` less the best of ``payoffs * inverse`` (one player's payoffs against the rival's
    action) over the actions other than ``own``; ``inf`` with no other action."""
    other = -np.inf
    for r in range(payoffs.shape[0]):
        if r != own:
            other = max(other, payoffs[r] * inverse)
    return value - other


@njit(**_OPTIONS)
def _margins(a, b, inverse, ids, v, k, margin):
    """Strictness margins of the ``k`` pure candidates (:func:`nashrl.equilibrium.pure.strictness_margins`),
    in the solver's units: each player's payoff less its best other action's, the smaller of the two."""
    n = a.shape[1]
    for c in range(k):
        i, j = ids[c] // n, ids[c] % n
        margin[c] = min(_loss(a[:, j], i, v[c, 0], inverse), _loss(b[i, :], j, v[c, 1], inverse))


@njit(**_OPTIONS)
def solve_one(a, b, rule, tol, max_iter, x, y, out, work):
    """Solve game ``(a, b)`` ``[m, n]`` (in the solver's units, ``(a, b) * (1 / scale)``, which can
    differ from the general path's division in the last bit); ``x``, ``y`` zero on entry; ``out`` gets
    ``(value_0, value_1, gap, n_equilibria, gap / scale)``. Returns 0 when solved here, 1 when the caller
    must take the game to the general path, :data:`NOT_FINITE` for a NaN or infinite payoff."""
    col_best, row_best, ids, v, allowed, margin, dev0, dev1, lh_work = work
    m, n = a.shape
    if not (all_finite(a) and all_finite(b)):
        return NOT_FINITE
    scale = _scan(a, b, col_best, row_best)
    inverse = 1.0 / scale  # the solver's units: (a, b) * inverse, entry by entry, never stored
    for j in range(n):
        col_best[j] *= inverse  # (max of a) * inverse = max of (a * inverse): monotone
    for i in range(m):
        row_best[i] *= inverse
    k = 0
    for i in range(m):
        for j in range(n):
            b_ij = b[i, j] * inverse
            if b_ij >= row_best[i] - PURE_TOL:
                a_ij = a[i, j] * inverse
                if a_ij >= col_best[j] - PURE_TOL:
                    ids[k] = i * n + j
                    v[k, 0] = a_ij
                    v[k, 1] = b_ij
                    k += 1
    if k > 0:
        if rule == STRICT:
            _margins(a, b, inverse, ids, v, k, margin)
        c = select_candidate(v, margin, k, rule, allowed)
        i, j = ids[c] // n, ids[c] % n
        x[i] = 1.0
        y[j] = 1.0
        out[0] = v[c, 0] * scale
        out[1] = v[c, 1] * scale
        out[4] = max(col_best[j] - v[c, 0], row_best[i] - v[c, 1], 0.0)
        out[2] = out[4] * scale
        out[3] = k
        return 0
    converged, _ = lemke_howson_path(a, b, 0, max_iter, x, y, lh_work, inverse)
    if not converged:
        return 1
    dev0[:] = 0.0  # u_1(i, y)
    dev1[:] = 0.0  # u_2(x, j)
    for i in range(m):
        for j in range(n):
            dev0[i] += a[i, j] * inverse * y[j]
            dev1[j] += b[i, j] * inverse * x[i]
    value0 = 0.0
    value1 = 0.0
    for i in range(m):
        value0 += x[i] * dev0[i]
    for j in range(n):
        value1 += y[j] * dev1[j]
    gap = max(dev0.max() - value0, dev1.max() - value1, 0.0)
    if not gap <= tol:
        return 1
    out[0] = value0 * scale
    out[1] = value1 * scale
    out[2] = gap * scale
    out[3] = 1
    out[4] = gap
    return 0


@njit(**_OPTIONS)
def solve_range(game, rule, tol, max_iter, x, y, out, status, lo, hi):
    """:func:`solve_one` for games ``game[lo:hi]`` (``game`` ``[G, 2, m, n]``), in order, on one thread."""
    work = workspace(game.shape[2], game.shape[3])
    for g in range(lo, hi):
        status[g] = solve_one(game[g, 0], game[g, 1], rule, tol, max_iter, x[g], y[g], out[g], work)


@njit(cache=True, parallel=True)
def solve_batch(game, rule, tol, max_iter, x, y, out, status, chunks):
    """:func:`solve_range` over ``chunks`` contiguous runs of games, spread over numba's threads."""
    g_total = game.shape[0]
    for c in prange(chunks):
        solve_range(game, rule, tol, max_iter, x, y, out, status, c * g_total // chunks, (c + 1) * g_total // chunks)
