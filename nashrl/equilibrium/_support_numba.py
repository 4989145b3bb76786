r"""Support enumeration in the order of Porter, Nudelman and Shoham for N-player games
(:math:`N \ge 3`), compiled with numba (CPU): ``search_mixed="support"`` of
:func:`nashrl.equilibrium.solve`.

Porter, Nudelman and Shoham (2008), "Simple search methods for finding a Nash equilibrium",
*Games and Economic Behavior* 63, Algorithm 2. Support size profiles
:math:`x = (|S_1|, \dots, |S_N|)` are tried in increasing order of total size
:math:`\sum_i x_i`, then of imbalance :math:`\max_i x_i - \min_i x_i` (then lexicographically).
Within a profile, supports are chosen player by player, and a partial choice is abandoned as soon
as an action of a chosen support is strictly dominated by another action of the same player
conditional on the rivals' chosen supports (all actions of the players not chosen yet). At a full
profile the equilibrium conditions of the support,

.. math::

    u_i(a, \sigma_{-i}) = u_i(r_i, \sigma_{-i}) \quad (a \in S_i \setminus r_i), \qquad
    \sum_{a \in S_i} \sigma_i(a) = 1, \qquad \sigma_i(a) = 0 \ (a \notin S_i),

a square polynomial system of degree :math:`N - 1` in :math:`\sum_i (x_i - 1)` unknowns (the
reference action :math:`r_i` takes the remaining probability), are solved by Newton's method from
the support's centroid and :data:`EXTRA_STARTS` seeded interior points. A root with every
probability non-negative whose Nash gap over *all* actions (deviations outside the support
included) is within ``tol`` is returned: the first equilibrium in this order, whatever the
selection rule (which applies to games with pure equilibria only).

Two departures from PNS, both on the side of speed: the dominance test does not iterate over the
players not chosen yet (PNS's IRSDS prunes their domains), and size profiles where a player has
more indifference equations than its rivals have unknowns (:math:`x_i - 1 > \sum_{j \ne i}
(x_j - 1)`), which have no solution in a generic game, are skipped. Newton from a few starts can
miss a root. So a game for which no support yields an equilibrium within ``max_leaves`` Newton
problems is returned unsolved here and the caller follows the logit homotopy instead: the search
is fast where equilibria have small supports (random games) and never loses a game.

Payoffs arrive normalised by the caller (largest absolute payoff 1).
"""

from __future__ import annotations

import itertools

import numpy as np
from numba import njit

from nashrl.equilibrium._homotopy_numba import _gap, _lu_factor, _solve, deviation_payoffs

_OPTIONS = {"cache": True, "error_model": "numpy"}

EXTRA_STARTS = 2  # fixed interior Newton starts after the centroid (second pass only)
NEWTON_STEPS = 15  # quadratic convergence takes 3-6 from a start in the basin
ROOT_TOL = 1e-13  # max |F| at a root (payoffs normalised to |q| <= 1)
NEGATIVE = 1e-10  # a probability below -NEGATIVE rejects the root; above it, clipped to zero
DIVERGED = 1e3  # an unknown beyond this: the start is abandoned
SLOW_AFTER = 6  # Newton steps after which a residual above SLOW_RESIDUAL abandons the start
SLOW_RESIDUAL = 1e-4
#: Newton problems (support profiles that pass the dominance tests) per game before the search gives
#: the game to the logit homotopy.
MAX_LEAVES = 20_000


def size_profiles(sizes: tuple[int, ...]) -> np.ndarray:
    """``[K, N]`` support size profiles in the search order (the pure profile excluded)."""
    n = len(sizes)
    out = []
    for x in itertools.product(*(range(1, a + 1) for a in sizes)):
        free = sum(k - 1 for k in x)
        if free == 0 or any(2 * (k - 1) > free for k in x):  # x_i - 1 > sum_{j != i} (x_j - 1)
            continue
        out.append(x)
    out.sort(key=lambda x: (sum(x), max(x) - min(x), x))
    return np.array(out, dtype=np.int64).reshape(len(out), n)


@njit(**_OPTIONS)
def _first(comb, i, k):
    for c in range(k):
        comb[i, c] = c


@njit(**_OPTIONS)
def _next(comb, i, k, size):
    """The next ``k``-subset of ``range(size)`` after ``comb[i, :k]`` (lexicographic); False after the last."""
    c = k - 1
    while c >= 0 and comb[i, c] == size - k + c:
        c -= 1
    if c < 0:
        return False
    comb[i, c] += 1
    for d in range(c + 1, k):
        comb[i, d] = comb[i, d - 1] + 1
    return True


