"""The logit-equilibrium path of :mod:`nashrl.equilibrium.logit`, compiled with numba for CPU batches.

Same homotopy as the torch code (geometric path in lambda = 1/sigma from near-uniform play,
damped fixed-point iteration whose step halves when the residual grows and grows again by 1.5
when it falls), run game by game in compiled code, games spread over the cores with
``prange``: a stage game of 5 firms with 2 actions takes microseconds instead of the
milliseconds that dispatching small torch operations costs. Games it leaves above the
tolerance go on to the torch Newton polish (:func:`nashrl.equilibrium.logit.logit_equilibrium`).

The iteration takes the game's deviation payoffs as a compiled function: joint payoff tables
(:func:`logit_path`) or aggregate tables on a count grid (:func:`aggregate_logit_path`,
:mod:`nashrl.equilibrium.aggregative_logit`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _deviations(q, profiles, x, sizes, out):
    """``out[i, a]``: player i's expected payoff of action a against the others' ``x``."""
    n_players = sizes.shape[0]
    out[:, :] = 0.0
    for j in range(profiles.shape[0]):
        for i in range(n_players):
            w = q[i, j]
            for k in range(n_players):
                if k != i:
                    w *= x[k, profiles[j, k]]
            out[i, profiles[j, i]] += w


@njit(cache=True)
def _respond(dev, sizes, lam, out):
    for i in range(sizes.shape[0]):
        top = -np.inf
        for a in range(sizes[i]):
            top = max(top, dev[i, a] * lam)
        total = 0.0
        for a in range(sizes[i]):
            out[i, a] = np.exp(dev[i, a] * lam - top)
            total += out[i, a]
        for a in range(sizes[i]):
            out[i, a] /= total


@njit(cache=True)
def _add_player(dist, new, steps, probs, size):
    """In place: ``dist`` (a law over ``M`` aggregate steps) becomes the law of its sum with one
    more player's steps, ``steps[a]`` with probability ``probs[a]``; ``new`` is scratch space."""
    m = dist.shape[0]
    new[:] = 0.0
    for a in range(size):
        c = steps[a]
        p = probs[a]
        for k in range(m - c):
            new[k + c] += p * dist[k]
    dist[:] = new


@njit(cache=True)
def _aggregate_deviations(q, index, x, sizes, out):
    """``out[i, a]``: player i's expected payoff of action a, ``q[i, a * M + k]`` at k rival steps,
    against the law of the rivals' steps ``sum_j index[j, a_j]`` under ``x`` (a convolution)."""
    n_players, width = sizes.shape[0], index.shape[1]
    m = q.shape[1] // width
    dist = np.zeros(m)
    new = np.zeros(m)
    for i in range(n_players):
        dist[:] = 0.0
        dist[0] = 1.0
        for j in range(n_players):
            if j == i:
                continue
            _add_player(dist, new, index[j], x[j], sizes[j])
        for a in range(sizes[i]):
            total = 0.0
            for k in range(m):
                total += dist[k] * q[i, a * m + k]
            out[i, a] = total


JOINT, AGGREGATE = 0, 1


@njit(cache=True)
def _residual(kind, q, aux, x, sizes, lam, dev, resp):
    if kind == AGGREGATE:
        _aggregate_deviations(q, aux, x, sizes, dev)
    else:
        _deviations(q, aux, x, sizes, dev)
    _respond(dev, sizes, lam, resp)
    r = 0.0
    for i in range(sizes.shape[0]):
        for a in range(sizes[i]):
            r = max(r, abs(resp[i, a] - x[i, a]))
    return r


@njit(cache=True)
def _iterate_one(kind, q, profiles, x, sizes, lam, tol, max_iter, dev, resp, trial):
    """Damped iteration at one lambda, in place on ``x``; returns the final residual."""
    residual = _residual(kind, q, profiles, x, sizes, lam, dev, resp)
    step = 1.0
    for _ in range(max_iter):
        if residual <= tol:
            break
        for i in range(sizes.shape[0]):
            for a in range(sizes[i]):
                trial[i, a] = x[i, a] + step * (resp[i, a] - x[i, a])
        new = _residual(kind, q, profiles, trial, sizes, lam, dev, resp)
        if new <= residual:
            x[:, :] = trial
            residual = new
            step = min(step * 1.5, 1.0)
        else:
            step = max(step * 0.5, 1e-6)
            residual = _residual(kind, q, profiles, x, sizes, lam, dev, resp)  # resp back to x's response
    return residual


@njit(cache=True)
def _leave_two_out(x, index, sizes, m, out):
    """``out[i, j, k]``: law of the steps of every player but ``i`` and ``j`` under ``x``."""
    n = sizes.shape[0]
    new = np.zeros(m)
    for i in range(n):
        for j in range(n):
            dist = out[i, j]
            dist[:] = 0.0
            dist[0] = 1.0
            if j == i:
                continue
            for h in range(n):
                if h == i or h == j:
                    continue
                _add_player(dist, new, index[h], x[h], sizes[h])


