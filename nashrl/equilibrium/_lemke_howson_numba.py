"""Lemke-Howson pivoting compiled with numba: the CPU kernel behind :func:`lemke_howson`.

Same algorithm and tolerances as the batched torch pivoting in ``lemke_howson.py``
(tableaux ``[B^T | I_n | 1]`` and ``[I_m | A | 1]``, lexicographic minimum-ratio test),
but each game follows its own path in compiled code, games spread over the cores with
``prange``. Used for CPU tensors; GPU tensors keep the torch lock-step pivoting.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TOL_PIVOT = 1e-10
TOL_RATIO = 1e-13


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _pivot(tableau, pivot, row):
    cols = tableau.shape[1]
    value = tableau[row, pivot]
    for j in range(cols):
        tableau[row, j] /= value
    for i in range(tableau.shape[0]):
        if i == row:
            continue
        factor = tableau[i, pivot]
        if factor != 0.0:
            for j in range(cols):
                tableau[i, j] -= factor * tableau[row, j]


@njit(cache=True, parallel=True)
def lemke_howson_batch(a, b, init_pivot, max_iter, x_out, y_out, converged, pivots):
    """Fill ``x_out [G, m]``, ``y_out [G, n]``, ``converged [G]``, ``pivots [G]`` in place."""
    g_total, m, n = a.shape
    for g in prange(g_total):
        shift_a = max(0.0, 1.0 - a[g].min())
        shift_b = max(0.0, 1.0 - b[g].min())
        t0 = np.zeros((n, m + n + 1))
        t1 = np.zeros((m, m + n + 1))
        bases0 = np.empty(n, dtype=np.int64)
        bases1 = np.empty(m, dtype=np.int64)
        for i in range(n):
            for j in range(m):
                t0[i, j] = b[g, j, i] + shift_b
            t0[i, m + i] = 1.0
            t0[i, m + n] = 1.0
            bases0[i] = m + i
        for i in range(m):
            t1[i, i] = 1.0
            for j in range(n):
                t1[i, m + j] = a[g, i, j] + shift_a
            t1[i, m + n] = 1.0
            bases1[i] = i
        cands = np.empty(max(m, n), dtype=np.int64)
        player = 1 if init_pivot >= m else 0
        pivot = init_pivot
        steps = 0
        done = False
        while steps < max_iter:
            if player == 0:
                row = _leaving_row(t0, pivot, m, cands)
                if row < 0:
                    break
                _pivot(t0, pivot, row)
                leaving = bases0[row]
                bases0[row] = pivot
            else:
                row = _leaving_row(t1, pivot, 0, cands)
                if row < 0:
                    break
                _pivot(t1, pivot, row)
                leaving = bases1[row]
                bases1[row] = pivot
            pivot = leaving
            steps += 1
            player = 1 - player
            if pivot == init_pivot:
                done = True
                break
        pivots[g] = steps
        converged[g] = done
        if done:
            total = 0.0
            for i in range(n):
                k = bases0[i]
                if k < m:
                    value = max(t0[i, m + n], 0.0)
                    x_out[g, k] = value
                    total += value
            for j in range(m):
                x_out[g, j] /= total
            total = 0.0
            for i in range(m):
                k = bases1[i]
                if k >= m:
                    value = max(t1[i, m + n], 0.0)
                    y_out[g, k - m] = value
                    total += value
            for j in range(n):
                y_out[g, j] /= total
