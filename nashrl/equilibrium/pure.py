r"""Vectorised enumeration of pure-strategy Nash equilibria.

A pure profile :math:`a` is a Nash equilibrium of game :math:`b` iff for every player

.. math::

    G_i(a_i, a_{-i}) \ge \max_{a_i'} G_i(a_i', a_{-i}) - \mathrm{tol}.

The mask is computed for all games and all profiles at once (one max-reduction per
player), so it settles the many games that have a pure equilibrium almost for free.

The *strictness margin* of a pure profile,

.. math::

    m(a) = \min_i \Big[ G_i(a) - \max_{a_i' \ne a_i} G_i(a_i', a_{-i}) \Big],

the smallest loss a player takes by its best unilateral deviation: positive at a strict
equilibrium, zero at a weak one; :math:`a` stays an equilibrium under every change of the payoffs
smaller than :math:`m(a)/2` in sup norm. The ``strict`` selection rule
(:mod:`~nashrl.equilibrium.selection`) prefers the equilibrium with the largest margin, the one
least likely to be an artefact of errors in estimated payoffs; in 2x2 games Harsanyi and Selten's
(1988) risk dominance compares the products of the same deviation losses.
"""

from __future__ import annotations

import torch


def pure_equilibrium_mask(payoffs: torch.Tensor, tol: float = 1e-12) -> torch.Tensor:
    """Boolean ``[B, A_1, ..., A_N]``: True where the pure profile is a Nash equilibrium."""
    n_players = payoffs.shape[1]
    mask = torch.ones(payoffs.shape[:1] + payoffs.shape[2:], dtype=torch.bool, device=payoffs.device)
    for i in range(n_players):
        own = payoffs[:, i]
        best = own.amax(dim=1 + i, keepdim=True)
        mask &= own >= best - tol
    return mask


def strictness_margins(payoffs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``[B, K]`` strictness margin :math:`m(a)` of the pure profiles ``ids`` (flat profile indices
    ``[B, K]``, row-major over ``A_1, ..., A_N``); ``inf`` where no player has a second action."""
    n_players, sizes = payoffs.shape[1], payoffs.shape[2:]
    margin = torch.full(ids.shape, float("inf"), dtype=payoffs.dtype, device=payoffs.device)
    stride = 1
    for i in range(n_players - 1, -1, -1):  # stride: profiles per step of player i's action
        if sizes[i] > 1:
            own = payoffs[:, i]
            top = own.topk(2, dim=1 + i).values
            best, second = top.select(1 + i, 0).flatten(1), top.select(1 + i, 1).flatten(1)
            rivals = (ids // (stride * sizes[i])) * stride + ids % stride  # a_{-i}'s flat index
            value = own.flatten(1).gather(1, ids)
            top_best, top_second = best.gather(1, rivals), second.gather(1, rivals)
            # The best other action: the second largest payoff where a_i is a largest, else the largest.
            others = torch.where(value >= top_best, top_second, top_best)
            margin = torch.minimum(margin, value - others)
        stride *= sizes[i]
    return margin