@njit(cache=True)
def _aggregate_newton(q, index, x, sizes, lam, tol, steps, dev, resp, trial):
    """Newton's method on ``F(x) = x - logit(x)`` for aggregate tables (``q [N, A * M]``), in place
    on ``x``: the Jacobian from leave-two-out laws of the rivals' steps, a step halved until the
    residual falls; returns the final residual."""
    n, width = sizes.shape[0], index.shape[1]
    m = q.shape[1] // width
    total = 0
    for i in range(n):
        total += sizes[i]
    offset = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        offset[i] = offset[i - 1] + sizes[i - 1]
    two = np.zeros((n, n, m))
    ddev = np.zeros((width, width))
    jac = np.zeros((total, total))
    f = np.zeros(total)
    residual = _residual(AGGREGATE, q, index, x, sizes, lam, dev, resp)
    for _ in range(steps):
        if residual <= tol:
            break
        _leave_two_out(x, index, sizes, m, two)
        jac[:, :] = 0.0
        for i in range(n):
            for a in range(sizes[i]):
                f[offset[i] + a] = x[i, a] - resp[i, a]
                jac[offset[i] + a, offset[i] + a] = 1.0
            for j in range(n):
                if j == i:
                    continue
                for a in range(sizes[i]):  # ddev[a, b] = d dev_i(a) / d x_j(b)
                    for b in range(sizes[j]):
                        c = index[j, b]
                        v = 0.0
                        for k in range(c, m):
                            v += q[i, a * m + k] * two[i, j, k - c]
                        ddev[a, b] = v
                for b in range(sizes[j]):
                    mean = 0.0
                    for a in range(sizes[i]):
                        mean += resp[i, a] * ddev[a, b]
                    for a in range(sizes[i]):
                        jac[offset[i] + a, offset[j] + b] = -lam * resp[i, a] * (ddev[a, b] - mean)
        delta = np.linalg.solve(jac, -f)
        alpha = 1.0
        accepted = False
        for _ in range(20):
            for i in range(n):
                norm = 0.0
                for a in range(sizes[i]):
                    trial[i, a] = max(x[i, a] + alpha * delta[offset[i] + a], 1e-300)
                    norm += trial[i, a]
                for a in range(sizes[i]):
                    trial[i, a] /= norm
            new = _residual(AGGREGATE, q, index, trial, sizes, lam, dev, resp)
            if new < residual:
                x[:, :] = trial
                residual = new
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            residual = _residual(AGGREGATE, q, index, x, sizes, lam, dev, resp)
            break
    return residual


def logit_path(q, profiles, sizes, lambdas, tol, path_tol, path_iter, max_iter):
    """Strategies ``[B, N, A_max]`` and residuals ``[B]`` at ``lambdas[-1]`` for games
    ``q [B, N, J]`` (joint actions row-major, ``profiles [J, N]``)."""
    return _path(JOINT, q, profiles, sizes, lambdas, tol, path_tol, path_iter, max_iter)


def aggregate_logit_path(q, index, sizes, lambdas, tol, path_tol, path_iter, max_iter):
    """:func:`logit_path` for aggregate tables ``q [B, N, A, M]`` on a count grid (contribution
    steps ``index [N, A]``)."""
    flat = np.ascontiguousarray(q.reshape(q.shape[0], q.shape[1], -1))  # [B, N, A * M]
    return _path(AGGREGATE, flat, index, sizes, lambdas, tol, path_tol, path_iter, max_iter)


@njit(parallel=True, cache=True)
def _path(kind, q, aux, sizes, lambdas, tol, path_tol, path_iter, max_iter):
    b, n = q.shape[0], sizes.shape[0]
    width = sizes.max()
    x_all = np.zeros((b, n, width))
    residuals = np.zeros(b)
    for g in prange(b):
        x = np.zeros((n, width))
        for i in range(n):
            for a in range(sizes[i]):
                x[i, a] = 1.0 / sizes[i]
        dev = np.zeros((n, width))
        resp = np.zeros((n, width))
        trial = np.zeros((n, width))
        for k in range(lambdas.shape[0] - 1):
            _iterate_one(kind, q[g], aux, x, sizes, lambdas[k], path_tol, path_iter, dev, resp, trial)
        if kind == AGGREGATE:  # a few damped steps, Newton, then damped iteration for what is left
            lam = lambdas[-1]
            residual = _iterate_one(kind, q[g], aux, x, sizes, lam, max(tol, path_tol), path_iter, dev, resp, trial)
            if residual > tol:
                residual = _aggregate_newton(q[g], aux, x, sizes, lam, tol, 20, dev, resp, trial)
            if residual > tol:
                residual = _iterate_one(kind, q[g], aux, x, sizes, lam, tol, max_iter, dev, resp, trial)
            residuals[g] = residual
        else:
            residuals[g] = _iterate_one(kind, q[g], aux, x, sizes, lambdas[-1], tol, max_iter, dev, resp, trial)
        x_all[g] = x
    return x_all, residuals