@njit(**_OPTIONS)
def _rest_offsets(sizes, stride, comb, x, depth, j, out):
    """Flat offsets of every profile of the players other than ``j``: chosen supports for players up
    to ``depth``, all actions after it. Returns how many were written to ``out``."""
    n = sizes.shape[0]
    out[0] = 0
    count = 1
    for k in range(n):
        if k == j:
            continue
        width = x[k] if k <= depth else sizes[k]
        for r in range(count - 1, -1, -1):  # expand in place, back to front
            base = out[r]
            for d in range(width):
                a = comb[k, d] if k <= depth else d
                out[r * width + d] = base + a * stride[k]
        count *= width
    return count


@njit(**_OPTIONS)
def _undominated(q, sizes, stride, comb, x, depth, rest):
    """No action of a chosen support (players ``0..depth``) strictly dominated by another action of
    its player, conditional on the others' chosen supports (all actions after ``depth``)."""
    for j in range(depth + 1):
        count = _rest_offsets(sizes, stride, comb, x, depth, j, rest)
        s = stride[j]
        for c in range(x[j]):
            a = comb[j, c]
            for b in range(sizes[j]):
                if b == a:
                    continue
                dominated = True
                for r in range(count):
                    if not q[j, rest[r] + b * s] > q[j, rest[r] + a * s]:
                        dominated = False
                        break
                if dominated:
                    return False
    return True


@njit(**_OPTIONS)
def _newton(q, n, x, digits, flat, count, sigma, big_u, big_j, w, mat, f, solver):
    """Newton on the support's conditions from ``sigma [N, A_max]`` (the supports' probabilities in
    the order of their actions). True at a root (then in ``sigma``)."""
    m = 0
    for i in range(n):
        m += x[i] - 1
    for step in range(NEWTON_STEPS):
        for i in range(n):
            for k in range(x[i]):
                big_u[i, k] = 0.0
                for j in range(n):
                    for b in range(x[j]):
                        big_j[i, k, j, b] = 0.0
        for t in range(count):
            r = flat[t]
            for i in range(n):
                w[i] = sigma[i, digits[t, i]]
            for i in range(n):
                qi = q[i, r]
                di = digits[t, i]
                pe = 1.0
                for k in range(n):
                    if k != i:
                        pe *= w[k]
                big_u[i, di] += qi * pe
                for j in range(n):
                    if j == i:
                        continue
                    pj = 1.0
                    for k in range(n):
                        if k != i and k != j:
                            pj *= w[k]
                    big_j[i, di, j, digits[t, j]] += qi * pj
        row = 0
        worst = 0.0
        for i in range(n):
            for k in range(1, x[i]):
                f[row] = big_u[i, k] - big_u[i, 0]
                worst = max(worst, abs(f[row]))
                col = 0
                for j in range(n):
                    for b in range(1, x[j]):
                        if j == i:
                            mat[row, col] = 0.0
                        else:  # d (u_i(k) - u_i(0)) / d sigma_j(b), with sigma_j(0) = 1 - the others
                            own, ref = big_j[i, k, j], big_j[i, 0, j]
                            mat[row, col] = own[b] - own[0] - (ref[b] - ref[0])
                        col += 1
                row += 1
        if worst < ROOT_TOL:
            return True
        if step >= SLOW_AFTER and worst > SLOW_RESIDUAL:  # not in a root's basin (or none is real)
            return False
        lu, piv, step_out, vec = solver
        if not _lu_factor(mat[:m, :m], lu[:m, :m], piv[:m]):
            return False
        if not _solve(lu[:m, :m], piv[:m], f[: m - 1], f[m - 1], step_out[:m], vec[:m]):
            return False
        col = 0
        for j in range(n):
            total = 0.0
            for b in range(1, x[j]):
                sigma[j, b] -= step_out[col]
                if not abs(sigma[j, b]) < DIVERGED:
                    return False
                total += sigma[j, b]
                col += 1
            sigma[j, 0] = 1.0 - total
    return False


