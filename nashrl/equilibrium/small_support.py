r"""Exact mixed equilibria of three-player games on small supports, in closed form.

Most games that lack a pure equilibrium have one whose supports hold at most two
actions per player (Porter, Nudelman and Shoham 2008 search supports smallest first
for this reason). For three players these supports are solved in closed form, for
every game of a batch and every support profile at once.

Take supports :math:`\{a, a'\}, \{b, b'\}, \{c, c'\}` and let :math:`p, q, r` be the
probabilities of :math:`a, b, c`. Player 1 is indifferent between :math:`a` and
:math:`a'` when

.. math::

    D_1(q, r) = \sum_{j, k} w_2(j)\, w_3(k)\, [u_1(a, j, k) - u_1(a', j, k)]
              = \alpha_1 + \beta_1 q + \gamma_1 r + \delta_1 q r = 0,

with :math:`w_2 = (q, 1-q)`, :math:`w_3 = (r, 1-r)`; likewise
:math:`D_2(p, r) = 0` and :math:`D_3(p, q) = 0`. Solving :math:`D_1` for :math:`r`
and :math:`D_3` for :math:`p` as ratios of functions linear in :math:`q` and
substituting into :math:`D_2` leaves a quadratic in :math:`q`:

.. math::

    \alpha_2 M_1 M_3 - \beta_2 N_3 M_1 - \gamma_2 N_1 M_3 + \delta_2 N_1 N_3 = 0,
    \quad r = -N_1 / M_1, \quad p = -N_3 / M_3,

where :math:`N_1 = \alpha_1 + \beta_1 q`, :math:`M_1 = \gamma_1 + \delta_1 q`,
:math:`N_3 = \alpha_3 + \gamma_3 q`, :math:`M_3 = \beta_3 + \delta_3 q`. Supports
where one player is pure and the other two mix over two actions are the same
equations with that player's probability fixed at 0 or 1; each is linear in the
remaining two unknowns.

Every root with :math:`p, q, r \in [0, 1]` is a candidate, scored by its Nash gap on
the whole game (deviations outside the supports included); each game returns its
smallest-gap candidate, and the caller accepts it only if that gap is within its
tolerance, so degenerate supports and numerical accidents are filtered by the same
check that defines an equilibrium.
"""

from __future__ import annotations

import math
from itertools import combinations

import torch

_SLACK = 1e-9
_CASES = 8  # two roots of the full-mixing quadratic and six one-pure cases per support profile
MAX_SUPPORT_PROFILES = 50_000  # callers skip larger games (9 actions each: 46,656 profiles)


