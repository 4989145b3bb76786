r"""Batched Lemke-Howson pivoting for bimatrix games, in torch.

For a bimatrix game :math:`(A, B)` with :math:`m \times n` payoffs made strictly
positive by a constant shift (which changes no equilibrium), Lemke-Howson follows a
path of almost-complementary basic solutions of the two polytopes

.. math::

    P = \{x \ge 0 : B^\top x \le 1\}, \qquad Q = \{y \ge 0 : A y \le 1\},

starting from the artificial equilibrium :math:`(0, 0)` by dropping the label
``init_pivot`` and ending when that label is picked up again. The end point,
normalised, is a Nash equilibrium :math:`(x / 1^\top x,\; y / 1^\top y)`. Ties in the
ratio test are broken lexicographically (over the slack columns), which makes the
method correct for degenerate games too.

All games of a batch pivot in lock-step: one pivot of every still-running game is a
handful of tensor operations, and games that reached the end of their path leave the
active set, so the heavy tail of long paths is paid only by the games that have it.
The same code runs on the CPU and on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nashrl.equilibrium._optional import compiled

TOL_PIVOT = 1e-10
TOL_RATIO = 1e-13


@dataclass
class LemkeHowsonResult:
    """End points of the Lemke-Howson paths of a batch of games.

    Attributes:
        x: ``[G, m]`` mixed strategy of the row player.
        y: ``[G, n]`` mixed strategy of the column player.
        converged: ``[G]`` True where the path ended (the profile is an equilibrium).
        pivots: ``[G]`` number of pivots each game took.
    """

    x: torch.Tensor
    y: torch.Tensor
    converged: torch.Tensor
    pivots: torch.Tensor


def _initial_tableaux(a: torch.Tensor, b: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Tableaux ``[B^T | I_n | 1]`` (rows: column player's actions) and ``[I_m | A | 1]``."""
    g, m, n = a.shape
    shift_a = (1.0 - a.flatten(1).amin(1)).clamp_min(0.0).view(g, 1, 1)
    shift_b = (1.0 - b.flatten(1).amin(1)).clamp_min(0.0).view(g, 1, 1)
    t0 = a.new_zeros(g, n, m + n + 1)
    t0[:, :, :m] = b.transpose(1, 2) + shift_b
    t0[:, :, m : m + n] = torch.eye(n, dtype=a.dtype, device=a.device)
    t0[:, :, -1] = 1.0
    t1 = a.new_zeros(g, m, m + n + 1)
    t1[:, :, :m] = torch.eye(m, dtype=a.dtype, device=a.device)
    t1[:, :, m : m + n] = a + shift_a
    t1[:, :, -1] = 1.0
    bases0 = (m + torch.arange(n, device=a.device)).expand(g, n).clone()
    bases1 = torch.arange(m, device=a.device).expand(g, m).clone()
    return [t0, t1], [bases0, bases1]


