r"""Logit equilibria of aggregative games whose aggregate lives on a count grid.

In an aggregative game (:mod:`~nashrl.equilibrium.aggregative`) player :math:`i`'s payoff is
:math:`\tilde u_i(a_i, X_{-i})` with :math:`X_{-i} = \sum_{j \ne i} g_j(a_j)`. When every
contribution is a whole number of steps of one grid, :math:`g_j(a) = g_j^{\min} + c_j(a)\,\delta`
with integer :math:`c_j(a)` (entry games: :math:`g_j(a) = a \in \{0, 1\}`, the aggregate is the
number of active rivals; Cournot on a shared even quantity grid), the aggregate takes the values
:math:`X^{\min}_{-i} + k\delta`, :math:`k = 0, \dots, M-1`, and a table ``[N, A, M]`` of
:math:`\tilde u_i(a, x_k)` holds the game exactly (``N * A * M`` numbers instead of
``N * A^N``).

Under mixed strategies :math:`\sigma_j` the rivals' aggregate index
:math:`K_{-i} = \sum_{j \ne i} c_j(a_j)` has the distribution of a sum of independent variables,
the convolution of the rivals' contribution laws (for entry: the Poisson-binomial law of the
number of active rivals). :func:`rival_distributions` builds all :math:`N` leave-one-out
convolutions at once, :math:`N \cdot A` shifted additions on a ``[B, N, M]`` tensor, so a
player's expected payoff of each own action,

.. math::

    u_i(a, \sigma_{-i}) = \sum_k P(K_{-i} = k)\, \tilde u_i(a, x_k),

costs :math:`O(N^2 A M)` per game instead of :math:`O(N A^N)`. The logit (quantal-response)
equilibrium :math:`\sigma_i = \mathrm{softmax}(u_i(\cdot, \sigma_{-i}) / \tau)` (McKelvey and
Palfrey 1995) is then found by the general solver's principal-branch path
(:func:`nashrl.equilibrium.logit.logit_equilibrium`, damped iteration along a geometric path in
:math:`1/\tau` from uniform play, Newton at the target) with these deviation payoffs in place of
the joint tensor's. On the CPU the path runs in compiled code
(:func:`nashrl.equilibrium._logit_numba.aggregate_logit_path`: damped iteration at 12 points of
the path, then Newton's method at the target with the Jacobian from leave-two-out laws of the
rivals' aggregate), on the tables less each firm's mean over its own actions (which changes no
equilibrium and starts the path where the payoff *differences* make play near-uniform); the torch
solver takes the games it leaves above the tolerance (Newton from where it ended, then a
30-point path with Newton at every point). Where the principal branch folds, a finer or coarser
path can land on another branch: the result is still a logit equilibrium, verified by its
residual. A player's value including the shocks' expected maximum is
:math:`\tau \log \sum_a \exp(u_i(a, \sigma_{-i}) / \tau)`.

This is the stage game of soft Nash-Q with an aggregative head in markets with private shocks:
with exchangeable firms (one fixed cost) the entry game's Q depends on the rivals only through
how many of them are active, since the continuation values of a symmetric profile do
(:mod:`nashrl.theory.symmetric_entry`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nashrl.equilibrium._optional import compiled
from nashrl.equilibrium.aggregative import Aggregation
from nashrl.equilibrium.logit import logit_equilibrium, principal_path
from nashrl.equilibrium.solver import StageGameSolution

#: Residual to which each point of the path before the target is solved: enough to stay on the
#: branch (the next point starts from it), far cheaper than the target's tolerance.
PATH_TOL = 1e-4
#: Points of the careful (torch) path for the games the fast one leaves: those whose branch bends
#: sharply need a finer path (the general solver's default).
CAREFUL_PATH_STEPS = 30


def count_index(aggregation: Aggregation) -> torch.Tensor | None:
    """``[N, A]`` integer steps :math:`c_j(a)` of each contribution above the player's smallest,
    when every player's knots are exactly the attainable aggregates ``low_i + k * step`` (a count
    grid); None otherwise (log transform, or knots between attainable values)."""
    if aggregation.transform != "linear":
        return None
    sizes = aggregation.sizes
    rows = [aggregation.contributions[j, : sizes[j]].double() for j in range(len(sizes))]
    knots = aggregation.knots.double()
    if knots.shape[1] < 2:
        return None
    step = float(knots[0, 1] - knots[0, 0])
    if step <= 0:
        return None
    index = torch.zeros(len(sizes), max(sizes), dtype=torch.long)
    for j, row in enumerate(rows):
        steps = (row - row.min()) / step
        if not torch.allclose(steps, steps.round(), atol=1e-9):
            return None
        index[j, : sizes[j]] = steps.round().long()
    tops = [int(index[j, : sizes[j]].max()) for j in range(len(sizes))]
    for i in range(len(sizes)):
        low = sum(float(rows[j].min()) for j in range(len(sizes)) if j != i)
        count = sum(tops[j] for j in range(len(sizes)) if j != i) + 1
        expected = low + step * torch.arange(count, dtype=torch.float64)
        if knots.shape[1] != count or not torch.allclose(knots[i], expected, rtol=1e-12, atol=1e-9):
            return None
    return index


def rival_distributions(strategies: Sequence[torch.Tensor], index: torch.Tensor, n_knots: int) -> torch.Tensor:
    """``[B, N, M]``: :math:`P(K_{-i} = k)` for every player ``i`` (module doc), from mixed
    ``strategies`` (per player ``[B, A_j]``) and contribution steps ``index`` ``[N, A]``.
    Functional (no in-place writes), so Newton's batched Jacobians can differentiate it."""
    n = len(strategies)
    first = strategies[0]
    start = F.one_hot(torch.zeros(n, dtype=torch.long, device=first.device), n_knots).to(first.dtype)
    dist = start.expand(first.shape[0], n, n_knots)
    players = torch.arange(n, device=first.device)
    for j, sigma in enumerate(strategies):
        mixed = torch.zeros_like(dist)
        for a in range(sigma.shape[-1]):
            c = int(index[j, a])
            shifted = F.pad(dist[..., : n_knots - c], (c, 0)) if c else dist
            mixed = mixed + sigma[..., a, None, None] * shifted
        dist = torch.where((players == j)[None, :, None], dist, mixed)  # player j is no rival of itself
    return dist


