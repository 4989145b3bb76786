r"""Nash equilibria of N-player games by the logit homotopy, compiled with numba (CPU).

The logit (quantal-response) equilibria of a game form, for :math:`\lambda` from 0 to
:math:`\infty`, a *principal branch* that starts at uniform play and, for generic games,
converges to one Nash equilibrium (McKelvey and Palfrey 1995): the equilibrium selected by the
logit tracing procedure (the "logit solution"). The branch is the zero set of

.. math::

    H_{ia}(y, \lambda) = y_{ia} - y_{i0} - \lambda \big(u_i(a, p_{-i}) - u_i(0, p_{-i})\big) = 0
    \quad (a \ne 0), \qquad \sum_a e^{y_{ia}} - 1 = 0,

in log-probabilities :math:`y_{ia} = \ln p_{ia}` (Turocy 2005), a curve in
:math:`(y, \lambda)`. It is followed by arc-length continuation (Allgower and Georg 1990): a
second-order predictor along the tangent (the null vector of :math:`DH`, oriented by the previous
one) and Newton correctors orthogonal to it, the step doubling while the corrector converges fast
and halving when it does not, so turning points of the branch in :math:`\lambda` are passed; a
step that changes the sign of :math:`\det [DH; t^T]`, the branch's orientation, has left it and
is retried shorter.

Along the way, once the branch's support (actions played with probability above ``1e-8``)
settles, the candidate equilibrium is polished: Newton's method on the equilibrium conditions of
that support,

.. math::

    u_i(a, p_{-i}) - u_i(r_i, p_{-i}) = 0 \ (a \in S_i \setminus r_i), \qquad
    \sum_{a \in S_i} p_{ia} = 1, \qquad p_{ia} = 0 \ (a \notin S_i),

a square polynomial system, and accepted only with every probability non-negative and a Nash
gap (largest unilateral gain, deviations outside the support included) within ``tol``. A game
whose branch ends (``lambda_max``, step limits) without an accepted polish is returned with its
best profile and flagged, never silently.

Payoffs arrive normalised by the caller (largest absolute payoff 1), so :math:`\lambda` and the
tolerances mean the same in every game.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_OPTIONS = {"cache": True, "error_model": "numpy"}
# Contractions may reorder their sums (vectorised); the accepted equilibrium's gap is checked exactly.
_FAST = {"cache": True, "error_model": "numpy", "fastmath": True}
SUPPORT_FLOOR = 1e-8  # probability below which an action is off the branch's support
RESIDUAL_TOL = 1e-9  # |H| (times 1 + lambda) at which a corrected point is on the branch
POLISH_STEPS = 12  # Newton steps on a support: quadratic convergence when the support is right
POLISH_FROM = 0.02  # branch points with a Nash gap above this are not polished
NEAR_BRANCH = 0.1  # a polished equilibrium farther than this (max |p - p_branch|) belongs to another branch
# Weights below this are skipped in contractions: with payoffs normalised to |q| <= 1 the terms left
# out change u by under N 1e-13, a thousandth of the corrector's tolerance (RESIDUAL_TOL (1 + lambda)).
NEGLIGIBLE = 1e-14
CORRECTOR_STEPS = 8  # Newton iterations per path step before the step is halved


@njit(**_FAST)
def _contract_axis(cur, pre, d, post, p, base, out):
    """``out[r, c] = sum_j cur[r, j, c] p[base + j]`` over a flat ``[pre, d, post]`` tensor."""
    if post == 1:
        for r in range(pre):
            total = 0.0
            row = r * d
            for j in range(d):
                total += cur[row + j] * p[base + j]
            out[r] = total
        return
    for r in range(pre * post):
        out[r] = 0.0
    for r in range(pre):
        for j in range(d):
            w = p[base + j]
            if w < NEGLIGIBLE:
                continue  # an action the branch has all but dropped: its terms are below the residual's tolerance
            src = (r * d + j) * post
            dst = r * post
            for c in range(post):
                out[dst + c] += cur[src + c] * w


@njit(**_FAST)
def _contract_all_but(g, sizes, off, p, keep_a, keep_b, gone, buf_a, buf_b):
    """Contract the payoff tensor ``g`` (flat, row-major over ``sizes`` without the axis ``gone``,
    -1: none, which ``g`` lacks) with every player's strategy ``p[off[k]:off[k+1]]`` except
    players ``keep_a`` and ``keep_b`` (-1: none), axes from the first to the last (the first
    contraction is then a sum of long contiguous rows, which vectorises, where the last axis's
    short dot products do not). Returns the result, flat over the kept axes in their order (a
    view of a buffer, or ``g`` itself when nothing is contracted)."""
    n = sizes.shape[0]
    cur = g
    size = g.shape[0]
    pre = 1  # product of the kept axes before the one being contracted
    use_a = True
    for k in range(n):
        if k == gone:
            continue
        if k == keep_a or k == keep_b:
            pre *= sizes[k]
            continue
        d = sizes[k]
        post = size // (d * pre)
        out = buf_a if use_a else buf_b
        use_a = not use_a
        _contract_axis(cur, pre, d, post, p, off[k], out)
        size = pre * post
        cur = out[:size]
    return cur


@njit(**_OPTIONS)
def _store_block(jac, block, sizes, off, i, low):
    """``jac[ia, lb]`` from ``block``, flat over the axes of ``i`` and ``low`` in their order."""
    first, second = (i, low) if i < low else (low, i)
    for x in range(sizes[first]):
        for y in range(sizes[second]):
            value = block[x * sizes[second] + y]
            if first == i:
                jac[off[i] + x, off[low] + y] = value
            else:
                jac[off[i] + y, off[low] + x] = value


@njit(**_OPTIONS)
def _derivatives(q, sizes, off, p, u, jac, bufs, with_jacobian):
    """``u[ia] = u_i(a, p_-i)`` and, when asked, ``jac[ia, lb] = d u_i(a, p_-i) / d p_lb`` (the
    payoff tensor of ``i`` contracted with every strategy but ``i``'s and ``l``'s; zero for
    ``l == i``). With the Jacobian, ``u`` follows from it by multilinearity.

    The Jacobian's blocks of player ``i`` share their first contraction: the first axis ``F`` other
    than ``i`` is contracted out of the full tensor once (into ``bufs[2]``), and every block but
    ``(i, F)`` continues from there; so a player costs two passes over the full tensor instead of
    ``N - 1`` (4 players: 8 instead of 12 per Jacobian; 5 players: 10 instead of 20)."""
    n = sizes.shape[0]
    if with_jacobian:
        jac[:, :] = 0.0
    for i in range(n):
        if not with_jacobian or n == 1:
            block = _contract_all_but(q[i], sizes, off, p, i, -1, -1, bufs[0], bufs[1])
            for a in range(sizes[i]):
                u[off[i] + a] = block[a]
            continue
        first = 0 if i != 0 else 1
        block = _contract_all_but(q[i], sizes, off, p, i, first, -1, bufs[0], bufs[1])
        _store_block(jac, block, sizes, off, i, first)
        if n >= 3:
            pre = 1
            for k in range(first):
                pre *= sizes[k]
            size = q.shape[1] // sizes[first]
            shared = bufs[2, :size]
            _contract_axis(q[i], pre, sizes[first], size // pre, p, off[first], shared)
            for low in range(n):
                if low == i or low == first:
                    continue
                block = _contract_all_but(shared, sizes, off, p, i, low, first, bufs[0], bufs[1])
                _store_block(jac, block, sizes, off, i, low)
        other = 0 if i != 0 else 1  # u_i(a, p_-i) = sum_b jac[ia, other b] p_other(b)
        for a in range(sizes[i]):
            total = 0.0
            for b in range(sizes[other]):
                total += jac[off[i] + a, off[other] + b] * p[off[other] + b]
            u[off[i] + a] = total


@njit(**_OPTIONS)
def deviation_payoffs(q, sizes, p, u, bufs):
    """``u[ia] = u_i(a, p_-i)`` of game ``q [N, P]`` at the flat profile ``p`` (``bufs``: ``[3, P]``)."""
    n = sizes.shape[0]
    off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        off[i + 1] = off[i] + sizes[i]
    _derivatives(q, sizes, off, p, u, np.zeros((0, 0)), bufs, False)


@njit(**_OPTIONS)
def _gap(u, p, sizes, off):
    """Nash gap of ``p`` given its deviation payoffs ``u``."""
    worst = 0.0
    for i in range(sizes.shape[0]):
        best = -np.inf
        value = 0.0
        for a in range(sizes[i]):
            best = max(best, u[off[i] + a])
            value += p[off[i] + a] * u[off[i] + a]
        worst = max(worst, best - value)
    return worst


@njit(**_OPTIONS)
def _system(z, prior, q, sizes, off, u, jac, bufs, p, h, dh, with_jacobian):
    """``h = H(z)`` and, when asked, ``dh = DH(z)`` (``K x (K + 1)``) at ``z = (y, lambda)``, for the
    branch that starts at ``y = prior`` (log-probabilities) at ``lambda = 0``."""
    n = sizes.shape[0]
    k_total = off[n]
    lam = z[k_total]
    for r in range(k_total):
        p[r] = np.exp(z[r])
    _derivatives(q, sizes, off, p, u, jac, bufs, with_jacobian)
    if with_jacobian:
        dh[:, :] = 0.0
    for i in range(n):
        base = off[i]
        total = 0.0
        for a in range(sizes[i]):
            total += p[base + a]
        for a in range(1, sizes[i]):
            row = base + a - 1
            h[row] = z[base + a] - z[base] - (prior[base + a] - prior[base]) - lam * (u[base + a] - u[base])
            if with_jacobian:
                dh[row, base + a] = 1.0
                dh[row, base] = -1.0
                for col in range(k_total):
                    if col < base or col >= base + sizes[i]:
                        dh[row, col] = -lam * (jac[base + a, col] - jac[base, col]) * p[col]
                dh[row, k_total] = -(u[base + a] - u[base])
        last = base + sizes[i] - 1
        h[last] = total - 1.0
        if with_jacobian:
            for b in range(sizes[i]):
                dh[last, base + b] = p[base + b]


@njit(**_OPTIONS)
def _augment(dh, t, mat):
    """``mat = [DH; t^T]``."""
    k = dh.shape[0]
    mat[:k, :] = dh
    mat[k, :] = t


@njit(**_OPTIONS)
def _lu_factor(mat, lu, piv):
    """LU factors of ``mat`` with partial pivoting into ``lu`` (unit lower triangle below the
    diagonal, upper on and above it) and the row order ``piv``; False when a pivot is zero."""
    k = mat.shape[0]
    lu[:, :] = mat
    for r in range(k):
        piv[r] = r
    for c in range(k):
        best, row = abs(lu[c, c]), c
        for r in range(c + 1, k):
            if abs(lu[r, c]) > best:
                best, row = abs(lu[r, c]), r
        if best == 0.0:
            return False
        if row != c:
            for j in range(k):
                lu[c, j], lu[row, j] = lu[row, j], lu[c, j]
            piv[c], piv[row] = piv[row], piv[c]
        inverse = 1.0 / lu[c, c]
        for r in range(c + 1, k):
            factor = lu[r, c] * inverse
            lu[r, c] = factor
            if factor != 0.0:
                for j in range(c + 1, k):
                    lu[r, j] -= factor * lu[c, j]
    return True


@njit(**_OPTIONS)
def _det_sign(lu, piv):
    """The sign of the determinant of the matrix factored into ``lu, piv`` by :func:`_lu_factor`:
    the signs of ``U``'s diagonal times the parity of the row permutation (a cycle of even length
    is an odd permutation)."""
    k = lu.shape[0]
    sign = 1.0
    for c in range(k):
        if lu[c, c] < 0.0:
            sign = -sign
    seen = np.zeros(k, dtype=np.bool_)
    for c in range(k):
        length = 0
        j = c
        while not seen[j]:
            seen[j] = True
            j = piv[j]
            length += 1
        if length > 0 and length % 2 == 0:
            sign = -sign
    return sign


@njit(**_OPTIONS)
def _solve(lu, piv, rhs_h, rhs_last, out, vec):
    """Solve ``mat x = [rhs_h; rhs_last]`` into ``out`` from ``mat``'s factors (:func:`_lu_factor`);
    False when the solution is not finite."""
    k = rhs_h.shape[0]
    for r in range(k + 1):
        source = piv[r]
        vec[r] = rhs_h[source] if source < k else rhs_last
    for r in range(k + 1):  # forward: L y = P b
        total = vec[r]
        for j in range(r):
            total -= lu[r, j] * vec[j]
        vec[r] = total
    for r in range(k, -1, -1):  # back: U x = y
        total = vec[r]
        for j in range(r + 1, k + 1):
            total -= lu[r, j] * vec[j]
        vec[r] = total / lu[r, r]
    for r in range(k + 1):
        if not np.isfinite(vec[r]):
            return False
        out[r] = vec[r]
    return True


@njit(**_OPTIONS)
def _restrict(q, sizes, support):
    """The game restricted to ``support``: payoffs ``[N, prod |S_j|]`` (flat, row-major over the
    supported actions in their order), the supported sizes and each kept action's original index."""
    n = sizes.shape[0]
    sub_sizes = np.zeros(n, dtype=np.int64)
    start = 0
    for i in range(n):
        for a in range(sizes[i]):
            sub_sizes[i] += support[start + a]
        start += sizes[i]
    total = 1
    for i in range(n):
        total *= sub_sizes[i]
    kept = np.zeros(sub_sizes.sum(), dtype=np.int64)  # per player, the kept actions' indices
    strides = np.ones(n, dtype=np.int64)  # of the full flat payoffs
    for i in range(n - 2, -1, -1):
        strides[i] = strides[i + 1] * sizes[i + 1]
    r, start = 0, 0
    for i in range(n):
        for a in range(sizes[i]):
            if support[start + a]:
                kept[r] = a
                r += 1
        start += sizes[i]
    sub_off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        sub_off[i + 1] = sub_off[i] + sub_sizes[i]
    out = np.empty((n, total))
    digits = np.zeros(n, dtype=np.int64)
    for flat in range(total):
        source = 0
        for i in range(n):
            source += kept[sub_off[i] + digits[i]] * strides[i]
        for i in range(n):
            out[i, flat] = q[i, source]
        for i in range(n - 1, -1, -1):  # next index, row-major
            digits[i] += 1
            if digits[i] < sub_sizes[i]:
                break
            digits[i] = 0
    return out, sub_sizes, sub_off


