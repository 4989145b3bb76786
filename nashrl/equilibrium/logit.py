r"""Logit (quantal-response) equilibria of a batch of N-player games (McKelvey and Palfrey 1995).

With private i.i.d. type-1 extreme-value payoff shocks of scale :math:`\sigma` on every action,
a player's choice probabilities are logit in the expected payoffs against the others'
strategies; an equilibrium of the stage game is a fixed point

.. math::

    x_i(a_i) = \frac{\exp\big(u_i(a_i, x_{-i}) / \sigma\big)}{\sum_{b} \exp\big(u_i(b, x_{-i}) / \sigma\big)}
    \quad \text{for every player } i,

the stage-game equilibrium of firms with private shocks (the building block of the MPE of
dynamic games with shocks; Aguirregabiria and Mira 2007). Each player's value, including the
shock's expected maximum, is :math:`\sigma \log \sum_b \exp(u_i(b, x_{-i}) / \sigma)` (plus
Euler's constant times :math:`\sigma`, a constant left out).

**Principal branch.** At :math:`\lambda = 1/\sigma = 0` the unique equilibrium is uniform play;
:func:`logit_equilibrium` follows the branch from there: :math:`\lambda` rises along a
geometric path to the target, and at each value the fixed point is found from the previous one
by damped iteration (damping halves whenever the residual grows) and then Newton's method on
:math:`x - \mathrm{logit}(x) = 0` (batched Jacobians by ``torch.func``). For large
:math:`\sigma` the equilibrium is unique and the path is simple. For small :math:`\sigma` a game
can have several logit equilibria; where the principal branch *folds* (turns back in
:math:`\lambda`), continuation in :math:`\lambda` cannot follow it (that needs arc-length
continuation): the iteration then either lands on another branch (still a logit equilibrium,
reported as such) or does not converge, and the game is flagged ``solved = False`` with its
residual. A ``start`` profile (a warm start) skips the path and iterates at the target directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from nashrl.equilibrium.payoffs import deviation_payoffs

#: ``deviations(game, strategies) -> [B, A_i]`` per player: each own action's expected payoff
#: against the others' mixed strategies. The default reads joint payoff tensors
#: ``[B, N, A_1, ..., A_N]``; :mod:`~nashrl.equilibrium.aggregative_logit` passes its own for
#: games held as aggregate tables. It must be functional (no in-place writes) for Newton's Jacobians.
Deviations = Callable[[torch.Tensor, Sequence[torch.Tensor]], list[torch.Tensor]]


def logit_response(
    payoffs: torch.Tensor,
    strategies: Sequence[torch.Tensor],
    temperature: float,
    deviations: Deviations = deviation_payoffs,
) -> list[torch.Tensor]:
    """Every player's logit response ``softmax(u_i(., x_{-i}) / temperature)``."""
    return [torch.softmax(d / temperature, dim=-1) for d in deviations(payoffs, strategies)]


def logit_residual(
    payoffs: torch.Tensor,
    strategies: Sequence[torch.Tensor],
    temperature: float,
    deviations: Deviations = deviation_payoffs,
) -> torch.Tensor:
    """``[B]`` largest ``|x - logit_response(x)|``: zero exactly at a logit equilibrium."""
    response = logit_response(payoffs, strategies, temperature, deviations)
    return torch.stack([(r - x).abs().amax(-1) for r, x in zip(response, strategies)], 1).amax(1)


def logit_values(payoffs: torch.Tensor, strategies: Sequence[torch.Tensor], temperature: float) -> torch.Tensor:
    """``[B, N]`` each player's ex-ante value with shocks: ``temperature * logsumexp(u_i / temperature)``."""
    devs = deviation_payoffs(payoffs, strategies)
    return torch.stack([temperature * torch.logsumexp(d / temperature, dim=-1) for d in devs], 1)