def table_deviations(index: torch.Tensor, sizes: Sequence[int]):
    """The :data:`~nashrl.equilibrium.logit.Deviations` of tables ``[B, N, A, M]``: per player
    ``[B, A_i]`` expected payoff of each own action against the rivals' mixed strategies."""

    def deviations(tables: torch.Tensor, strategies: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        dist = rival_distributions(strategies, index, tables.shape[-1]).to(tables.dtype)
        expected = (tables * dist.unsqueeze(2)).sum(-1)  # [B, N, A]
        return [expected[:, i, : sizes[i]] for i in range(len(sizes))]

    return deviations


def solve_aggregative_logit(
    tables: torch.Tensor, aggregation: Aggregation, temperature: float, *, tol: float = 1e-9, path_steps: int = 12
) -> StageGameSolution:
    """Logit equilibria (principal branch) of games held as tables ``[B, N, A, M]`` on a count
    grid (:func:`count_index`); ``nash_gap`` holds the fixed-point residual
    :math:`\\max |x - \\mathrm{logit}(x)|` and ``values`` each player's value with the shocks'
    expected maximum, as :func:`nashrl.equilibrium.solve` reports for ``concept="logit"``."""
    index = count_index(aggregation)
    if index is None:
        raise ValueError(
            "solution_concept: the logit concept with an aggregative head needs contributions on one "
            "count grid whose knots are every attainable aggregate (e.g. entry games)"
        )
    tables = tables.detach().double()
    sizes = aggregation.sizes
    deviations = table_deviations(index.to(tables.device), sizes)
    # A firm's choice depends on differences of its payoffs across its own actions: removing each
    # firm's mean over its actions at every aggregate leaves the equilibria (and the principal
    # branch) unchanged, and starts the path where those differences, not the common level of
    # the continuation values, make play near-uniform. Values are taken from the tables themselves.
    own = torch.zeros(len(sizes), tables.shape[2], 1, dtype=tables.dtype, device=tables.device)
    for i, n in enumerate(sizes):
        own[i, :n] = 1.0 / n
    strategic = (tables - (tables * own).sum(2, keepdim=True)) * (own > 0)
    kernel = compiled("_logit_numba") if tables.device.type == "cpu" else None
    if kernel is None or tables.shape[0] == 0:
        strategies, residual = logit_equilibrium(
            strategic, temperature, tol=tol, path_steps=path_steps, backend="torch", deviations=deviations, sizes=sizes
        )
    else:  # the path in compiled code; the torch solver (Newton, careful path) for what it leaves
        lambdas = principal_path(strategic, temperature, path_steps).double().numpy()
        x, res = kernel.aggregate_logit_path(
            np.ascontiguousarray(strategic.numpy()),
            np.ascontiguousarray(index.numpy()),
            np.asarray(sizes, dtype=np.int64),
            lambdas,
            tol,
            PATH_TOL,
            40,
            2000,
        )
        strategies = [torch.from_numpy(x[:, i, :n]).clone() for i, n in enumerate(sizes)]
        residual = torch.from_numpy(res)
        # What the compiled path leaves: Newton (torch) from where it ended, then the torch solver's
        # own path with its careful pass (Newton at every step), as for joint tables.
        for start in (True, False):
            left = torch.nonzero(residual > tol).squeeze(1)
            if not len(left):
                break
            polished, again = logit_equilibrium(
                strategic[left],
                temperature,
                start=[s[left] for s in strategies] if start else None,
                tol=tol,
                path_steps=path_steps if start else CAREFUL_PATH_STEPS,
                max_iter=200 if start else 2000,
                backend="torch",
                deviations=deviations,
                sizes=sizes,
            )
            better = again < residual[left]
            for s, p in zip(strategies, polished):
                s[left[better]] = p[better]
            residual[left[better]] = again[better]
    devs = deviations(tables, strategies)
    values = torch.stack([temperature * torch.logsumexp(d / temperature, -1) for d in devs], 1)
    return StageGameSolution(
        strategies=strategies,
        values=values,
        nash_gap=residual,
        solved=residual <= tol,
        n_equilibria=torch.ones(tables.shape[0], dtype=torch.long, device=tables.device),
    )
