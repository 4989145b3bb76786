r"""Aggregative stage games: pure equilibria by best-reply dynamics, at a cost linear in N.

A game is *aggregative* (Corchón 1994; Acemoglu and Jensen 2013) when each player's payoff
depends on its own action and on an aggregate of the others' actions,

.. math::

    u_i(a) = \tilde u_i\big(a_i, X_{-i}\big), \qquad X_{-i} = \sum_{j \ne i} g_j(a_j):

Cournot (:math:`g_j = q_j`, total rival output) and logit Bertrand (:math:`g_j =
e^{(\alpha_j - p_j)/\mu}`, the rivals' logit attraction) are. A player's deviation payoffs then
cost :math:`A_i` evaluations of :math:`\tilde u_i` instead of a slice of an :math:`A^N` tensor.

:func:`solve_aggregative` looks for pure equilibria by sequential (Gauss-Seidel) best-reply
dynamics -- each player in turn moves to its best reply when that strictly improves on its
action -- from several starting profiles (every player at its lowest action, at its highest, and
at its middle one). Cournot games with linear demand are potential games (Monderer and Shapley
1996), where these dynamics end at a pure equilibrium; logit Bertrand games are supermodular in
prices, where they move monotonically from the lowest (highest) profile to the smallest (largest)
equilibrium (Milgrom and Roberts 1990). Every end point is verified: its Nash gap (the largest
gain from a unilateral deviation, all actions of every player) must be within ``tol``; the
distinct equilibria found are the candidates the selection rule chooses among
(:mod:`~nashrl.equilibrium.selection`). A game where no start ends at an equilibrium (best replies
cycle, or the game has none in pure strategies) is flagged ``solved = False`` with the smallest
gap seen; mixed equilibria of aggregative games are not searched.

The games are given by a *deviation oracle*: ``deviations(profile, firm)`` returns ``[B, A]`` the
payoffs of every action of ``firm`` against the rivals' actions in ``profile`` (``[B, N]``), so
the same solver serves learned Q heads (:class:`Aggregation` tables, interpolated) and markets'
exact profits (theory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nashrl.equilibrium._optional import compiled
from nashrl.equilibrium.selection import select
from nashrl.equilibrium.solver import StageGameSolution

#: ``deviations(profile [B, N], firm) -> [B, A_firm]``
Deviations = Callable[[torch.Tensor, int], torch.Tensor]
IMPROVE = 1e-12  # a best reply replaces the current action only when better by this (relative)


def default_sweeps(n_players: int) -> int:
    """Rounds of best replies (every player once a round) before the dynamics are given up."""
    return 4 * n_players + 20


@dataclass
class Aggregation:
    """How rivals' actions add up, and the aggregate values a Q head holds.

    Attributes:
        contributions: ``[N, A]`` :math:`g_j(a)` of each player's actions (``A`` the largest
            action set; entries past a player's own count are unused).
        sizes: every player's number of actions.
        knots: ``[N, M]`` increasing aggregate values at which a head holds each player's
            payoffs, in the coordinate :meth:`coordinate` (``X`` itself or ``log X``); between
            knots payoffs are linear in that coordinate, outside they are held at the end knots.
        transform: ``"linear"`` or ``"log"``.
    """

    contributions: torch.Tensor
    sizes: tuple[int, ...]
    knots: torch.Tensor
    transform: str = "linear"

    @property
    def n_knots(self) -> int:
        return self.knots.shape[1]

    def to(self, device) -> Aggregation:
        return Aggregation(self.contributions.to(device), self.sizes, self.knots.to(device), self.transform)

    def rival_aggregates(self, profile: torch.Tensor) -> torch.Tensor:
        """``[B, N]``: :math:`X_{-i}` at joint actions ``profile`` ``[B, N]``."""
        n = len(self.sizes)
        own = self.contributions[torch.arange(n, device=profile.device), profile.long()]  # [B, N]
        return own.sum(1, keepdim=True) - own

    def coordinate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x.clamp_min(1e-300)) if self.transform == "log" else x

    def locate(self, aggregates: torch.Tensor, firms: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Knot interval ``k`` and weight ``w`` (``[B, N]``, or ``[B]`` for one firm per row given
        by ``firms``) with the coordinate at ``(1 - w) knot_k + w knot_{k+1}``, clamped to the ends."""
        knots = self.knots if firms is None else self.knots[firms]
        z = self.coordinate(aggregates)
        m = knots.shape[-1]
        if m == 1:
            zero = torch.zeros_like(z, dtype=torch.long)
            return zero, torch.zeros_like(z)
        flat_knots = knots.expand(*z.shape, m).reshape(-1, m) if firms is None else knots
        flat_z = z.reshape(-1, 1)
        k = torch.searchsorted(flat_knots.contiguous(), flat_z.contiguous(), right=True).squeeze(1) - 1
        k = k.clamp(0, m - 2)
        low = flat_knots.gather(1, k[:, None]).squeeze(1)
        high = flat_knots.gather(1, (k + 1)[:, None]).squeeze(1)
        w = ((flat_z.squeeze(1) - low) / (high - low)).clamp(0.0, 1.0)
        return k.view(z.shape), w.view(z.shape)

    def table_deviations(self, tables: torch.Tensor) -> Deviations:
        """The oracle of payoff tables ``[B, N, A, M]`` (values at the knots)."""

        def deviations(profile: torch.Tensor, firm: int) -> torch.Tensor:
            x = self.rival_aggregates(profile)[:, firm]
            k, w = self.locate(x, torch.full_like(profile[:, 0], firm, dtype=torch.long))
            own = tables[:, firm, : self.sizes[firm]]  # [B, A, M]
            k = k[:, None, None].expand(-1, own.shape[1], 1)
            low = own.gather(2, k).squeeze(2)
            high = own.gather(2, (k + 1).clamp(max=own.shape[2] - 1)).squeeze(2)
            return low + w[:, None].to(own.dtype) * (high - low)

        return deviations