def _iterate(payoffs, strategies, temperature, tol, max_iter, deviations=deviation_payoffs):
    """Damped fixed-point iteration at one temperature; damping halves where the residual grows."""
    b = payoffs.shape[0]
    step = torch.ones(b, dtype=payoffs.dtype, device=payoffs.device)
    residual = logit_residual(payoffs, strategies, temperature, deviations)
    for _ in range(max_iter):
        if bool((residual <= tol).all()):
            break
        response = logit_response(payoffs, strategies, temperature, deviations)
        moving = (residual > tol).to(payoffs.dtype)
        trial = [x + (moving * step).unsqueeze(1) * (r - x) for x, r in zip(strategies, response)]
        new_residual = logit_residual(payoffs, trial, temperature, deviations)
        better = new_residual <= residual
        strategies = [torch.where(better.unsqueeze(1), t, x) for t, x in zip(trial, strategies)]
        residual = torch.where(better, new_residual, residual)
        step = torch.where(better, (step * 1.5).clamp(max=1.0), step * 0.5).clamp(min=1e-6)
    return strategies, residual


def _newton(payoffs, strategies, temperature, tol, steps, deviations=deviation_payoffs):
    """Newton's method on ``F(x) = x - logit_response(x)`` (all players' strategies stacked),
    batched with ``torch.func``; a step is halved until the residual falls, and positivity is kept."""
    sizes = [s.shape[1] for s in strategies]

    def residual_vector(flat, game):
        parts = list(torch.split(flat.unsqueeze(0), sizes, dim=1))
        response = logit_response(game.unsqueeze(0), parts, temperature, deviations)
        return (flat.unsqueeze(0) - torch.cat(response, 1)).squeeze(0)

    jacobian = torch.func.vmap(torch.func.jacrev(residual_vector), in_dims=(0, 0))
    flat = torch.cat(strategies, 1)
    residual = logit_residual(payoffs, strategies, temperature, deviations)
    for _ in range(steps):
        active = residual > tol
        if not bool(active.any()):
            break
        rows = torch.nonzero(active).squeeze(1)
        x, game = flat[rows], payoffs[rows]
        f = torch.func.vmap(residual_vector)(x, game)
        try:
            delta = torch.linalg.solve(jacobian(x, game), -f)
        except RuntimeError:  # a singular Jacobian somewhere: leave those games to the flag
            break
        alpha = torch.ones(len(rows), dtype=x.dtype, device=x.device)
        current = residual[rows]
        for _ in range(20):
            trial = (x + alpha.unsqueeze(1) * delta).clamp_min(1e-300)
            parts = [p / p.sum(1, keepdim=True) for p in torch.split(trial, sizes, dim=1)]
            new = logit_residual(game, parts, temperature, deviations)
            ok = new < current
            if bool(ok.all()):
                break
            alpha = torch.where(ok, alpha, alpha * 0.5)
        accept = new < current
        flat[rows[accept]] = torch.cat(parts, 1)[accept]
        residual[rows[accept]] = new[accept]
        if not bool(accept.any()):
            break
    return list(torch.split(flat, sizes, dim=1)), residual


def principal_path(payoffs: torch.Tensor, temperature: float, steps: int) -> torch.Tensor:
    r"""``[steps]`` values of :math:`\lambda = 1/\sigma`, geometric from where near-uniform play is
    the equilibrium (:math:`\lambda \max |u| = 0.1`) to the target :math:`1/` ``temperature``."""
    scale = payoffs.flatten(1).abs().amax(1).clamp_min(1e-12)  # lambda * payoffs is what matters
    target = 1.0 / temperature
    first = min(target, 0.1 / float(scale.max()))
    if steps <= 1:
        return torch.tensor([target], dtype=torch.float64)
    return torch.logspace(torch.log10(torch.tensor(first)), torch.log10(torch.tensor(target)), steps)


