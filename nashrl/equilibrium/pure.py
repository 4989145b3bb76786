r"""Vectorised enumeration of pure-strategy Nash equilibria.

A pure profile :math:`a` is a Nash equilibrium of game :math:`b` iff for every player

.. math::

    G_i(a_i, a_{-i}) \ge \max_{a_i'} G_i(a_i', a_{-i}) - \mathrm{tol}.

The mask is computed for all games and all profiles at once (one max-reduction per
player), so it settles the many games that have a pure equilibrium almost for free.
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