@njit(**_OPTIONS)
def _support_newton(q, sizes, off, start, support, steps, p):
    """Newton on the equilibrium conditions of ``support`` from ``start`` (renormalised on the
    support), solution in ``p`` (zero off the support). Returns its residual (``inf`` if singular).

    The conditions involve only the supported actions, so Newton runs on the game restricted to
    the support (:func:`_restrict`, built once): its payoff tensor has ``prod |S_j|`` entries
    instead of ``prod A_j``, which makes each step's Jacobian nearly free for the small supports
    a polish meets (Cournot-shaped 4 x 13 games: 28,561 entries against a few dozen)."""
    n = sizes.shape[0]
    k_total = off[n]
    sub_q, sub_sizes, sub_off = _restrict(q, sizes, support)
    m = sub_off[n]
    size_p = sub_q.shape[1]
    u = np.zeros(m)
    jac = np.zeros((m, m))
    bufs = np.zeros((3, size_p))  # contraction buffers (nashrl.equilibrium._homotopy_numba._derivatives)
    x = np.zeros(m)  # the supported probabilities, in the restricted game's order
    r = 0
    for i in range(n):
        total = 0.0
        for a in range(sizes[i]):
            if support[off[i] + a]:
                total += max(start[off[i] + a], 1e-12)
        for a in range(sizes[i]):
            if support[off[i] + a]:
                x[r] = max(start[off[i] + a], 1e-12) / total
                r += 1
    f = np.zeros(m)
    jm = np.zeros((m, m))
    residual = np.inf
    for _ in range(steps):
        _derivatives(sub_q, sub_sizes, sub_off, x, u, jac, bufs, True)
        jm[:, :] = 0.0
        row = 0
        for i in range(n):
            ref = sub_off[i]
            total = 0.0
            for c in range(sub_off[i], sub_off[i + 1]):
                total += x[c]
                if c == ref:
                    continue
                f[row] = u[c] - u[ref]
                for col in range(m):
                    if col < sub_off[i] or col >= sub_off[i + 1]:
                        jm[row, col] = jac[c, col] - jac[ref, col]
                row += 1
            f[row] = total - 1.0
            for c in range(sub_off[i], sub_off[i + 1]):
                jm[row, c] = 1.0
            row += 1
        residual = np.abs(f).max()
        if residual < 1e-14:
            break
        try:
            dx = np.linalg.solve(jm, f)
        except Exception:  # noqa: BLE001 (numba: LinAlgError on singular matrices)
            return np.inf
        for c in range(m):
            x[c] -= dx[c]
            if not np.isfinite(x[c]):
                return np.inf
    p[:] = 0.0
    r = 0
    for k in range(k_total):
        if support[k]:
            p[k] = x[r]
            r += 1
    return residual