def logit_equilibrium(
    payoffs: torch.Tensor,
    temperature: float,
    *,
    start: Sequence[torch.Tensor] | None = None,
    tol: float = 1e-10,
    path_steps: int = 30,
    max_iter: int = 2000,
    backend: str = "auto",
    deviations: Deviations | None = None,
    sizes: Sequence[int] | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Logit equilibria ``(strategies, residual [B])`` of games ``[B, N, A_1, ..., A_N]`` at
    ``temperature`` (the shock scale sigma > 0), on the principal branch (see the module).
    ``backend``: ``"auto"`` follows the path in compiled code for CPU tensors
    (:mod:`~nashrl.equilibrium._logit_numba`) and in torch on other devices, ``"torch"`` or
    ``"numba"`` force one (the fast pass: damped iteration along the path, then Newton at the
    target); games it leaves above ``tol`` get a careful pass with Newton's method at every step
    of the path. ``deviations`` (with the players' action counts ``sizes``) reads games held in
    another form than joint tensors (:data:`Deviations`; the torch path then)."""
    if deviations is None:
        deviations, sizes = deviation_payoffs, tuple(payoffs.shape[2:])
    elif sizes is None or backend == "numba":
        raise ValueError("deviations: expected the players' action counts (sizes), and the torch backend")
    sizes = tuple(int(n) for n in sizes)
    if not (isinstance(temperature, (int, float)) and temperature > 0 and temperature < float("inf")):
        raise ValueError(f"temperature: expected a finite number > 0, got {temperature!r}")
    if backend not in ("auto", "torch", "numba"):
        raise ValueError(f"backend: expected 'auto', 'torch' or 'numba', got {backend!r}")
    if start is not None:
        strategies = [s.to(payoffs) for s in start]
        return _solve_at(payoffs, strategies, temperature, tol, max_iter, deviations)
    lambdas = principal_path(payoffs, temperature, path_steps)
    joint = deviations is deviation_payoffs
    if joint and (backend == "numba" or (backend == "auto" and payoffs.device.type == "cpu")):
        strategies, residual = _numba_path(payoffs, lambdas, temperature, tol, max_iter)
    else:
        strategies = [payoffs.new_full((payoffs.shape[0], n), 1.0 / n) for n in sizes]
        for lam in lambdas.tolist()[:-1]:  # fast pass: damped iteration along the path
            strategies, _ = _iterate(payoffs, strategies, 1.0 / lam, max(tol, 1e-6), 40, deviations)
        strategies, residual = _solve_at(payoffs, strategies, temperature, tol, max_iter, deviations)
    left = torch.nonzero(residual > tol).squeeze(1)
    if len(left):  # careful pass for the games the fast one lost: Newton at every step of the path
        careful = [payoffs.new_full((len(left), n), 1.0 / n) for n in sizes]
        for lam in lambdas.tolist()[:-1]:
            careful, _ = _solve_at(payoffs[left], careful, 1.0 / lam, max(tol, 1e-8), max_iter // 10, deviations)
        careful, res = _solve_at(payoffs[left], careful, temperature, tol, max_iter, deviations)
        better = res < residual[left]
        for s, c in zip(strategies, careful):
            s[left[better]] = c[better]
        residual[left[better]] = res[better]
    return strategies, residual


def _numba_path(payoffs, lambdas, temperature, tol, max_iter):
    """The path in compiled code; Newton (torch) for the games it leaves above ``tol``."""
    import itertools

    import numpy as np

    from nashrl.equilibrium._logit_numba import logit_path

    sizes = tuple(payoffs.shape[2:])
    profiles = np.array(list(itertools.product(*(range(n) for n in sizes))), dtype=np.int64)
    q = np.ascontiguousarray(payoffs.detach().flatten(2).cpu().numpy(), dtype=np.float64)
    x, residual = logit_path(
        q, profiles, np.array(sizes, dtype=np.int64), lambdas.double().numpy(), tol, max(tol, 1e-6), 40, max_iter
    )
    strategies = [torch.as_tensor(x[:, i, :n], dtype=payoffs.dtype) for i, n in enumerate(sizes)]
    residual = torch.as_tensor(residual, dtype=payoffs.dtype)
    left = torch.nonzero(residual > tol).squeeze(1)
    if len(left):
        polished, res = _solve_at(payoffs[left], [s[left] for s in strategies], temperature, tol, 50)
        for s, p in zip(strategies, polished):
            s[left] = p
        residual[left] = res
    return strategies, residual


def _solve_at(payoffs, strategies, temperature, tol, max_iter, deviations=deviation_payoffs):
    """A few damped iterations (robust far from the solution), then Newton (fast near it)."""
    strategies, residual = _iterate(payoffs, strategies, temperature, tol, min(max_iter, 50), deviations)
    if bool((residual > tol).any()):
        strategies, residual = _newton(payoffs, strategies, temperature, tol, 50, deviations)
    if bool((residual > tol).any()):
        strategies, residual = _iterate(payoffs, strategies, temperature, tol, max_iter, deviations)
    return strategies, residual