def _lex_min_ratio_rows(
    tableau: torch.Tensor, col: torch.Tensor, pivot: torch.Tensor, slack_start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Leaving row of every game by the lexicographic minimum-ratio test; and a found flag."""
    candidates = col > TOL_PIVOT
    safe_col = torch.where(candidates, col, torch.ones_like(col))
    inf = torch.full_like(col, float("inf"))

    def keep_minimisers(numerator: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        ratio = torch.where(cand, numerator / safe_col, inf)
        best = ratio.amin(dim=1, keepdim=True)
        return cand & (ratio <= best + TOL_RATIO)

    candidates = keep_minimisers(tableau[:, :, -1], candidates)
    counts = candidates.sum(1)
    rows = tableau.shape[1]
    if bool((counts > 1).any()):
        for j in range(slack_start, slack_start + rows):
            tied = (counts > 1) & (pivot != j)
            if not bool(tied.any()):
                break
            narrowed = keep_minimisers(tableau[:, :, j], candidates)
            candidates = torch.where(tied.unsqueeze(1), narrowed, candidates)
            counts = candidates.sum(1)
    found = counts >= 1
    return candidates.to(torch.int8).argmax(dim=1), found


def _strategies(tableaux: list[torch.Tensor], bases: list[torch.Tensor], m: int, n: int):
    """Read the normalised mixed strategies off the basic variables."""
    g = bases[0].shape[0]
    t0, t1 = tableaux
    x = t0.new_zeros(g, m)
    in_x = bases[0] < m
    x.scatter_add_(1, bases[0].clamp(max=m - 1), torch.where(in_x, t0[:, :, -1], 0.0))
    y = t1.new_zeros(g, n)
    in_y = bases[1] >= m
    y.scatter_add_(1, (bases[1] - m).clamp(min=0), torch.where(in_y, t1[:, :, -1], 0.0))
    x = x.clamp_min(0.0)
    y = y.clamp_min(0.0)
    x = x / x.sum(1, keepdim=True).clamp_min(1e-300)
    y = y / y.sum(1, keepdim=True).clamp_min(1e-300)
    return x, y


def _lemke_howson_numba(a: torch.Tensor, b: torch.Tensor, labels: tuple[int, ...], max_iter: int) -> LemkeHowsonResult:
    kernel = compiled("_lemke_howson_numba")
    if kernel is None:
        raise ImportError("backend='numba' needs numba installed (pip install numba)")
    if a.device.type != "cpu" or len(labels) != 1:
        raise ValueError("backend='numba' takes CPU tensors and a single init_pivot label")
    a_np = a.detach().to(torch.float64).contiguous().numpy()
    b_np = b.detach().to(torch.float64).contiguous().numpy()
    g, m, n = a_np.shape
    x, y = np.zeros((g, m)), np.zeros((g, n))
    converged = np.zeros(g, dtype=np.bool_)
    pivots = np.zeros(g, dtype=np.int64)
    chunks = kernel.thread_chunks(g)
    if chunks == 1:
        kernel.lemke_howson_range(a_np, b_np, labels[0], max_iter, x, y, converged, pivots, 0, g)
    else:
        kernel.lemke_howson_batch(a_np, b_np, labels[0], max_iter, x, y, converged, pivots, chunks)
    as_t = lambda arr: torch.from_numpy(arr).to(a.dtype)  # noqa: E731
    return LemkeHowsonResult(
        x=as_t(x), y=as_t(y), converged=torch.from_numpy(converged), pivots=torch.from_numpy(pivots)
    )


@torch.inference_mode()
def lemke_howson(
    a: torch.Tensor,
    b: torch.Tensor,
    init_pivot: int | tuple[int, ...] = 0,
    max_iter: int | None = None,
    backend: str = "auto",
) -> LemkeHowsonResult:
    """Run Lemke-Howson on every game of the batch ``(a[g], b[g])``, shapes ``[G, m, n]``.

    Args:
        a: row player's payoffs.
        b: column player's payoffs.
        init_pivot: the label dropped first, in ``0 .. m+n-1`` (different labels can
            end at different equilibria). A tuple of labels on one player's side (all
            below ``m``, or all at least ``m``) *races* one path per label for every
            game and keeps the first to end (ties: the earlier label): more work per
            pivot, far fewer pivots for the slowest games.
        max_iter: pivot limit per game (default ``50 * (m + n)``); a game that reaches
            it is returned with ``converged = False``.
        backend: ``"torch"`` (lock-step batched pivoting, any device), ``"numba"``
            (compiled per-game paths over all cores; CPU tensors, one label) or
            ``"auto"``: numba for CPU tensors with one label when numba is installed,
            torch otherwise.
    """
    if backend not in ("auto", "torch", "numba"):
        raise ValueError(f"backend: expected 'auto', 'torch' or 'numba', got {backend!r}")
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(
            f"a, b: expected two [G, m, n] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    g, m, n = a.shape
    labels = (init_pivot,) if isinstance(init_pivot, int) else tuple(init_pivot)
    if not labels or not all(0 <= lab < m + n for lab in labels):
        raise ValueError(f"init_pivot: expected labels in [0, {m + n - 1}], got {init_pivot}")
    if len({lab >= m for lab in labels}) != 1:
        raise ValueError(f"init_pivot: raced labels must all be below m={m} or all at least m, got {labels}")
    max_iter = 50 * (m + n) if max_iter is None else max_iter
    compiled_path = a.device.type == "cpu" and len(labels) == 1 and compiled("_lemke_howson_numba") is not None
    use_numba = backend == "numba" or (backend == "auto" and compiled_path)
    if use_numba:
        return _lemke_howson_numba(a, b, labels, max_iter)
    k = len(labels)
    device = a.device
    # Copy c of game j sits at slot j * k + c.
    tableaux, bases = _initial_tableaux(a.repeat_interleave(k, 0), b.repeat_interleave(k, 0))
    game = torch.arange(g, device=device).repeat_interleave(k)
    label = torch.tensor(labels, device=device).repeat(g)
    pivot = label.clone()
    alive = torch.ones(g * k, dtype=torch.bool, device=device)
    x_out, y_out = a.new_zeros(g, m), a.new_zeros(g, n)
    converged = torch.zeros(g, dtype=torch.bool, device=device)
    pivots = torch.full((g,), max_iter, dtype=torch.long, device=device)
    player = 1 if labels[0] >= m else 0
    slack_starts = (m, 0)
    steps = 0
    while steps < max_iter:
        tableau = tableaux[player]
        ar = torch.arange(tableau.shape[0], device=device)
        col = tableau[ar, :, pivot]
        row, found = _lex_min_ratio_rows(tableau, col, pivot, slack_starts[player])
        pivot_value = torch.where(found, col[ar, row], torch.ones_like(col[:, 0]))
        pivot_row = tableau[ar, row] / pivot_value.unsqueeze(1)
        tableau.addcmul_(col.unsqueeze(2), pivot_row.unsqueeze(1), value=-1.0)
        tableau[ar, row] = pivot_row
        leaving = bases[player][ar, row]
        bases[player][ar, row] = pivot
        pivot = leaving
        steps += 1
        player = 1 - player

        done = alive & found & (pivot == label)
        failed = alive & ~found
        if bool(done.any()):
            # Keep one finishing copy per game: the earliest label (lowest slot).
            slots = torch.nonzero(done).squeeze(1)
            first = torch.ones_like(slots, dtype=torch.bool)
            first[1:] = game[slots[1:]] != game[slots[:-1]]
            slots = slots[first]
            x, y = _strategies([t[slots] for t in tableaux], [bs[slots] for bs in bases], m, n)
            ids = game[slots]
            x_out[ids], y_out[ids] = x, y
            converged[ids] = True
            pivots[ids] = steps
            alive &= ~converged[game]
        if bool(failed.any()):
            alive &= ~failed
            # A game fails only when none of its copies is still on its path.
            lost = torch.zeros(g, dtype=torch.bool, device=device)
            lost[game[failed]] = True
            still = torch.zeros(g, dtype=torch.bool, device=device)
            still[game[alive]] = True
            pivots[lost & ~still & ~converged] = steps
        n_alive = int(alive.sum())
        if n_alive == 0:
            break
        if n_alive <= 0.6 * alive.numel():
            tableaux = [t[alive] for t in tableaux]
            bases = [bs[alive] for bs in bases]
            game, label, pivot = game[alive], label[alive], pivot[alive]
            alive = alive[alive]
    return LemkeHowsonResult(x=x_out, y=y_out, converged=converged, pivots=pivots)