@njit(**_OPTIONS)
def _polish(q, sizes, off, start, first_support, tol, steps, u, jac, bufs, p_out):
    """An equilibrium near ``start``: Newton on the conditions of a support, corrected by an active
    set -- the most negative probability's action leaves the support, else the most profitable
    action outside it joins -- for up to ``2 N`` rounds. Returns the Nash gap of the result (written
    to ``p_out`` when within ``tol``), ``inf`` when none is found."""
    n = sizes.shape[0]
    k_total = off[n]
    support = first_support.copy()
    p = np.zeros(k_total)
    for _ in range(2 * n + 1):
        residual = _support_newton(q, sizes, off, start, support, steps, p)
        if not residual < 1e-10:
            return np.inf
        worst, low = -1, -1e-12
        for r in range(k_total):
            if p[r] < low:
                worst, low = r, p[r]
        if worst >= 0:  # an action with negative weight leaves (each player keeps one)
            i = 0
            while off[i + 1] <= worst:
                i += 1
            kept = 0
            for a in range(sizes[i]):
                kept += support[off[i] + a]
            if kept <= 1:
                return np.inf
            support[worst] = False
            continue
        for i in range(n):
            total = 0.0
            for a in range(sizes[i]):
                total += p[off[i] + a]
            for a in range(sizes[i]):
                p[off[i] + a] /= total
        _derivatives(q, sizes, off, p, u, jac, bufs, False)
        gap = _gap(u, p, sizes, off)
        if gap <= tol:
            p_out[:] = p
            return gap
        best, join = -np.inf, -1  # the most profitable action outside the support joins
        for i in range(n):
            value = 0.0
            for a in range(sizes[i]):
                value += p[off[i] + a] * u[off[i] + a]
            for a in range(sizes[i]):
                r = off[i] + a
                if not support[r] and u[r] - value > best:
                    best, join = u[r] - value, r
        if join < 0:
            return np.inf
        support[join] = True
    return np.inf


