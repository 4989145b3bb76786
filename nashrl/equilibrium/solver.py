r"""One entry point for stage-game equilibria of a whole batch: :func:`solve`.

Nash equilibria (``concept="nash"``):

1. every pure equilibrium of every game, from one vectorised mask (all players);
2. two players: Lemke-Howson from ``lh_starts`` labels on the games that need a
   mixed equilibrium (or on all games with ``search_mixed="always"``), verified to
   Nash gap ``<= tol`` and de-duplicated against the pure ones;
   :math:`N \ge 3`: on the games without a pure equilibrium, the logit homotopy
   (:mod:`~nashrl.equilibrium.homotopy`: the limit of the principal branch of logit equilibria,
   polished exactly; one equilibrium per game, independent of the rest of the batch), and a
   regret-residual minimisation whose gap is reported takes anything still left;
3. :mod:`~nashrl.equilibrium.selection` picks one candidate per game.

On CPU, with the default search (``search_mixed="auto"``; two players: one label), all three
steps run in one compiled pass per game (:mod:`~nashrl.equilibrium._bimatrix_numba`,
:mod:`~nashrl.equilibrium._n_player_numba`): the same solutions, without the tensor work around
separate kernels.

A game left without a candidate within ``tol`` gets the best approximation found and
``solved = False``: it is flagged and counted (``n_unsolved``), never NaN and never a
silent uniform fallback.

``concept="correlated"`` (welfare-maximising correlated equilibrium) and
``concept="maximin"`` (security strategies; the value of zero-sum games) are solved by
linear programming (:mod:`~nashrl.equilibrium.lp`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from nashrl.equilibrium._optional import compiled
from nashrl.equilibrium.homotopy import LAMBDA_MAX, MAX_STEPS, logit_homotopy
from nashrl.equilibrium.lemke_howson import lemke_howson
from nashrl.equilibrium.logit import logit_equilibrium, logit_values
from nashrl.equilibrium.lp import correlated_equilibrium, maximin
from nashrl.equilibrium.mixed import approximate_equilibrium
from nashrl.equilibrium.payoffs import (
    NOT_FINITE,
    as_payoff_tensor,
    expected_payoffs,
    nash_gap,
    require_finite,
    values_and_gap,
)
from nashrl.equilibrium.pure import pure_equilibrium_mask, strictness_margins
from nashrl.equilibrium.selection import SELECTIONS, select
from nashrl.equilibrium.support import support_enumeration

CONCEPTS = ("nash", "correlated", "maximin", "logit")
SEARCHES = ("auto", "always", "labels", "all", "support")
_SAME = 1e-9
#: The fused kernel's Lemke-Howson pivot limit per action (lemke_howson's default, 50 (m + n)).
FUSED_PIVOTS_PER_ACTION = 50
#: Batches below this many games run on one thread (no parallel launch).
SERIAL_BELOW = 64


@dataclass
class StageGameSolution:
    """Selected solution of every game of a batch.

    Attributes:
        strategies: per player, ``[B, A_i]`` mixed strategies (for ``correlated``: the
            marginals of ``joint``).
        values: ``[B, N]`` expected payoffs of the solution.
        nash_gap: ``[B]`` largest unilateral gain (for ``correlated``: the largest
            gain from disobeying a recommendation, zero at a correlated equilibrium).
        solved: ``[B]`` True where ``nash_gap <= tol``.
        n_equilibria: ``[B]`` distinct equilibria found (pure plus verified mixed).
        correlation: ``[B, A_1, ..., A_N]`` joint distribution of a correlated
            equilibrium; None for independent strategies (see :attr:`joint`).
    """

    strategies: list[torch.Tensor]
    values: torch.Tensor
    nash_gap: torch.Tensor
    solved: torch.Tensor
    n_equilibria: torch.Tensor
    correlation: torch.Tensor | None = None

    @property
    def joint(self) -> torch.Tensor:
        """``[B, A_1, ..., A_N]`` distribution over joint profiles."""
        return self.correlation if self.correlation is not None else _joint(self.strategies)

    @property
    def n_unsolved(self) -> int:
        return int((~self.solved).sum())

    def to(self, device: torch.device | str) -> StageGameSolution:
        """The same solution with every tensor on ``device``."""
        correlation = None if self.correlation is None else self.correlation.to(device)
        return StageGameSolution(
            strategies=[s.to(device) for s in self.strategies],
            values=self.values.to(device),
            nash_gap=self.nash_gap.to(device),
            solved=self.solved.to(device),
            n_equilibria=self.n_equilibria.to(device),
            correlation=correlation,
        )

    def to_numpy(self) -> dict[str, object]:
        return {
            "strategies": [s.cpu().numpy() for s in self.strategies],
            "values": self.values.cpu().numpy(),
            "nash_gap": self.nash_gap.cpu().numpy(),
            "solved": self.solved.cpu().numpy(),
            "n_equilibria": self.n_equilibria.cpu().numpy(),
            "joint": self.joint.cpu().numpy(),
        }


def _joint(strategies: list[torch.Tensor]) -> torch.Tensor:
    joint = strategies[0]
    for s in strategies[1:]:
        joint = joint.unsqueeze(-1) * s.view(s.shape[0], *([1] * (joint.ndim - 1)), -1)
    return joint


def _pure_candidates(payoffs: torch.Tensor, mask: torch.Tensor):
    """Pure equilibria in lexicographic order: flat profile ids ``[B, K]``, valid, values ``[B, K, N]``."""
    flat = mask.flatten(1)
    counts = flat.sum(1)
    k = max(int(counts.max()), 1)
    n_profiles = flat.shape[1]
    key = flat.long() * (n_profiles - torch.arange(n_profiles, device=flat.device))
    ids = key.topk(k, dim=1).indices
    valid = torch.arange(k, device=flat.device).unsqueeze(0) < counts.unsqueeze(1)
    n_players = payoffs.shape[1]
    values = payoffs.flatten(2).gather(2, ids.unsqueeze(1).expand(-1, n_players, -1)).transpose(1, 2)
    return ids, valid, values


def _one_hot_profiles(ids: torch.Tensor, sizes: tuple[int, ...], dtype: torch.dtype) -> list[torch.Tensor]:
    out, rest = [], ids
    for size, stride in zip(sizes, np.cumprod((1,) + sizes[::-1])[::-1][1:]):
        action = torch.div(rest, int(stride), rounding_mode="floor")
        rest = rest - action * int(stride)
        out.append(torch.nn.functional.one_hot(action, size).to(dtype))
    return out


def _two_player_paths(payoffs, rows, lh_starts, search_mixed, backend):
    """Raw mixed profiles of games ``rows``: Lemke-Howson end points or supports found."""
    a_sub, b_sub = payoffs[rows, 0], payoffs[rows, 1]
    m, n = a_sub.shape[1:]
    for label in range(min(lh_starts, m + n)):
        res = lemke_howson(a_sub, b_sub, init_pivot=label, backend=backend)
        yield res.x.to(payoffs.device), res.y.to(payoffs.device), res.converged.to(payoffs.device)
    if search_mixed == "all":
        yield from support_enumeration(a_sub, b_sub)


def _scatter_rows(sub: torch.Tensor, rows: torch.Tensor, total: int, fill: float = 0.0) -> torch.Tensor:
    out = sub.new_full((total, *sub.shape[1:]), fill)
    out[rows] = sub
    return out


def _mixed_candidates_two_player(payoffs, need, pure_mask, lh_starts, tol, search_mixed, backend):
    """Verified, de-duplicated mixed equilibria: list of ((x, y), valid, values), all ``[B, ...]``."""
    b = payoffs.shape[0]
    found = []
    best_effort = None
    rows = torch.nonzero(need).squeeze(1)
    if rows.numel() == 0:
        return found, best_effort
    sub_game, sub_mask = payoffs[rows], pure_mask[rows]
    sub_found = []
    for x, y, converged in _two_player_paths(payoffs, rows, lh_starts, search_mixed, backend):
        values, gap = values_and_gap(sub_game, [x, y])
        if best_effort is None:
            effort_gap = torch.where(converged, gap, torch.full_like(gap, float("inf")))
            best_effort = ([_scatter_rows(x, rows, b), _scatter_rows(y, rows, b)], _scatter_rows(effort_gap, rows, b))
        ok = converged & (gap <= tol)
        # Drop equilibria already found: pure ones (in the mask) and earlier labels'.
        is_pure = (x.amax(1) > 1 - _SAME) & (y.amax(1) > 1 - _SAME)
        pure_hit = sub_mask[torch.arange(len(rows), device=x.device), x.argmax(1), y.argmax(1)]
        ok &= ~(is_pure & pure_hit)
        for px, py, pvalid in sub_found:
            same = ((px - x).abs().amax(1) < _SAME) & ((py - y).abs().amax(1) < _SAME)
            ok &= ~(pvalid & same)
        sub_found.append((x, y, ok))
        found.append(
            (
                [_scatter_rows(x, rows, b), _scatter_rows(y, rows, b)],
                _scatter_rows(ok, rows, b, False),
                _scatter_rows(values, rows, b),
            )
        )
    return found, best_effort


def _check_options(concept: str, selection: str, tol: float, lh_starts: int, search_mixed: str) -> None:
    if concept not in CONCEPTS:
        raise ValueError(f"concept: expected one of {CONCEPTS}, got {concept!r}")
    if selection not in SELECTIONS:
        raise ValueError(f"selection: expected one of {SELECTIONS}, got {selection!r}")
    if not tol > 0:
        raise ValueError(f"tol: expected a positive number, got {tol}")
    if lh_starts < 1:
        raise ValueError(f"lh_starts: expected an integer >= 1, got {lh_starts}")
    if search_mixed not in SEARCHES:
        raise ValueError(f"search_mixed: expected one of {SEARCHES}, got {search_mixed!r}")


def solve(
    payoffs: torch.Tensor | np.ndarray,
    *,
    concept: str = "nash",
    selection: str = "pareto",
    tol: float = 1e-6,
    lh_starts: int = 1,
    search_mixed: str = "auto",
    backend: str = "auto",
    mixed_iters: int = 400,
    temperature: float | None = None,
) -> StageGameSolution:
    """Solve every game of ``payoffs`` ``[B, N, A_1, ..., A_N]`` and select one solution each.

    Args:
        concept: ``"nash"``, ``"correlated"`` (welfare-maximising) or ``"maximin"``.
        selection: how to pick among several Nash equilibria, see
            :mod:`~nashrl.equilibrium.selection`.
        tol: Nash-gap tolerance for a game to count as solved, applied to the game divided
            by :math:`\\max(1, \\max |G|)` (every game is solved in those units, so
            scaling payoffs up changes nothing but the units of ``values`` and
            ``nash_gap``, which are reported in the game's own units).
        lh_starts: two players: Lemke-Howson labels tried (more labels, more mixed
            equilibria found).
        search_mixed: which equilibria selection chooses among (two players; N >= 3
            games get mixed equilibria only where no pure one exists):

            - ``"auto"`` (default): every pure equilibrium; Lemke-Howson from
              ``lh_starts`` labels *only in games without a pure equilibrium*;
            - ``"always"``: every pure equilibrium and Lemke-Howson from ``lh_starts``
              labels in every game;
            - ``"labels"``: every pure equilibrium and Lemke-Howson from *every* one of the
              ``m + n`` labels in every game;
            - ``"all"``: every pure equilibrium and support enumeration: every equilibrium
              of a non-degenerate game (small action sets only; degenerate games can have
              equilibria outside equal-size supports).
            - ``"support"`` (:math:`N \\ge 3` only): every pure equilibrium; in games without
              one, the *first* equilibrium of Porter-Nudelman-Shoham support enumeration
              (smallest total support, then most balanced; :mod:`~nashrl.equilibrium._support_numba`)
              instead of the logit homotopy's, falling back on the homotopy where the
              enumeration finds none. Faster than the homotopy on every family of the README's
              benchmarks (random, Cournot- and logit-shaped games, 3 to 5 players), most where
              equilibria have small supports, but it selects another equilibrium than
              ``"auto"`` (the logit solution):
              the first in the search order, not one the selection rule chooses. Computed on
              CPU whatever the device of ``payoffs``.

            Selection is exact only over the set searched: finding a Pareto-optimal or
            welfare-maximising Nash equilibrium is NP-hard (Gilboa and Zemel 1989;
            Conitzer and Sandholm 2008), so with ``"auto"`` a mixed equilibrium that
            Pareto-dominates every pure one is not seen. Measured on 2000 random games
            per size (``benchmarks/selection.py``): "pareto" picks an equilibrium
            dominated by one that ``"all"`` finds in 2.2% (3x3) to 4.5% (6x6) of games with
            ``"auto"``, 1.2% to 2.6% with ``"labels"``.
        backend: Lemke-Howson kernel, see :func:`~nashrl.equilibrium.lemke_howson`.
        mixed_iters: :math:`N \\ge 3`: optimisation steps of the mixed approximation.
        temperature: ``concept="logit"``: the scale sigma > 0 of the private type-1
            extreme-value shocks; the solution is the logit (quantal-response) equilibrium on
            the principal branch (:mod:`~nashrl.equilibrium.logit`), ``nash_gap`` holds its
            fixed-point residual :math:`\\max |x - \\mathrm{logit}(x)|`, ``values`` each
            player's value including the shocks' expected maximum.
    """
    _check_options(concept, selection, tol, lh_starts, search_mixed)
    if (concept == "logit") != (temperature is not None):
        raise ValueError("temperature: expected a number with concept='logit' (and only then)")
    game = as_payoff_tensor(payoffs, check_finite=False)
    if game.requires_grad:  # a solution is never differentiated through
        game = game.detach()
    if search_mixed == "support" and concept == "nash":
        if game.shape[1] < 3:
            raise ValueError(
                f"search_mixed: 'support' is for games of 3 or more players, got {game.shape[1]}; "
                "two players: 'auto', 'always', 'labels' or 'all'"
            )
        if compiled("_support_numba") is None:
            raise ImportError("search_mixed='support' needs numba installed (pip install numba)")
        if not game.is_cpu:
            kwargs = {"concept": concept, "selection": selection, "tol": tol, "search_mixed": search_mixed}
            return solve(game.cpu(), **kwargs, mixed_iters=mixed_iters).to(game.device)
    options = (concept, selection, tol, lh_starts, search_mixed, backend, mixed_iters)
    kernel = _fused_kernel(game, *options) if game.shape[0] else None
    if kernel is not None:
        return _solve_fused(game, kernel, options)  # checks finiteness as it reads
    require_finite(game)
    if game.shape[0] == 0:
        return _empty_solution(game)
    with torch.inference_mode():
        if concept == "logit":
            return _logit_solution(game, temperature, tol)
        return _solve_scaled(game, options)


def _solve_scaled(game: torch.Tensor, options: tuple) -> StageGameSolution:
    """The general path. Scale-invariance is free: solve G / s with s = max(1, max |G|) per game,
    report in G's units."""
    scale = game.flatten(1).abs().amax(1).clamp_min(1.0)
    view = (-1,) + (1,) * (game.ndim - 1)
    sol = _solve_normalised(game / scale.view(view), *options)
    sol.values = sol.values * scale.unsqueeze(1)
    sol.nash_gap = sol.nash_gap * scale
    return sol


def _fused_kernel(game, concept, selection, tol, lh_starts, search_mixed, backend, mixed_iters):
    """The compiled kernel module that computes exactly what the general path does (CPU, Nash, the
    default search; two players with one Lemke-Howson label); None elsewhere. ``"support"`` (3 or
    more players) runs only here: the general path takes the games it leaves to the homotopy."""
    if not (concept == "nash" and game.is_cpu and search_mixed in ("auto", "support")):
        return None
    if game.shape[1] == 2:
        return compiled("_bimatrix_numba") if lh_starts == 1 and backend in ("auto", "numba") else None
    return compiled("_n_player_numba")


def _solve_fused(game: torch.Tensor, kernel, options: tuple) -> StageGameSolution:
    """Every step of the Nash path in one compiled pass per game, two players
    (:mod:`~nashrl.equilibrium._bimatrix_numba`) or more (:mod:`~nashrl.equilibrium._n_player_numba`);
    the games it marks (a path that did not end, or ended above ``tol``) go the general path.
    Written for a small Python cost per call (a stage game per call is the learner's common case)."""
    rule, tol = kernel.RULES[options[1]], options[2]
    count, n_players, *sizes = game.shape
    status = np.zeros(count, dtype=np.int8)
    out = np.zeros((count, n_players + 3))  # values, gap, equilibria, gap in the solver's units (tol's)
    chunks = 1 if count < SERIAL_BELOW else _thread_chunks(count)
    if n_players == 2:
        payoffs = np.ascontiguousarray(game.numpy())
        m, n = sizes
        x, y = np.zeros((count, m)), np.zeros((count, n))
        args = (payoffs, rule, tol, FUSED_PIVOTS_PER_ACTION * (m + n), x, y, out, status)
        strategies = [x, y]
    else:
        payoffs = np.ascontiguousarray(game.numpy()).reshape(count, n_players, -1)
        x = np.zeros((count, n_players, max(sizes)))
        profiles, size_array = _kernel_shapes(tuple(sizes), options[4] == "support")
        limits = (LAMBDA_MAX, MAX_STEPS, profiles, compiled("_support_numba").MAX_LEAVES)
        args = (payoffs, size_array, rule, tol, *limits, x, out, status)
        strategies = [x[:, i, :a] for i, a in enumerate(sizes)]
    if chunks == 1:
        kernel.solve_range(*args, 0, count)
    else:
        kernel.solve_batch(*args, chunks)
    marked = status[0] if count == 1 else status.max()  # (an array's .any() costs microseconds)
    if marked and (status == kernel.NOT_FINITE).any():
        raise ValueError(NOT_FINITE)
    sol = StageGameSolution(
        strategies=[torch.from_numpy(np.ascontiguousarray(s)) for s in strategies],
        values=torch.from_numpy(out[:, :n_players]),
        nash_gap=torch.from_numpy(out[:, n_players]),
        solved=torch.from_numpy(out[:, n_players + 2] <= tol),
        n_equilibria=torch.from_numpy(out[:, n_players + 1].astype(np.int64)),
    )
    if marked:
        left = torch.from_numpy(np.flatnonzero(status))
        with torch.inference_mode():
            rest = _solve_scaled(game[left], options)
        for field in ("values", "nash_gap", "solved", "n_equilibria"):
            getattr(sol, field)[left] = getattr(rest, field)
        for s, r in zip(sol.strategies, rest.strategies):
            s[left] = r
    return sol


def _thread_chunks(count: int) -> int:
    from nashrl.equilibrium._lemke_howson_numba import thread_chunks

    return thread_chunks(count, SERIAL_BELOW)


@functools.lru_cache(maxsize=64)
def _kernel_shapes(sizes: tuple[int, ...], support: bool) -> tuple[np.ndarray, np.ndarray]:
    """The support enumeration's size profiles (none without ``support``) and the action-set sizes,
    as the N-player kernel takes them (cached across calls: the kernel only reads them)."""
    if support:
        profiles = compiled("_support_numba").size_profiles(sizes)
    else:
        profiles = np.zeros((0, len(sizes)), dtype=np.int64)
    return profiles, np.array(sizes, dtype=np.int64)


def _logit_solution(game: torch.Tensor, temperature: float, tol: float) -> StageGameSolution:
    """Logit equilibria in the game's own units (no rescaling: sigma is in payoff units)."""
    strategies, residual = logit_equilibrium(game, temperature, tol=min(tol, 1e-9))
    ones = torch.ones(game.shape[0], dtype=torch.long, device=game.device)
    return StageGameSolution(
        strategies=strategies,
        values=logit_values(game, strategies, temperature),
        nash_gap=residual,
        solved=residual <= tol,
        n_equilibria=ones,
    )


def _empty_solution(game: torch.Tensor) -> StageGameSolution:
    b, n = game.shape[:2]
    return StageGameSolution(
        strategies=[game.new_zeros(0, a) for a in game.shape[2:]],
        values=game.new_zeros(0, n),
        nash_gap=game.new_zeros(0),
        solved=torch.zeros(0, dtype=torch.bool, device=game.device),
        n_equilibria=torch.zeros(0, dtype=torch.long, device=game.device),
        correlation=None,
    )


def _solve_normalised(game, concept, selection, tol, lh_starts, search_mixed, backend, mixed_iters):
    b, n_players = game.shape[:2]
    sizes = tuple(game.shape[2:])
    if concept == "correlated":
        joint, values = correlated_equilibrium(game)
        strategies = [joint.sum(dim=tuple(d + 1 for d in range(n_players) if d != i)) for i in range(n_players)]
        gap = _obedience_gap(game, joint)
        ones = torch.ones(b, dtype=torch.long, device=game.device)
        return StageGameSolution(strategies, values, gap, gap <= tol, ones, joint)
    if concept == "maximin":
        strategies, values = maximin(game)
        gap = nash_gap(game, strategies)
        ones = torch.ones(b, dtype=torch.long, device=game.device)
        return StageGameSolution(strategies, values, gap, torch.ones_like(ones, dtype=torch.bool), ones)

    mask = pure_equilibrium_mask(game)
    ids, pure_valid, pure_values = _pure_candidates(game, mask)
    need = (
        ~pure_valid[:, 0]
        if search_mixed in ("auto", "support")
        else torch.ones(b, dtype=torch.bool, device=game.device)
    )
    if search_mixed == "labels":
        lh_starts = sum(sizes)
    if n_players == 2:
        mixed, best_effort = _mixed_candidates_two_player(game, need, mask, lh_starts, tol, search_mixed, backend)
    else:
        mixed, best_effort = _mixed_candidates_n_player(game, need, pure_valid.any(1), tol, mixed_iters)
    values = torch.cat([pure_values] + [v.unsqueeze(1) for _, _, v in mixed], dim=1)
    valid = torch.cat([pure_valid] + [ok.unsqueeze(1) for _, ok, _ in mixed], dim=1)
    margins = None
    if selection == "strict":  # a mixed equilibrium's margin is 0 (its support's actions lose nothing)
        margins = torch.cat([strictness_margins(game, ids), values.new_zeros(b, len(mixed))], dim=1)
    chosen = select(values, valid, selection, margins)

    k_pure = pure_values.shape[1]
    if bool((chosen < k_pure).any()):
        profile = ids.gather(1, chosen.clamp(max=k_pure - 1).unsqueeze(1)).squeeze(1)
        strategies = _one_hot_profiles(profile, sizes, game.dtype)
    else:  # every game chose a mixed candidate: they overwrite all rows below
        strategies = [game.new_zeros(b, a) for a in sizes]
    for slot, (strats, _, _) in enumerate(mixed):
        here = (chosen == k_pure + slot).unsqueeze(1)
        strategies = [torch.where(here, s, cur) for s, cur in zip(strats, strategies)]
    unsolved = ~valid.any(1)
    if best_effort is not None and bool(unsolved.any()):
        strats, _ = best_effort
        strategies = [torch.where(unsolved.unsqueeze(1), s, cur) for s, cur in zip(strats, strategies)]
        if n_players == 2:  # a path that did not end: fall back on the residual minimiser
            lost = unsolved & ~(nash_gap(game, strategies) <= tol)
            if bool(lost.any()):
                approx, _ = approximate_equilibrium(game[lost], iters=mixed_iters)
                for s, a in zip(strategies, approx):
                    s[lost] = a
    values, gap = values_and_gap(game, strategies)
    return StageGameSolution(
        strategies=strategies,
        values=values,
        nash_gap=gap,
        solved=gap <= tol,
        n_equilibria=valid.sum(1),
    )


def _mixed_candidates_n_player(game, need, has_pure, tol, iters):
    """Games without a pure equilibrium: the logit homotopy (:mod:`~nashrl.equilibrium.homotopy`,
    with numba; one equilibrium per game, whatever else is in the batch), then the residual
    descent for what is left. The candidate's values are computed only for games that also have a
    pure equilibrium (``has_pure``, with ``search_mixed='always'``): elsewhere it is the only
    candidate, :func:`~nashrl.equilibrium.selection.select` does not read them, and the solution's
    values are computed once for the chosen profile."""
    rows = torch.nonzero(need).squeeze(1)
    if rows.numel() == 0:
        return [], None
    sub = game[rows]
    if compiled("_homotopy_numba") is not None:
        approx, approx_gap = logit_homotopy(sub, tol)
    else:
        approx = [sub.new_zeros(sub.shape[0], n) for n in sub.shape[2:]]
        approx_gap = sub.new_full((sub.shape[0],), float("inf"))
    left = torch.nonzero(approx_gap > tol).squeeze(1)
    if left.numel() > 0:
        descent, descent_gap = approximate_equilibrium(sub[left], iters=iters)
        better = descent_gap < approx_gap[left]
        for s, d in zip(approx, descent):
            s[left[better]] = d[better]
        approx_gap[left[better]] = descent_gap[better]
    b = game.shape[0]
    strategies = []
    for s in approx:
        full = game.new_zeros(b, s.shape[1])
        full[rows] = s
        strategies.append(full)
    gap = torch.full((b,), float("inf"), dtype=game.dtype, device=game.device)
    gap[rows] = approx_gap
    ok = gap <= tol
    values = game.new_zeros(b, game.shape[1])
    choice = ok & has_pure
    if bool(choice.any()):
        values[choice] = expected_payoffs(game[choice], [s[choice] for s in strategies])
    return [(strategies, ok, values)], (strategies, gap)


def _obedience_gap(game: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
    """Largest expected gain of any player from disobeying a recommendation of ``joint``."""
    n_players = game.shape[1]
    gaps = []
    for i in range(n_players):
        own = game[:, i].movedim(1 + i, 1)  # [B, A_i, rest]
        p = joint.movedim(1 + i, 1)
        # gain[a_i, a_i'] = sum_rest p(a_i, rest) (G(a_i', rest) - G(a_i, rest))
        flat_p = p.flatten(2)
        flat_g = own.flatten(2)
        gain = torch.einsum("bir,bjr->bij", flat_p, flat_g) - (flat_p * flat_g).sum(-1, keepdim=True)
        gaps.append(gain.flatten(1).amax(1))
    return torch.stack(gaps, 1).amax(1).clamp_min(0.0)