def n_support_profiles(sizes: tuple[int, ...]) -> int:
    """Number of support profiles with two actions per player: :math:`\\prod_i \\binom{A_i}{2}`."""
    return math.prod(n * (n - 1) // 2 for n in sizes)


def small_support_equilibria(
    payoffs: torch.Tensor, *, max_candidates: int = 1_000_000
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Best small-support profile of each three-player game ``[B, 3, A_1, A_2, A_3]``.

    Games are processed in chunks of about ``max_candidates`` candidates (memory bound).
    Returns ``(strategies, gap)``: per player ``[B, A_i]`` and the Nash gap ``[B]`` of
    the profile with the smallest gap among all candidates (``inf`` and uniform
    strategies where a game has no candidate at all; callers check ``gap <= tol``).
    """
    if payoffs.shape[1] != 3 or payoffs.ndim != 5:
        raise ValueError(f"payoffs: expected [B, 3, A_1, A_2, A_3], got {tuple(payoffs.shape)}")
    sizes = payoffs.shape[2:]
    if min(sizes) < 2:
        b = payoffs.shape[0]
        uniform = [payoffs.new_full((b, n), 1.0 / n) for n in sizes]
        return uniform, payoffs.new_full((b,), float("inf"))
    pairs = [torch.tensor(list(combinations(range(n), 2)), device=payoffs.device) for n in sizes]
    grids = torch.meshgrid(*[torch.arange(len(p), device=payoffs.device) for p in pairs], indexing="ij")
    pair_ids = [pairs[i][grids[i].reshape(-1)] for i in range(3)]  # each [T, 2]
    chunk = max(1, max_candidates // (_CASES * len(pair_ids[0])))
    parts = [_best_in_chunk(payoffs[s : s + chunk], pair_ids) for s in range(0, payoffs.shape[0], chunk)]
    strategies = [torch.cat([p[0][i] for p in parts]) for i in range(3)]
    return strategies, torch.cat([p[1] for p in parts])


def _best_in_chunk(game: torch.Tensor, pair_ids: list[torch.Tensor]):
    p, q, r = _candidate_probabilities(game, pair_ids)  # each [B, T, K]
    inside = [(v >= -_SLACK) & (v <= 1 + _SLACK) for v in (p, q, r)]
    ok = inside[0] & inside[1] & inside[2] & torch.isfinite(p) & torch.isfinite(q) & torch.isfinite(r)
    b = p.shape[0]
    sizes = game.shape[2:]
    gap = game.new_full((b,), float("inf"))
    best = [game.new_full((b, n), 1.0 / n) for n in sizes]
    games, triples, roots = torch.nonzero(ok, as_tuple=True)
    if games.numel() == 0:
        return best, gap
    # Two-point weights (w, 1 - w) on each player's support pair, per candidate.
    weights = []
    for v in (p, q, r):
        w = v[games, triples, roots].clamp(0.0, 1.0)
        weights.append(torch.stack([w, 1.0 - w], 1))
    supports = [pairs[triples] for pairs in pair_ids]  # each [C, 2]
    cand_gap = _candidate_gap(game, games, supports, weights)
    # Each game's smallest-gap candidate: sort by gap, then (stably) by game.
    by_gap = torch.argsort(cand_gap, stable=True)
    order = by_gap[torch.argsort(games[by_gap], stable=True)]
    sorted_games = games[order]
    head = torch.ones_like(sorted_games, dtype=torch.bool)
    head[1:] = sorted_games[1:] != sorted_games[:-1]
    chosen = order[head]
    rows = games[chosen]
    gap[rows] = cand_gap[chosen]
    for s, w, supp in zip(best, weights, supports):
        s[rows] = 0.0
        s[rows.unsqueeze(1), supp[chosen]] = w[chosen]
    return best, gap


def _candidate_gap(
    game: torch.Tensor, games: torch.Tensor, supports: list[torch.Tensor], weights: list[torch.Tensor]
) -> torch.Tensor:
    r"""Nash gap of candidates playing ``weights[i]`` (``[C, 2]``) on ``supports[i]`` in ``game[games]``.

    Player 1's payoff from each pure action is :math:`\sum_{j, k} w_2(j) w_3(k) u_1(\cdot, j, k)`
    over the rivals' two-action supports only, so each candidate reads 4 payoffs per action
    rather than the whole game.
    """
    s1, s2, s3 = supports
    c = torch.arange(len(games), device=game.device)
    g = games.view(-1, 1, 1, 1)
    a1, a2, a3 = (torch.arange(n, device=game.device).view(1, -1, 1, 1) for n in game.shape[2:])
    # Index tensors broadcast to [C, A_i, 2, 2]: (candidate, own action, rival support slots).
    d1 = game[g, 0, a1, s2[:, None, :, None], s3[:, None, None, :]]
    d2 = game[g, 1, s1[:, None, :, None], a2, s3[:, None, None, :]]
    d3 = game[g, 2, s1[:, None, :, None], s2[:, None, None, :], a3]
    w1, w2, w3 = weights
    devs = [
        (d * (u[:, None, :, None] * v[:, None, None, :])).sum((2, 3))
        for d, u, v in ((d1, w2, w3), (d2, w1, w3), (d3, w1, w2))
    ]
    gaps = [d.amax(1) - (d[c.unsqueeze(1), supp] * w).sum(1) for d, supp, w in zip(devs, supports, weights)]
    return torch.stack(gaps, 1).amax(1).clamp_min(0.0)


def _bilinear(d: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Coefficients of :math:`\\sum_{jk} w(j) w'(k) d[j, k]` in :math:`(1, s, t, st)` with :math:`w = (s, 1-s)`."""
    alpha = d[..., 1, 1]
    beta = d[..., 0, 1] - d[..., 1, 1]
    gamma = d[..., 1, 0] - d[..., 1, 1]
    delta = d[..., 0, 0] - d[..., 0, 1] - d[..., 1, 0] + d[..., 1, 1]
    return alpha, beta, gamma, delta


def _candidate_probabilities(game: torch.Tensor, pair_ids: list[torch.Tensor]):
    """``(p, q, r)`` each ``[B, T, 8]``: two roots of the full-mixing quadratic and six one-pure cases."""
    i1, i2, i3 = pair_ids
    sub = game[:, :, i1[:, :, None, None], i2[:, None, :, None], i3[:, None, None, :]]  # [B, 3, T, 2, 2, 2]
    # Player 1: own difference over (q, r); player 2: over (p, r); player 3: over (p, q).
    a1, b1, c1, e1 = _bilinear(sub[:, 0, :, 0] - sub[:, 0, :, 1])
    a2, b2, c2, e2 = _bilinear(sub[:, 1, :, :, 0] - sub[:, 1, :, :, 1])
    a3, b3, c3, e3 = _bilinear(sub[:, 2, :, :, :, 0] - sub[:, 2, :, :, :, 1])

    # All three mix: quadratic in q.
    n1, m1 = (a1, b1), (c1, e1)  # N1 = a1 + b1 q, M1 = c1 + e1 q
    n3, m3 = (a3, c3), (b3, e3)  # N3 = a3 + c3 q, M3 = b3 + e3 q
    terms = [
        (a2, _mul(m1, m3)),
        (-b2, _mul(n3, m1)),
        (-c2, _mul(n1, m3)),
        (e2, _mul(n1, n3)),
    ]
    coef = [sum(w * poly[d] for w, poly in terms) for d in range(3)]  # c0 + c1 q + c2 q^2
    q_roots = _quadratic_roots(coef[2], coef[1], coef[0])
    full = []
    for q in q_roots:
        full.append((_ratio(-(a3 + c3 * q), b3 + e3 * q), q, _ratio(-(a1 + b1 * q), c1 + e1 * q)))

    # One player pure (its probability fixed at 1 or 0), the other two mix: linear.
    one_pure = []
    for fixed in (1.0, 0.0):
        # p fixed: D2(p, r) = 0 gives r, D3(p, q) = 0 gives q.
        r = _ratio(-(a2 + b2 * fixed), c2 + e2 * fixed)
        q = _ratio(-(a3 + b3 * fixed), c3 + e3 * fixed)
        one_pure.append((torch.full_like(q, fixed), q, r))
        # q fixed: D1(q, r) = 0 gives r, D3(p, q) = 0 gives p.
        r = _ratio(-(a1 + b1 * fixed), c1 + e1 * fixed)
        p = _ratio(-(a3 + c3 * fixed), b3 + e3 * fixed)
        one_pure.append((p, torch.full_like(p, fixed), r))
        # r fixed: D1(q, r) = 0 gives q, D2(p, r) = 0 gives p.
        q = _ratio(-(a1 + c1 * fixed), b1 + e1 * fixed)
        p = _ratio(-(a2 + c2 * fixed), b2 + e2 * fixed)
        one_pure.append((p, q, torch.full_like(p, fixed)))
    cases = full + one_pure
    return tuple(torch.stack([case[v] for case in cases], -1) for v in range(3))


def _mul(u: tuple[torch.Tensor, torch.Tensor], v: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Coefficients of the product of two linear polynomials ``u0 + u1 q`` and ``v0 + v1 q``."""
    return u[0] * v[0], u[0] * v[1] + u[1] * v[0], u[1] * v[1]


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, NaN where the denominator vanishes (no unique solution)."""
    small = den.abs() <= 1e-12
    return torch.where(small, torch.full_like(num, float("nan")), num / torch.where(small, 1.0, den))


def _quadratic_roots(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real roots of ``a q^2 + b q + c`` (the linear root when ``a`` vanishes); NaN where there is none."""
    nan = torch.full_like(a, float("nan"))
    scale = torch.stack([a.abs(), b.abs(), c.abs()]).amax(0).clamp_min(1e-300)
    linear = a.abs() <= 1e-12 * scale
    disc = b * b - 4 * a * c
    sqrt = torch.sqrt(disc.clamp_min(0.0))
    # Numerically stable pair: q1 = (-b - sign(b) sqrt) / 2a, q2 = c / (a q1).
    s = torch.where(b >= 0, 1.0, -1.0).to(a.dtype)
    top = -(b + s * sqrt)
    safe_a = torch.where(linear, 1.0, a)
    q1 = top / (2 * safe_a)
    q2 = _ratio(2 * c, top)
    real = (disc >= 0) & ~linear
    lin_root = _ratio(-c, b)
    return torch.where(real, q1, torch.where(linear, lin_root, nan)), torch.where(real, q2, nan)
