"""Best-reply dynamics on aggregative Q tables, compiled with numba: the CPU kernel behind
:func:`nashrl.equilibrium.aggregative.candidate_equilibria` for games held as tables.

The same algorithm as the tensor code in ``aggregative.py`` (three starts, Gauss-Seidel best
replies that move only on a strict improvement, every end point's Nash gap from all unilateral
deviations, end points already found not counted twice), game by game in compiled code: a
period of acting in a market with a few states is then microseconds, not the milliseconds that
hundreds of small tensor operations cost.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nashrl.equilibrium.aggregative import IMPROVE


@njit(cache=True, error_model="numpy")
def _payoffs(table, contributions, knots, log, sizes, profile, firm, out):
    """``out[:A_firm]``: firm's interpolated Q of each own action against ``profile``'s rivals."""
    n = sizes.shape[0]
    x = 0.0
    for j in range(n):
        if j != firm:
            x += contributions[j, profile[j]]
    z = np.log(max(x, 1e-300)) if log else x
    row = knots[firm]
    m = row.shape[0]
    k, w = 0, 0.0
    if m > 1:
        k = np.searchsorted(row, z, side="right") - 1
        k = min(max(k, 0), m - 2)
        w = min(max((z - row[k]) / (row[k + 1] - row[k]), 0.0), 1.0)
    for a in range(sizes[firm]):
        low = table[firm, a, k]
        high = table[firm, a, min(k + 1, m - 1)]
        out[a] = low + w * (high - low)


@njit(cache=True, error_model="numpy")
def _candidates_one(table, contributions, knots, log, sizes, tol, max_sweeps, profiles, values, gaps, relative, valid):
    n = sizes.shape[0]
    payoff = np.empty(sizes.max())
    for s in range(3):
        profile = profiles[s]
        for i in range(n):
            profile[i] = 0 if s == 0 else (sizes[i] - 1 if s == 1 else (sizes[i] - 1) // 2)
        for _ in range(max_sweeps):
            moved = False
            for i in range(n):
                _payoffs(table, contributions, knots, log, sizes, profile, i, payoff)
                best = 0
                for a in range(1, sizes[i]):
                    if payoff[a] > payoff[best]:
                        best = a
                current = payoff[profile[i]]
                if payoff[best] > current + IMPROVE * max(abs(current), 1.0):
                    profile[i] = best
                    moved = True
            if not moved:
                break
        gap, scale = 0.0, 1.0
        for i in range(n):
            _payoffs(table, contributions, knots, log, sizes, profile, i, payoff)
            own = payoff[profile[i]]
            values[s, i] = own
            top = -np.inf
            for a in range(sizes[i]):
                top = max(top, payoff[a])
                scale = max(scale, abs(payoff[a]))
            gap = max(gap, max(top - own, 0.0))
        gaps[s] = gap
        relative[s] = gap / scale
        ok = gap <= tol * scale
        for earlier in range(s):
            if valid[earlier]:
                same = True
                for i in range(n):
                    same = same and profiles[earlier, i] == profile[i]
                ok = ok and not same
        valid[s] = ok


@njit(parallel=True, cache=True)
def candidates(tables, contributions, knots, log, sizes, tol, max_sweeps):
    """End points of the dynamics for every game of ``tables [B, N, A, M]``: profiles
    ``[B, 3, N]``, values ``[B, 3, N]``, gaps and relative gaps ``[B, 3]``, valid ``[B, 3]``."""
    b, n = tables.shape[0], sizes.shape[0]
    profiles = np.zeros((b, 3, n), dtype=np.int64)
    values = np.zeros((b, 3, n))
    gaps = np.zeros((b, 3))
    relative = np.zeros((b, 3))
    valid = np.zeros((b, 3), dtype=np.bool_)
    for g in prange(b):
        _candidates_one(
            tables[g], contributions, knots, log, sizes, tol, max_sweeps,
            profiles[g], values[g], gaps[g], relative[g], valid[g],
        )  # fmt: skip
    return profiles, values, gaps, relative, valid