@njit(**_OPTIONS)
def _trace(q, sizes, prior, tol, lambda_max, max_steps, x_out):
    """Follow the logit branch of game ``q [N, P]`` (payoffs flat, row-major over ``sizes``) that
    starts at ``prior`` (log-probabilities, the principal branch for uniform play) to a polished
    Nash equilibrium. Writes the strategies into ``x_out [N, A_max]``;
    returns ``(gap, steps)``, the gap ``inf`` when no equilibrium was accepted (``x_out`` then
    holds the last point of the branch).

    Predictor: a second-order step of length ``step`` along the unit tangent, ``z + s t +
    s^2 / (2 s') (t - t')`` (the tangent's change over the last step ``s'`` estimates the branch's
    curvature). Corrector: Newton's method on ``H = 0`` orthogonal to ``t`` (the augmented matrix
    ``[DH; t^T]`` at each iterate), whose last Jacobian also gives the new point's tangent.

    A step is rejected (and halved) when the corrector does not contract fast, the tangent turns by
    more than ~25 degrees, or the sign of ``det [DH; t^T]`` changes. The sign is the branch's
    orientation and stays constant along a smooth branch (Allgower and Georg 1990, ch. 2); Newton
    converges from farther than a chord corrector, so where the principal branch nearly folds (a
    near-turning point beside another sheet of logit equilibria) a long step can land on the other
    sheet, which the sign change reveals. After a rejection the step may not grow for two steps;
    otherwise it doubles after an easy one (at most 4 iterations)."""
    n = sizes.shape[0]
    off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        off[i + 1] = off[i] + sizes[i]
    k_total = off[n]
    size_p = q.shape[1]
    u = np.zeros(k_total)
    jac = np.zeros((k_total, k_total))
    bufs = np.zeros((3, size_p))  # contraction buffers (nashrl.equilibrium._homotopy_numba._derivatives)
    p = np.zeros(k_total)
    h = np.zeros(k_total)
    dh = np.zeros((k_total, k_total + 1))
    mat = np.zeros((k_total + 1, k_total + 1))
    vec = np.zeros(k_total + 1)
    zero_h = np.zeros(k_total)
    z = np.zeros(k_total + 1)
    z[:k_total] = prior
    t = np.zeros(k_total + 1)
    t[k_total] = 1.0
    tangent = np.zeros(k_total + 1)
    _system(z, prior, q, sizes, off, u, jac, bufs, p, h, dh, True)
    _augment(dh, t, mat)
    lu, piv = np.zeros_like(mat), np.zeros(k_total + 1, dtype=np.int64)
    if not (_lu_factor(mat, lu, piv) and _solve(lu, piv, zero_h, 1.0, tangent, vec)):
        return np.inf, 0
    orientation = _det_sign(lu, piv)  # det [DH; t^T] keeps this sign along the branch
    t[:] = tangent / np.sqrt((tangent * tangent).sum())
    t_last = np.zeros(k_total + 1)  # the tangent before the last accepted step, and that step's length
    s_last = 0.0
    step = 0.3
    hold = 0  # accepted steps before the step may grow again after a rejection
    trial = np.zeros(k_total + 1)
    dz = np.zeros(k_total + 1)
    support = np.zeros(k_total, dtype=np.bool_)
    last_support = np.zeros(k_total, dtype=np.bool_)
    polished = np.zeros(k_total)
    best_gap = np.inf
    steps = 0
    tried_lambda = 0.0
    while steps < max_steps:
        steps += 1
        trial[:] = z + step * t
        if s_last > 0.0:
            trial += (0.5 * step * step / s_last) * (t - t_last)
        ok = False
        used = 0
        previous = np.inf
        for _ in range(CORRECTOR_STEPS):
            used += 1
            _system(trial, prior, q, sizes, off, u, jac, bufs, p, h, dh, True)
            if np.abs(h).max() <= RESIDUAL_TOL * (1.0 + abs(trial[k_total])):
                ok = True  # on the branch (the polish makes the equilibrium exact)
                break
            _augment(dh, t, mat)
            if not (_lu_factor(mat, lu, piv) and _solve(lu, piv, -h, 0.0, dz, vec)):
                break
            trial += dz
            size = np.sqrt((dz * dz).sum())
            # Reject a step whose corrector wanders off or stops contracting: it would jump branches.
            if size > 0.3 * step + 1e-6 or (used > 1 and size > 0.5 * previous):
                break
            previous = size
        if ok:  # the tangent at the new point, from the Jacobian computed there
            _augment(dh, t, mat)
            ok = _lu_factor(mat, lu, piv) and _solve(lu, piv, zero_h, 1.0, tangent, vec)
        if ok:
            tangent /= np.sqrt((tangent * tangent).sum())
            ok = (tangent * t).sum() > 0.9  # the branch turned too far within one step: shorter steps
        if ok:  # det [DH; t_old^T] has the sign of det [DH; t_new^T]; another sign: another sheet
            ok = _det_sign(lu, piv) == orientation
        if not ok:
            step *= 0.5
            hold = 2
            if step < 1e-10:
                break
            continue
        z[:] = trial
        t_last[:] = t
        s_last = step
        t[:] = tangent
        if hold > 0:
            hold -= 1
        elif used <= 4:
            step = min(step * 2.0, 1e3)
        lam = z[k_total]
        changed = False
        for r in range(k_total):
            support[r] = p[r] > SUPPORT_FLOOR
            changed = changed or support[r] != last_support[r]
        last_support[:] = support
        # Polish once the branch point is nearly an equilibrium, and keep the result only if it is
        # the equilibrium the branch is heading to (near the point): a polish from a point still
        # far from the limit can converge to another equilibrium.
        if (changed or lam > 2.0 * tried_lambda) and _gap(u, p, sizes, off) <= POLISH_FROM:
            tried_lambda = lam
            gap = _polish(q, sizes, off, p, support, tol, POLISH_STEPS, u, jac, bufs, polished)
            if gap <= tol and np.abs(polished - p).max() <= NEAR_BRANCH:
                best_gap = gap
                break
        if lam > lambda_max:
            break
    if best_gap > tol:  # the branch ended unpolished: supports at coarser floors (near-indifferent actions)
        for floor in (1e-6, 1e-4, 1e-3, 1e-2, 5e-2):
            for r in range(k_total):
                support[r] = p[r] > floor
            gap = _polish(q, sizes, off, p, support, tol, POLISH_STEPS, u, jac, bufs, polished)
            if gap <= tol:
                best_gap = gap
                break
    src = polished if best_gap <= tol else p
    for i in range(n):
        for a in range(sizes[i]):
            x_out[i, a] = src[off[i] + a]
    return best_gap, steps