@njit(**_OPTIONS)
def _accept(q, sizes, comb, x, sigma, tol, p_out, p, u, bufs):
    """The Nash gap of the root ``sigma`` on support ``comb`` over every action (written to
    ``p_out [N, A_max]`` when within ``tol``); ``inf`` for a root with a negative probability."""
    n = sizes.shape[0]
    for i in range(n):
        for k in range(x[i]):
            if not sigma[i, k] >= -NEGATIVE:
                return np.inf
    off = 0
    for i in range(n):
        total = 0.0
        for k in range(x[i]):
            total += max(sigma[i, k], 0.0)
        for a in range(sizes[i]):
            p[off + a] = 0.0
        for k in range(x[i]):
            p[off + comb[i, k]] = max(sigma[i, k], 0.0) / total
        off += sizes[i]
    deviation_payoffs(q, sizes, p, u, bufs)
    starts = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        starts[i + 1] = starts[i] + sizes[i]
    gap = _gap(u, p, sizes, starts)
    if not gap <= tol:
        return np.inf
    off = 0
    for i in range(n):
        for a in range(sizes[i]):
            p_out[i, a] = p[off + a]
        off += sizes[i]
    return gap


@njit(**_OPTIONS)
def _pairs_of_three(q, sizes, stride, comb, x, sigma, tol, p_out, p, u, bufs):
    """Three players mixing two actions each: the conditions are bilinear,
    :math:`E_i = a_i + b_i p_j + c_i p_k + d_i p_j p_k = 0` (:math:`p_i` the probability of
    player i's first supported action, j < k the others), so :math:`p_1` and :math:`p_0` are
    rational in :math:`t = p_2` (from :math:`E_0` and :math:`E_1`) and :math:`E_2` times their
    denominators is a quadratic in t: every root, exactly (Newton from a few starts can miss one)."""
    coef = np.empty((3, 4))
    for i in range(3):
        j, k = (1, 2) if i == 0 else ((0, 2) if i == 1 else (0, 1))
        delta = np.empty((2, 2))  # payoff of i's second supported action minus its first
        for dj in range(2):
            for dk in range(2):
                hi = comb[i, 1] * stride[i] + comb[j, dj] * stride[j] + comb[k, dk] * stride[k]
                lo = comb[i, 0] * stride[i] + comb[j, dj] * stride[j] + comb[k, dk] * stride[k]
                delta[dj, dk] = q[i, hi] - q[i, lo]
        # weights (p, 1 - p) on (first, second): expand in p_j, p_k
        coef[i, 0] = delta[1, 1]
        coef[i, 1] = delta[0, 1] - delta[1, 1]
        coef[i, 2] = delta[1, 0] - delta[1, 1]
        coef[i, 3] = delta[0, 0] - delta[0, 1] - delta[1, 0] + delta[1, 1]
    a0, b0, c0, d0 = coef[0, 0], coef[0, 1], coef[0, 2], coef[0, 3]  # E_0(p1, t)
    a1, b1, c1, d1 = coef[1, 0], coef[1, 1], coef[1, 2], coef[1, 3]  # E_1(p0, t)
    a2, b2, c2, d2 = coef[2, 0], coef[2, 1], coef[2, 2], coef[2, 3]  # E_2(p0, p1)
    # p1 = -A0 / B0, p0 = -A1 / B1 with A0 = a0 + c0 t, B0 = b0 + d0 t, A1 = a1 + c1 t, B1 = b1 + d1 t;
    # E_2 B0 B1 = a2 B0 B1 - b2 A1 B0 - c2 A0 B1 + d2 A0 A1 = h0 + h1 t + h2 t^2
    h0 = a2 * b0 * b1 - b2 * a1 * b0 - c2 * a0 * b1 + d2 * a0 * a1
    h1 = a2 * (b0 * d1 + d0 * b1) - b2 * (a1 * d0 + c1 * b0) - c2 * (a0 * d1 + c0 * b1) + d2 * (a0 * c1 + c0 * a1)
    h2 = a2 * d0 * d1 - b2 * c1 * d0 - c2 * c0 * d1 + d2 * c0 * c1
    roots = np.empty(2)
    count = 0
    if abs(h2) > 1e-14 * (abs(h0) + abs(h1) + abs(h2)):
        disc = h1 * h1 - 4.0 * h2 * h0
        if disc >= 0.0:
            root = np.sqrt(disc)
            big = -0.5 * (h1 + root if h1 >= 0.0 else h1 - root)  # stable quadratic formula
            roots[0] = big / h2
            count = 1
            if big != 0.0:
                roots[1] = h0 / big
                count = 2
    elif abs(h1) > 0.0:
        roots[0] = -h0 / h1
        count = 1
    for r in range(count):
        t = roots[r]
        den0, den1 = b0 + d0 * t, b1 + d1 * t
        if den0 == 0.0 or den1 == 0.0:
            continue
        probs = (-(a1 + c1 * t) / den1, -(a0 + c0 * t) / den0, t)
        for i in range(3):
            sigma[i, 0], sigma[i, 1] = probs[i], 1.0 - probs[i]
        gap = _accept(q, sizes, comb, x, sigma, tol, p_out, p, u, bufs)
        if gap <= tol:
            return gap
    return np.inf


