r"""The whole N-player (:math:`N \ge 3`) Nash path of :func:`nashrl.equilibrium.solve` in compiled
code (CPU), the counterpart of :mod:`~nashrl.equilibrium._bimatrix_numba`.

For each game ``q [N, P]`` (payoffs flat, row-major over the action sets), in one compiled
function, the steps of the torch path in ``solver.py`` with its tolerances:

1. scale: solve :math:`G / s` with :math:`s = \max(1, \max |G|)`;
2. pure equilibria: profiles :math:`a` with :math:`G_i(a) \ge \max_{a_i'} G_i(a_i', a_{-i}) -
   10^{-12}` for every player, in lexicographic order;
3. several: the selection rule (:mod:`~nashrl.equilibrium._select_numba`);
4. none: with ``search_mixed="support"`` (``profiles`` not empty) the first equilibrium of the
   support enumeration (:func:`~nashrl.equilibrium._support_numba.first_equilibrium`); otherwise,
   or where it finds none, the logit homotopy (:func:`~nashrl.equilibrium._homotopy_numba.trace_one`,
   restarts included), accepted within ``tol``;
5. values and Nash gap in the game's own units.

A game whose homotopy ends above ``tol`` is marked (``status = 1``) and the caller takes it to the
general path (whose residual descent then gets it), so nothing is lost by fusing. The torch wrapper
around the homotopy cost about 0.5 ms a call (pure mask, candidates, selection, payoffs), more than
the tracking itself in 3-player 5x5x5 games.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nashrl.equilibrium._bimatrix_numba import all_finite
from nashrl.equilibrium._homotopy_numba import deviation_payoffs, trace_one
from nashrl.equilibrium._select_numba import RULES, STRICT, select_candidate  # noqa: F401 (RULES: the caller's codes)
from nashrl.equilibrium._support_numba import first_equilibrium
from nashrl.equilibrium._support_numba import workspace as support_workspace

_OPTIONS = {"cache": True, "error_model": "numpy"}

NOT_FINITE = 2  # status of a game with a NaN or infinite payoff
PURE_TOL = 1e-12  # as nashrl.equilibrium.pure.pure_equilibrium_mask


@njit(**_OPTIONS)
def workspace(sizes, n_profiles, with_support):
    """Per-thread scratch of :func:`solve_one`: the scaled game, the pure mask and candidates (ids,
    payoffs, the selection's flags and strictness margins), the strides, a flat strategy vector and
    its deviation payoffs, the homotopy's output, the support enumeration's scratch (full size only
    ``with_support``)."""
    n = sizes.shape[0]
    k_total = sizes.sum()
    return (
        np.empty((n, n_profiles)),
        np.empty(n_profiles, dtype=np.bool_),
        np.empty(n_profiles, dtype=np.int64),
        np.empty((n_profiles, n)),
        np.empty(n_profiles, dtype=np.bool_),
        np.empty(n_profiles),
        np.empty(n, dtype=np.int64),
        np.empty(k_total),
        np.empty(k_total),
        np.empty((3, n_profiles)),
        np.empty((n, sizes.max())),
        support_workspace(sizes, n_profiles if with_support else 1),
    )


@njit(**_OPTIONS)
def _pure_mask(q, sizes, stride, mask):
    """``mask[r]`` True where profile ``r`` of the (scaled) game ``q`` is a pure equilibrium."""
    n, n_profiles = q.shape
    mask[:] = True
    for i in range(n):
        d, s = sizes[i], stride[i]
        for hi in range(n_profiles // (d * s)):
            for lo in range(s):
                base = hi * d * s + lo
                best = q[i, base]
                for a in range(1, d):
                    best = max(best, q[i, base + a * s])
                for a in range(d):
                    if not q[i, base + a * s] >= best - PURE_TOL:
                        mask[base + a * s] = False


@njit(**_OPTIONS)
def _pure_gap(q, sizes, stride, r):
    """Largest unilateral gain at pure profile ``r`` (zero up to ``PURE_TOL`` at an equilibrium)."""
    worst = 0.0
    for i in range(q.shape[0]):
        d, s = sizes[i], stride[i]
        own = (r // s) % d
        base = r - own * s
        for a in range(d):
            worst = max(worst, q[i, base + a * s] - q[i, r])
    return worst


@njit(**_OPTIONS)
def _pure_margin(q, sizes, stride, r):
    """Strictness margin of pure profile ``r`` (:func:`nashrl.equilibrium.pure.strictness_margins`):
    the smallest over players of its payoff less the best other action's; ``inf`` with no other action."""
    low = np.inf
    for i in range(q.shape[0]):
        d, s = sizes[i], stride[i]
        if d < 2:
            continue
        own = (r // s) % d
        base = r - own * s
        other = -np.inf
        for a in range(d):
            if a != own:
                other = max(other, q[i, base + a * s])
        low = min(low, q[i, r] - other)
    return low


@njit(**_OPTIONS)
def solve_one(game, sizes, rule, tol, lambda_max, max_steps, profiles, max_leaves, x, out, work):
    """Solve game ``game [N, P]``; ``x [N, A_max]`` zero on entry; ``out`` gets ``(value_1, ...,
    value_N, gap, n_equilibria, gap / scale)``; ``profiles`` the support enumeration's size
    profiles (none: the homotopy alone). Returns 0 when solved here, 1 when
    the caller must take the game to the general path, :data:`NOT_FINITE` for a NaN or infinite
    payoff."""
    q, mask, ids, v, allowed, margin, stride, p, u, bufs, mixed, support_work = work
    n, n_profiles = game.shape
    if not all_finite(game):
        return NOT_FINITE
    scale = 1.0
    for i in range(n):
        for r in range(n_profiles):
            scale = max(scale, abs(game[i, r]))
    for i in range(n):
        for r in range(n_profiles):
            q[i, r] = game[i, r] / scale  # as the general path divides
    stride[n - 1] = 1
    for i in range(n - 2, -1, -1):
        stride[i] = stride[i + 1] * sizes[i + 1]
    _pure_mask(q, sizes, stride, mask)
    k = 0
    for r in range(n_profiles):
        if mask[r]:
            ids[k] = r
            for i in range(n):
                v[k, i] = q[i, r]
            k += 1
    if k > 0:
        if rule == STRICT:
            for c in range(k):
                margin[c] = _pure_margin(q, sizes, stride, ids[c])
        c = select_candidate(v, margin, k, rule, allowed)
        r = ids[c]
        for i in range(n):
            x[i, (r // stride[i]) % sizes[i]] = 1.0
            out[i] = v[c, i] * scale
        out[n + 2] = _pure_gap(q, sizes, stride, r)
        out[n] = out[n + 2] * scale
        out[n + 1] = k
        return 0
    gap = np.inf
    if profiles.shape[0] > 0:
        gap = first_equilibrium(q, sizes, stride, profiles, tol, max_leaves, mixed, support_work)
    if not gap <= tol:
        gap, _ = trace_one(q, sizes, tol, lambda_max, max_steps, mixed)
    if not gap <= tol:
        return 1
    off = 0
    for i in range(n):
        for a in range(sizes[i]):
            p[off + a] = mixed[i, a]
            x[i, a] = mixed[i, a]
        off += sizes[i]
    deviation_payoffs(q, sizes, p, u, bufs)
    worst = 0.0
    off = 0
    for i in range(n):
        best, value = -np.inf, 0.0
        for a in range(sizes[i]):
            best = max(best, u[off + a])
            value += p[off + a] * u[off + a]
        worst = max(worst, best - value)
        out[i] = value * scale
        off += sizes[i]
    if not worst <= tol:
        return 1
    out[n] = worst * scale
    out[n + 1] = 1
    out[n + 2] = worst
    return 0


@njit(**_OPTIONS)
def solve_range(game, sizes, rule, tol, lambda_max, max_steps, profiles, max_leaves, x, out, status, lo, hi):
    """:func:`solve_one` for games ``game[lo:hi]`` (``game`` ``[G, N, P]``), in order, on one thread."""
    work = workspace(sizes, game.shape[2], profiles.shape[0] > 0)
    for g in range(lo, hi):
        status[g] = solve_one(
            game[g], sizes, rule, tol, lambda_max, max_steps, profiles, max_leaves, x[g], out[g], work
        )


@njit(cache=True, parallel=True)
def solve_batch(game, sizes, rule, tol, lambda_max, max_steps, profiles, max_leaves, x, out, status, chunks):
    """:func:`solve_range` over ``chunks`` contiguous runs of games, spread over numba's threads."""
    g_total = game.shape[0]
    for c in prange(chunks):
        lo, hi = c * g_total // chunks, (c + 1) * g_total // chunks
        solve_range(game, sizes, rule, tol, lambda_max, max_steps, profiles, max_leaves, x, out, status, lo, hi)