@njit(**_OPTIONS)
def trace_one(q, sizes, tol, lambda_max, max_steps, x_out, restarts=10):
    """:func:`_trace` from uniform play; where that branch ends without an equilibrium (it can
    pass close to a singular point), again from ``restarts`` seeded random interior priors (the
    logit tracing procedure from another prior follows another path). Returns ``(gap, steps)``."""
    n = sizes.shape[0]
    k_total = sizes.sum()
    prior = np.zeros(k_total)
    r = 0
    for i in range(n):
        for _ in range(sizes[i]):
            prior[r] = -np.log(sizes[i])
            r += 1
    gap, steps = _trace(q, sizes, prior, tol, lambda_max, max_steps, x_out)
    np.random.seed(12345)
    for _ in range(restarts):
        if gap <= tol:
            break
        r = 0
        for i in range(n):
            total = 0.0
            for a in range(sizes[i]):
                prior[r + a] = np.random.gamma(1.0)
                total += prior[r + a]
            for a in range(sizes[i]):
                prior[r + a] = np.log(prior[r + a] / total)
            r += sizes[i]
        gap, more = _trace(q, sizes, prior, tol, lambda_max, max_steps, x_out)
        steps += more
    return gap, steps


@njit(parallel=True, cache=True)
def trace_batch(q, sizes, tol, lambda_max, max_steps):
    """:func:`trace_one` for every game of ``q [B, N, P]``: strategies ``[B, N, A_max]``, gaps, steps."""
    b, n = q.shape[0], sizes.shape[0]
    x = np.zeros((b, n, sizes.max()))
    gaps = np.zeros(b)
    steps = np.zeros(b, dtype=np.int64)
    for g in prange(b):
        gaps[g], steps[g] = trace_one(q[g], sizes, tol, lambda_max, max_steps, x[g])
    return x, gaps, steps