@njit(**_OPTIONS)
def _leaf(q, sizes, stride, comb, x, tol, starts, p_out, work):
    """The equilibrium conditions of the support ``comb`` (sizes ``x``): in closed form for three
    players mixing two actions each, else by Newton from the centroid and up to ``starts - 1``
    fixed interior points. The Nash gap of the first acceptable root (written to ``p_out``), or
    ``inf``."""
    digits, flat, sigma, big_u, big_j, w, mat, f, p, u, bufs, solver = work
    n = sizes.shape[0]
    if n == 3 and x[0] == 2 and x[1] == 2 and x[2] == 2:
        return _pairs_of_three(q, sizes, stride, comb, x, sigma, tol, p_out, p, u, bufs)
    count = 1
    for i in range(n):
        count *= x[i]
    for t in range(count):  # every profile of the support, row-major
        rest = t
        r = 0
        for i in range(n - 1, -1, -1):
            d = rest % x[i]
            rest //= x[i]
            digits[t, i] = d
            r += comb[i, d] * stride[i]
        flat[t] = r
    linear = True  # each player's conditions involve at most one mixing rival: one root, one start
    for i in range(n):
        mixing = 0
        for j in range(n):
            if j != i and x[j] > 1:
                mixing += 1
        if mixing > 1:
            linear = False
    for start in range(1 if linear else starts):
        for i in range(n):
            total = 0.0
            for k in range(x[i]):
                # the centroid, then fixed interior points (Weyl sequence: no random state to seed)
                sigma[i, k] = (
                    1.0 if start == 0 else 0.1 + ((start * 7919 + i * 104729 + k * 1299709) * 0.6180339887498949) % 1.0
                )
                total += sigma[i, k]
            for k in range(x[i]):
                sigma[i, k] /= total
        if not _newton(q, n, x, digits, flat, count, sigma, big_u, big_j, w, mat, f, solver):
            continue
        gap = _accept(q, sizes, comb, x, sigma, tol, p_out, p, u, bufs)
        if gap <= tol:
            return gap
    return np.inf


@njit(**_OPTIONS)
def workspace(sizes, n_profiles):
    """Scratch of :func:`first_equilibrium`."""
    n = sizes.shape[0]
    a_max = sizes.max()
    k_total = sizes.sum()
    m = max(k_total - n, 1)  # unknowns of the largest support problem
    solver = (np.empty((m, m)), np.empty(m, dtype=np.int64), np.empty(m), np.empty(m))  # LU, pivots, step
    leaf = (
        np.empty((n_profiles, n), dtype=np.int64),
        np.empty(n_profiles, dtype=np.int64),
        np.empty((n, a_max)),
        np.empty((n, a_max)),
        np.empty((n, a_max, n, a_max)),
        np.empty(n),
        np.empty((m, m)),
        np.empty(m),
        np.empty(k_total),
        np.empty(k_total),
        np.empty((3, n_profiles)),
        solver,
    )
    return np.empty((n, a_max), dtype=np.int64), np.empty(n_profiles, dtype=np.int64), leaf


@njit(**_OPTIONS)
def first_equilibrium(q, sizes, stride, profiles, tol, max_leaves, p_out, work):
    """The first equilibrium of the (normalised) game ``q [N, P]`` in the search order of
    ``profiles`` (:func:`size_profiles`): its Nash gap, strategies in ``p_out [N, A_max]``; ``inf``
    when none was found within ``max_leaves`` Newton problems."""
    comb, rest, leaf = work
    n = sizes.shape[0]
    leaves = 0
    for starts in (1, 1 + EXTRA_STARTS):  # the centroid everywhere first, then every start
        for k in range(profiles.shape[0]):
            x = profiles[k]
            i = 0
            _first(comb, 0, x[0])
            while i >= 0:
                descend = False
                if _undominated(q, sizes, stride, comb, x, i, rest):
                    if i == n - 1:
                        if leaves >= max_leaves:
                            return np.inf
                        leaves += 1
                        gap = _leaf(q, sizes, stride, comb, x, tol, starts, p_out, leaf)
                        if gap <= tol:
                            return gap
                    else:
                        i += 1
                        _first(comb, i, x[i])
                        descend = True
                if not descend:
                    while i >= 0 and not _next(comb, i, x[i], sizes[i]):
                        i -= 1
    return np.inf
