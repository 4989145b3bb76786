"""Lemke-Howson pivoting compiled with numba: the CPU kernel behind :func:`lemke_howson`.

Same algorithm, path and tolerances as the batched torch pivoting in ``lemke_howson.py``
(tableaux ``[B^T | I_n | 1]`` and ``[I_m | A | 1]``, lexicographic minimum-ratio test), but each
game follows its own path in compiled code, games spread over the cores with ``prange``. Used
for CPU tensors; GPU tensors keep the torch lock-step pivoting.

**Condensed tableaux.** A basic variable's column of a full tableau is a unit vector, so only the
non-basic columns and the right-hand side are stored (Tucker's condensed form): player 0's
tableau is ``[n, m + 1]`` instead of ``[n, m + n + 1]``, player 1's ``[m, n + 1]`` instead of
``[m, m + n + 1]``, and a pivot updates about half the entries (15 x 15: 255 instead of 465 per
pivot). The entering variable's slot takes the leaving variable's column, which is what the
full pivot writes into it: ``1 / p`` in the pivot row, ``-f / p`` in a row with factor ``f``. Each
tableau keeps its basis (the variable of each row) and each variable's slot (-1 while basic); the
lexicographic tie-break reads a basic slack's column as the unit vector it is.

A path runs in a workspace (:func:`workspace`) made once per thread and reused for every game it
solves; a pivot normalises the pivot row into a buffer and updates the other rows from it (no
aliasing, so the row update vectorises).

Developers: numba's on-disk cache of a compiled caller in another module (the fused two-player
kernel, :mod:`~nashrl.equilibrium._bimatrix_numba`) is keyed on the caller's own file, so after
editing this file delete ``nashrl/equilibrium/__pycache__/*.nb[ic]``, or that kernel keeps running
the old pivoting (a fresh install compiles everything anew).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TOL_PIVOT = 1e-10
TOL_RATIO = 1e-13


_OPTIONS = {"cache": True, "error_model": "numpy"}  # numpy's error model: no zero-division checks in loops


@njit(inline="always", **_OPTIONS)
def _test_value(tableau, i, test_slot, test_var, basis):
    """Row ``i`` of the test column: ``tableau[i, test_slot]``, or where ``test_slot < 0`` the unit
    column of the basic variable ``test_var``."""
    if test_slot >= 0:
        return tableau[i, test_slot]
    return 1.0 if basis[i] == test_var else 0.0


@njit(inline="always", **_OPTIONS)
def _ratio_filter(tableau, col, test_slot, test_var, basis, cands, n_cands):
    """Keep, among rows ``cands[:n_cands]`` with ``tableau[i, col] > TOL_PIVOT``, those minimising
    (test column) / ``tableau[i, col]``, ties within ``TOL_RATIO`` of the running minimum."""
    ratio_min = np.inf
    n_min = 0
    for k in range(n_cands):
        i = cands[k]
        if tableau[i, col] <= TOL_PIVOT:
            continue
        ratio = _test_value(tableau, i, test_slot, test_var, basis) / tableau[i, col]
        if ratio > ratio_min + TOL_RATIO:
            continue
        if ratio < ratio_min - TOL_RATIO:
            ratio_min = ratio
            n_min = 1
        else:
            n_min += 1
        cands[n_min - 1] = i
    return n_min


@njit(inline="always", **_OPTIONS)
def _leaving_row(tableau, basis, slot, col, entering, slack_start, n_slack, cands, ratios):
    """The lexicographic minimum-ratio row for the variable ``entering`` (non-basic, in ``col``):
    the right-hand side first, ties broken by the slack columns in order; -1 when no row bounds it.
    The first test without branches on the data (every ratio, their minimum, then the rows within
    ``TOL_RATIO`` of it: the torch path's rule), as mispredicted branches cost more than the
    divisions."""
    rows = tableau.shape[0]
    rhs = tableau.shape[1] - 1
    best = np.inf
    for i in range(rows):
        d = tableau[i, col]
        r = tableau[i, rhs] / d
        r = r if d > TOL_PIVOT else np.inf
        ratios[i] = r
        best = min(best, r)
    if best == np.inf:
        return -1
    bound = best + TOL_RATIO
    n_min = 0
    for i in range(rows):
        if ratios[i] <= bound:
            cands[n_min] = i
            n_min += 1
    if n_min >= 2:
        for v in range(slack_start, slack_start + n_slack):
            if v == entering:
                continue
            n_min = _ratio_filter(tableau, col, slot[v], v, basis, cands, n_min)
            if n_min == 1:
                break
    return cands[0]


@njit(inline="always", **_OPTIONS)
def _pivot(tableau, col, row, buf):
    """Pivot a condensed tableau on ``(row, col)``; ``col`` then holds the leaving variable."""
    cols = tableau.shape[1]
    inverse = 1.0 / tableau[row, col]
    for j in range(cols):
        buf[j] = tableau[row, j] * inverse
    buf[col] = inverse  # the leaving variable's unit column, divided by the pivot
    for i in range(tableau.shape[0]):
        factor = tableau[i, col]
        if i == row or factor == 0.0:
            continue
        for j in range(cols):
            tableau[i, j] -= factor * buf[j]
        tableau[i, col] = -factor * inverse  # the leaving variable's 0 less factor / pivot (after the
        # vector loop: a scalar store into the row just before it stalls its loads, 1.5x slower)
    for j in range(cols):
        tableau[row, j] = buf[j]


@njit(cache=True, error_model="numpy", fastmath={"nnan", "nsz"})
def _min(a):
    """``a.min()`` of a finite 2-D array as a reduction LLVM vectorises (the order of a min is free)."""
    low = a[0, 0]
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            low = min(low, a[i, j])
    return low


@njit(**_OPTIONS)
def workspace(m, n):
    """One ``m x n`` path's condensed tableaux (player 0's ``[n, m + 1]``, player 1's ``[m, n + 1]``),
    their bases, each variable's slot in each tableau, ratio-test candidates and the pivot-row
    buffer. Variables are numbered by label: ``x_i`` / ``s_i`` are ``i``, ``r_j`` / ``y_j`` are ``m + j``."""
    return (
        np.zeros((n, m + 1)),
        np.zeros((m, n + 1)),
        np.empty(n, dtype=np.int64),
        np.empty(m, dtype=np.int64),
        np.empty(m + n, dtype=np.int64),
        np.empty(m + n, dtype=np.int64),
        np.empty(max(m, n), dtype=np.int64),
        np.empty(max(m, n) + 1),
    )


@njit(inline="always", **_OPTIONS)
def _step(tableau, basis, slot, entering, slack_start, n_slack, cands, buf):
    """One pivot of one player's tableau: ``entering`` comes in; returns the leaving variable, or
    -1 when the ratio test finds no row."""
    col = slot[entering]
    row = _leaving_row(tableau, basis, slot, col, entering, slack_start, n_slack, cands, buf)
    if row < 0:
        return -1
    _pivot(tableau, col, row, buf)
    leaving = basis[row]
    basis[row] = entering
    slot[leaving] = col
    slot[entering] = -1
    return leaving


@njit(**_OPTIONS)
def lemke_howson_path(a, b, init_pivot, max_iter, x, y, work, scale=1.0):
    """One game's path: the game ``(a, b) * scale`` (``a``, ``b`` ``[m, n]``), ``work`` from
    :func:`workspace`; fills ``x [m]``, ``y [n]`` (zero on entry) with the normalised end point when
    the path ends. Returns ``(converged, pivots)``."""
    t0, t1, basis0, basis1, slot0, slot1, cands, buf = work
    m, n = a.shape
    shift_a = max(0.0, 1.0 - _min(a) * scale)  # (a * scale).min(): scaling by a positive number is monotone
    shift_b = max(0.0, 1.0 - _min(b) * scale)
    for j in range(n):  # player 0: r_j basic in row j; x_i non-basic in slot i; [B^T + shift | 1]
        for i in range(m):
            t0[j, i] = b[i, j] * scale + shift_b
        t0[j, m] = 1.0
        basis0[j] = m + j
        slot0[m + j] = -1
    for i in range(m):  # player 1: s_i basic in row i; y_j non-basic in slot j; [A + shift | 1]
        for j in range(n):
            t1[i, j] = a[i, j] * scale + shift_a
        t1[i, n] = 1.0
        basis1[i] = i
        slot0[i] = i
        slot1[i] = -1
    for j in range(n):
        slot1[m + j] = j
    player = 1 if init_pivot >= m else 0
    pivot = init_pivot
    steps = 0
    done = False
    while steps < max_iter:
        if player == 0:
            leaving = _step(t0, basis0, slot0, pivot, m, n, cands, buf)
        else:
            leaving = _step(t1, basis1, slot1, pivot, 0, m, cands, buf)
        if leaving < 0:
            break
        pivot = leaving
        steps += 1
        player = 1 - player
        if pivot == init_pivot:
            done = True
            break
    if done:
        total = 0.0
        for r in range(n):
            k = basis0[r]
            if k < m:
                value = max(t0[r, m], 0.0)
                x[k] = value
                total += value
        for j in range(m):
            x[j] /= total
        total = 0.0
        for r in range(m):
            k = basis1[r]
            if k >= m:
                value = max(t1[r, n], 0.0)
                y[k - m] = value
                total += value
        for j in range(n):
            y[j] /= total
    return done, steps


def thread_chunks(count: int, serial_below: int = 64) -> int:
    """Contiguous runs to split ``count`` games into: 1 (run serially, no parallel launch) for small
    batches or one numba thread, else four per thread."""
    if count < serial_below:
        return 1
    import numba

    threads = numba.get_num_threads()
    return 1 if threads == 1 else min(count, 4 * threads)


@njit(**_OPTIONS)
def lemke_howson_range(a, b, init_pivot, max_iter, x_out, y_out, converged, pivots, lo, hi):
    work = workspace(a.shape[1], a.shape[2])
    for g in range(lo, hi):
        converged[g], pivots[g] = lemke_howson_path(a[g], b[g], init_pivot, max_iter, x_out[g], y_out[g], work)


@njit(cache=True, parallel=True)
def lemke_howson_batch(a, b, init_pivot, max_iter, x_out, y_out, converged, pivots, chunks):
    """Fill ``x_out [G, m]``, ``y_out [G, n]`` (zero on entry), ``converged [G]``, ``pivots [G]``;
    the games in ``chunks`` contiguous runs spread over numba's threads."""
    g_total = a.shape[0]
    for c in prange(chunks):
        lemke_howson_range(
            a,
            b,
            init_pivot,
            max_iter,
            x_out,
            y_out,
            converged,
            pivots,
            c * g_total // chunks,
            (c + 1) * g_total // chunks,
        )
