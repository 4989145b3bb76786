r"""Approximate mixed equilibria of N-player games by minimising a Nash residual.

For strategies :math:`x_i = \mathrm{softmax}(z_i)` the residual

.. math::

    R(x) = \sum_i \sum_{a_i} \big[u_i(a_i, x_{-i}) - u_i(x)\big]_+^2

is non-negative and zero exactly at Nash equilibria (Nash's own fixed-point map is
built from the same regrets). All games of a batch are minimised together with Adam.

The descent finds supports :math:`S_i` quickly but converges slowly; it is polished by
Newton's method on the equilibrium conditions of that support, a square polynomial
system in :math:`(x, v)`:

.. math::

    u_i(a_i, x_{-i}) - v_i = 0 \ (a_i \in S_i), \qquad x_i(a_i) = 0 \ (a_i \notin S_i),
    \qquad \textstyle\sum_{a_i} x_i(a_i) = 1.

The profile with the smallest Nash gap seen is kept and its gap is reported, so an
approximation that misses the tolerance is visible to the caller, never silent.
"""

from __future__ import annotations

import torch

from nashrl.equilibrium.payoffs import deviation_payoffs, expected_payoffs, nash_gap


def approximate_equilibrium(
    payoffs: torch.Tensor,
    *,
    iters: int = 400,
    lr: float = 0.05,
    seed: int = 0,
    newton_steps: int = 25,
    support_rounds: int = 8,
    restarts: int = 3,
    tol: float = 1e-10,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Return (strategies, Nash gap) of the best profile found for every game.

    After the descent, each game's support guess ``{x > 1e-2}`` is corrected by an
    active-set loop: Newton on the support conditions, then actions whose probability
    came out negative leave the support and the most profitable action outside it
    joins, ``support_rounds`` times. Games still above ``tol`` are restarted from new
    random points, ``restarts`` times in all.
    """
    strategies, gap = _descend_and_polish(payoffs, iters, lr, seed, newton_steps, support_rounds)
    for attempt in range(1, restarts):
        left = torch.nonzero(gap > tol).squeeze(1)
        if left.numel() == 0:
            break
        retry, retry_gap = _descend_and_polish(payoffs[left], iters, lr, seed + attempt, newton_steps, support_rounds)
        better = retry_gap < gap[left]
        for s, r in zip(strategies, retry):
            s[left[better]] = r[better]
        gap[left[better]] = retry_gap[better]
    return strategies, gap


def _descend_and_polish(payoffs, iters, lr, seed, newton_steps, support_rounds):
    with torch.inference_mode(False), torch.enable_grad():
        game = payoffs.clone()
        strategies, gap = _minimise_residual(game, iters=iters, lr=lr, seed=seed)
    with torch.inference_mode(False):
        sizes = [s.shape[1] for s in strategies]
        support = torch.cat([s > 1e-2 for s in strategies], 1)
        for _ in range(support_rounds):
            raw = _newton_on_support(game, strategies, support, newton_steps)
            candidate = [x.clamp_min(0.0) / x.clamp_min(0.0).sum(1, keepdim=True).clamp_min(1e-300) for x in raw]
            new_gap = nash_gap(game, candidate)
            better = new_gap < gap
            strategies = [torch.where(better.unsqueeze(1), c, s) for c, s in zip(candidate, strategies)]
            gap = torch.where(better, new_gap, gap)
            support = _corrected_support(game, raw, support, sizes)
    return [s.detach() for s in strategies], gap.detach()


def _corrected_support(game, raw, support, sizes):
    """Drop actions with negative probability; add each player's best action outside the support."""
    x_all = torch.cat(raw, 1)
    support = support & (x_all > -1e-12)
    devs = deviation_payoffs(game, [x.clamp_min(0.0) for x in raw])
    out = []
    for d, block in zip(devs, torch.split(support, sizes, 1)):
        neg_inf = torch.full_like(d, -float("inf"))
        outside = torch.where(block, neg_inf, d)
        inside_best = torch.where(block, d, neg_inf).amax(1, keepdim=True)
        gain = outside.amax(1, keepdim=True) > inside_best + 1e-12
        extra = torch.nn.functional.one_hot(outside.argmax(1), d.shape[1]).bool() & gain
        empty = ~block.any(1, keepdim=True)
        out.append(block | extra | (empty & torch.nn.functional.one_hot(d.argmax(1), d.shape[1]).bool()))
    return torch.cat(out, 1)


def _newton_on_support(
    payoffs: torch.Tensor, strategies: list[torch.Tensor], support: torch.Tensor, steps: int
) -> list[torch.Tensor]:
    """Newton iterations on the support conditions; returns the raw (unclamped) ``x``."""
    sizes = [s.shape[1] for s in strategies]
    n_players = len(sizes)
    splits = sizes + [1] * n_players

    def conditions(z: torch.Tensor, game: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        parts = torch.split(z, splits)
        xs, vs = parts[:n_players], parts[n_players:]
        devs = deviation_payoffs(game.unsqueeze(0), [x.unsqueeze(0) for x in xs])
        indiff = torch.cat([d[0] - v for d, v in zip(devs, vs)])
        sums = torch.stack([x.sum() - 1.0 for x in xs])
        return torch.cat([torch.where(supp, indiff, torch.cat(xs)), sums])

    x0 = torch.where(support, torch.cat(strategies, 1), 0.0)
    x0 = torch.cat([x / x.sum(1, keepdim=True).clamp_min(1e-300) for x in torch.split(x0, sizes, 1)], 1)
    z = torch.cat([x0, expected_payoffs(payoffs, torch.split(x0, sizes, 1))], 1).detach()
    jacobian = torch.func.vmap(torch.func.jacrev(conditions))
    residual = torch.func.vmap(conditions)
    for _ in range(steps):
        f = residual(z, payoffs, support)
        step, info = torch.linalg.solve_ex(jacobian(z, payoffs, support), f.unsqueeze(-1))
        step = step.squeeze(-1)
        ok = (info == 0) & torch.isfinite(step).all(1)
        z = torch.where(ok.unsqueeze(1), z - step, z)
    return list(torch.split(z, splits, dim=1)[:n_players])


def _minimise_residual(
    payoffs: torch.Tensor, *, iters: int, lr: float, seed: int
) -> tuple[list[torch.Tensor], torch.Tensor]:
    b = payoffs.shape[0]
    sizes = payoffs.shape[2:]
    scale = (payoffs.flatten(2).amax(-1) - payoffs.flatten(2).amin(-1)).amax(-1).clamp_min(1e-12)
    scaled = payoffs / scale.view(-1, *([1] * (payoffs.ndim - 1)))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    spread = 0.1 if seed == 0 else 0.6  # restarts start farther from the uniform profile
    logits = [
        (spread * torch.randn(b, n, generator=gen, dtype=payoffs.dtype)).to(payoffs.device).requires_grad_(True)
        for n in sizes
    ]
    opt = torch.optim.Adam(logits, lr=lr)
    best = [torch.full((b, n), 1.0 / n, dtype=payoffs.dtype, device=payoffs.device) for n in sizes]
    best_gap = nash_gap(scaled, best)
    for _ in range(iters):
        xs = [torch.softmax(z, -1) for z in logits]
        devs = deviation_payoffs(scaled, xs)
        regrets = [(d - (d * x).sum(-1, keepdim=True)).clamp_min(0.0) for d, x in zip(devs, xs)]
        residual = sum((r**2).sum(-1) for r in regrets)
        gap = torch.stack([r.amax(-1) for r in regrets], 1).amax(1).detach()
        better = gap < best_gap
        if bool(better.any()):
            best_gap = torch.where(better, gap, best_gap)
            best = [torch.where(better.unsqueeze(1), x.detach(), bx) for x, bx in zip(xs, best)]
        opt.zero_grad()
        residual.sum().backward()
        opt.step()
    return best, nash_gap(payoffs, best)
