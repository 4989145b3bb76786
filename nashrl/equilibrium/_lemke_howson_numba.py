"""Lemke-Howson pivoting compiled with numba: the CPU kernel behind :func:`lemke_howson`.

Same algorithm and tolerances as the batched torch pivoting in ``lemke_howson.py``
(tableaux ``[B^T | I_n | 1]`` and ``[I_m | A | 1]``, lexicographic minimum-ratio test),
but each game follows its own path in compiled code, games spread over the cores with
``prange``. Used for CPU tensors; GPU tensors keep the torch lock-step pivoting.

A path runs in a workspace (:func:`workspace`: both tableaux, the bases, a row buffer) made once
per thread and reused for every game it solves; a pivot normalises the pivot row into the buffer
and updates the other rows from it (no aliasing, so the row update vectorises).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TOL_PIVOT = 1e-10
TOL_RATIO = 1e-13


_OPTIONS = {"cache": True, "error_model": "numpy"}  # numpy's error model: no zero-division checks in loops


@njit(**_OPTIONS)
def _ratio_filter(tableau, pivot, test_col, cands, n_cands):
    """Keep, among rows ``cands[:n_cands]``, those minimising ``tableau[i, test_col] / tableau[i, pivot]``."""
    ratio_min = np.inf
    n_min = 0
    for k in range(n_cands):
        i = cands[k]
        if tableau[i, pivot] <= TOL_PIVOT:
            continue
        ratio = tableau[i, test_col] / tableau[i, pivot]
        if ratio > ratio_min + TOL_RATIO:
            continue
        if ratio < ratio_min - TOL_RATIO:
            ratio_min = ratio
            n_min = 1
        else:
            n_min += 1
        cands[n_min - 1] = i
    return n_min


@njit(**_OPTIONS)
def _leaving_row(tableau, pivot, slack_start, cands):
    rows = tableau.shape[0]
    for i in range(rows):
        cands[i] = i
    n_min = _ratio_filter(tableau, pivot, tableau.shape[1] - 1, cands, rows)
    if n_min >= 2:
        for j in range(slack_start, slack_start + rows):
            if j == pivot:
                continue
            n_min = _ratio_filter(tableau, pivot, j, cands, n_min)
            if n_min == 1:
                break
    if n_min == 0:
        return -1
    return cands[0]


@njit(**_OPTIONS)
def _pivot(tableau, pivot, row, buf):
    cols = tableau.shape[1]
    inverse = 1.0 / tableau[row, pivot]
    for j in range(cols):
        buf[j] = tableau[row, j] * inverse
    for i in range(tableau.shape[0]):
        factor = tableau[i, pivot]
        if i == row or factor == 0.0:
            continue
        for j in range(cols):
            tableau[i, j] -= factor * buf[j]
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
    """Tableaux, bases, ratio-test candidates and the pivot-row buffer of one ``m x n`` path."""
    return (
        np.zeros((n, m + n + 1)),
        np.zeros((m, m + n + 1)),
        np.empty(n, dtype=np.int64),
        np.empty(m, dtype=np.int64),
        np.empty(max(m, n), dtype=np.int64),
        np.empty(m + n + 1),
    )


@njit(**_OPTIONS)
def lemke_howson_path(a, b, init_pivot, max_iter, x, y, work, scale=1.0):
    """One game's path: the game ``(a, b) * scale`` (``a``, ``b`` ``[m, n]``), ``work`` from
    :func:`workspace`; fills ``x [m]``, ``y [n]`` (zero on entry) with the normalised end point when
    the path ends. Returns ``(converged, pivots)``."""
    t0, t1, bases0, bases1, cands, buf = work
    m, n = a.shape
    shift_a = max(0.0, 1.0 - _min(a) * scale)  # (a * scale).min(): scaling by a positive number is monotone
    shift_b = max(0.0, 1.0 - _min(b) * scale)
    for i in range(n):  # [B^T + shift | I_n | 1], every entry written once
        for j in range(m):
            t0[i, j] = b[j, i] * scale + shift_b
        for j in range(n):
            t0[i, m + j] = 0.0
        t0[i, m + i] = 1.0
        t0[i, m + n] = 1.0
        bases0[i] = m + i
    for i in range(m):  # [I_m | A + shift | 1]
        for j in range(m):
            t1[i, j] = 0.0
        t1[i, i] = 1.0
        for j in range(n):
            t1[i, m + j] = a[i, j] * scale + shift_a
        t1[i, m + n] = 1.0
        bases1[i] = i
    player = 1 if init_pivot >= m else 0
    pivot = init_pivot
    steps = 0
    done = False
    while steps < max_iter:
        if player == 0:
            row = _leaving_row(t0, pivot, m, cands)
            if row < 0:
                break
            _pivot(t0, pivot, row, buf)
            leaving = bases0[row]
            bases0[row] = pivot
        else:
            row = _leaving_row(t1, pivot, 0, cands)
            if row < 0:
                break
            _pivot(t1, pivot, row, buf)
            leaving = bases1[row]
            bases1[row] = pivot
        pivot = leaving
        steps += 1
        player = 1 - player
        if pivot == init_pivot:
            done = True
            break
    if done:
        total = 0.0
        for i in range(n):
            k = bases0[i]
            if k < m:
                value = max(t0[i, m + n], 0.0)
                x[k] = value
                total += value
        for j in range(m):
            x[j] /= total
        total = 0.0
        for i in range(m):
            k = bases1[i]
            if k >= m:
                value = max(t1[i, m + n], 0.0)
                y[k - m] = value
                total += value
        for j in range(n):
            y[j] /= total
    return done, steps


def thread_chunks(count: int, serial_below: int = 64) -> int:
    """Contiguous runs to split ``count`` games into: 1 (run serially, no parallel launch) for small
    batches or one numba thread, else four per thread."""
    import numba

    threads = numba.get_num_threads()
    return 1 if threads == 1 or count < serial_below else min(count, 4 * threads)


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