@dataclass
class Candidates:
    """End points of the best-reply dynamics from each start: ``profiles`` ``[B, S, N]``, payoffs
    ``values`` ``[B, S, N]``, Nash ``gaps`` ``[B, S]`` (the games' units) and ``relative`` gaps (the
    solver's units), ``valid`` ``[B, S]`` where an end point is an equilibrium not found before."""

    profiles: torch.Tensor
    values: torch.Tensor
    gaps: torch.Tensor
    relative: torch.Tensor
    valid: torch.Tensor


def candidate_equilibria(
    deviations: Deviations, sizes: tuple[int, ...], batch: int, *, device="cpu", tol: float = 1e-6, max_sweeps=None
) -> Candidates:
    """Best-reply dynamics from every player at its lowest, highest and middle action."""
    n = len(sizes)
    max_sweeps = default_sweeps(n) if max_sweeps is None else max_sweeps
    starts = [
        torch.zeros(batch, n, dtype=torch.long, device=device),
        torch.tensor([s - 1 for s in sizes], device=device).expand(batch, n).clone(),
        torch.tensor([(s - 1) // 2 for s in sizes], device=device).expand(batch, n).clone(),
    ]
    profiles, values, valid, gaps, relative = [], [], [], [], []
    for start in starts:
        profile = _best_reply_dynamics(deviations, start, n, max_sweeps)
        value, gap, scale = _value_and_gap(deviations, profile, n)
        same = torch.zeros(batch, dtype=torch.bool, device=device)
        for earlier, ok in zip(profiles, valid):
            same |= ok & (earlier == profile).all(1)
        profiles.append(profile)
        values.append(value)
        gaps.append(gap)
        relative.append(gap / scale)
        valid.append((gap <= tol * scale) & ~same)
    stack = lambda xs: torch.stack(xs, 1)  # noqa: E731
    return Candidates(stack(profiles), stack(values), stack(gaps), stack(relative), stack(valid))


def solve_aggregative(
    deviations: Deviations,
    sizes: tuple[int, ...],
    batch: int,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    selection: str = "pareto",
    tol: float = 1e-6,
    max_sweeps: int | None = None,
) -> StageGameSolution:
    r"""Pure equilibria of ``batch`` aggregative games by best-reply dynamics (module doc), one
    selected per game.

    ``tol`` applies to the Nash gap divided by :math:`\max(1, \max |u|)` over the deviation
    payoffs seen at the end point (so scaling payoffs changes nothing but the units), as
    :func:`nashrl.equilibrium.solve` does.
    """
    found = candidate_equilibria(deviations, sizes, batch, device=device, tol=tol, max_sweeps=max_sweeps)
    return selected_equilibria(found, sizes, selection, tol, dtype)


def solve_aggregative_tables(
    tables: torch.Tensor, aggregation: Aggregation, *, selection: str = "pareto", tol: float = 1e-6
) -> StageGameSolution:
    """:func:`solve_aggregative` for games held as Q tables ``[B, N, A, M]`` at ``aggregation``'s
    knots: on the CPU in compiled code (:mod:`~nashrl.equilibrium._aggregative_numba`), elsewhere
    (or without numba) with tensor operations on the tables' device; the same dynamics."""
    tables = tables.detach().double()
    sizes = aggregation.sizes
    kernel = compiled("_aggregative_numba") if tables.device.type == "cpu" else None
    if kernel is None:
        oracle = aggregation.to(tables.device).table_deviations(tables)
        found = candidate_equilibria(oracle, sizes, tables.shape[0], device=tables.device, tol=tol)
    else:
        out = kernel.candidates(
            np.ascontiguousarray(tables.numpy()),
            np.ascontiguousarray(aggregation.contributions.double().numpy()),
            np.ascontiguousarray(aggregation.knots.double().numpy()),
            aggregation.transform == "log",
            np.asarray(sizes, dtype=np.int64),
            float(tol),
            default_sweeps(len(sizes)),
        )
        found = Candidates(*(torch.from_numpy(x) for x in out))
    return selected_equilibria(found, sizes, selection, tol, torch.float64)


def selected_equilibria(found: Candidates, sizes, selection: str, tol: float, dtype) -> StageGameSolution:
    """One equilibrium per game among the candidates (the selection rule), or the end point with
    the smallest gap where there is none."""
    batch = found.profiles.shape[0]
    values = found.values.to(dtype)
    chosen = select(values, found.valid, selection)
    unsolved = ~found.valid.any(1)
    if bool(unsolved.any()):  # report the end point with the smallest gap
        chosen = torch.where(unsolved, found.relative.argmin(1), chosen)
    rows = torch.arange(batch, device=found.profiles.device)
    profile = found.profiles[rows, chosen]
    strategies = [torch.nn.functional.one_hot(profile[:, i], size).to(dtype) for i, size in enumerate(sizes)]
    return StageGameSolution(
        strategies=strategies,
        values=values[rows, chosen],
        nash_gap=found.gaps[rows, chosen].to(dtype),
        solved=found.relative[rows, chosen] <= tol,
        n_equilibria=found.valid.sum(1),
    )


def _best_reply_dynamics(deviations: Deviations, profile: torch.Tensor, n: int, max_sweeps: int) -> torch.Tensor:
    profile = profile.clone()
    for _ in range(max_sweeps):
        moved = torch.zeros(profile.shape[0], dtype=torch.bool, device=profile.device)
        for i in range(n):
            payoff = deviations(profile, i)  # [B, A_i]
            best = payoff.argmax(1)
            current = payoff.gather(1, profile[:, i : i + 1]).squeeze(1)
            top = payoff.gather(1, best[:, None]).squeeze(1)
            better = top > current + IMPROVE * current.abs().clamp_min(1.0)
            profile[:, i] = torch.where(better, best, profile[:, i])
            moved |= better
        if not bool(moved.any()):
            break
    return profile


def _value_and_gap(deviations: Deviations, profile: torch.Tensor, n: int):
    """``[B, N]`` payoffs at ``profile``, ``[B]`` Nash gap, and ``[B]`` scale ``max(1, max |u|)``
    over the deviation payoffs (the gap divided by it is in the solver's units)."""
    values, gains, scale = [], [], torch.ones(profile.shape[0], dtype=torch.float64, device=profile.device)
    for i in range(n):
        payoff = deviations(profile, i).double()
        own = payoff.gather(1, profile[:, i : i + 1]).squeeze(1)
        values.append(own)
        gains.append((payoff.amax(1) - own).clamp_min(0.0))
        scale = torch.maximum(scale, payoff.abs().amax(1))
    return torch.stack(values, 1), torch.stack(gains, 1).amax(1), scale
