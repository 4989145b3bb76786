r"""Batched support enumeration for small bimatrix games: every equilibrium of a
non-degenerate game.

For supports :math:`I \subseteq [m]`, :math:`J \subseteq [n]` with :math:`|I| = |J| = k \ge 2`
(pure equilibria come from the pure mask), solve the indifference systems

.. math::

    A_{IJ}\, y_J = u \mathbf 1,\ \mathbf 1^\top y_J = 1, \qquad
    B_{IJ}^\top x_I = v \mathbf 1,\ \mathbf 1^\top x_I = 1,

for all games at once, and keep the solutions with :math:`x, y \ge 0` and no profitable
deviation outside the supports (:math:`A y \le u`, :math:`B^\top x \le v`). The number of
support pairs, :math:`\sum_{k \ge 2} \binom{m}{k}\binom{n}{k}`, grows fast: use it for
small action sets (``max_pairs``), Lemke-Howson otherwise.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import torch

TOL = 1e-9


def n_support_pairs(m: int, n: int) -> int:
    return sum(comb(m, k) * comb(n, k) for k in range(2, min(m, n) + 1))


def _indifferent(block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Solve ``block @ z = w 1``, ``1^T z = 1`` for ``[B, k, k]`` blocks: (z, w, ok)."""
    b, k, _ = block.shape
    system = block.new_zeros(b, k + 1, k + 1)
    system[:, :k, :k] = block
    system[:, :k, k] = -1.0
    system[:, k, :k] = 1.0
    rhs = block.new_zeros(b, k + 1, 1)
    rhs[:, k] = 1.0
    sol, info = torch.linalg.solve_ex(system, rhs)
    sol = sol.squeeze(-1)
    ok = (info == 0) & torch.isfinite(sol).all(-1)
    return torch.nan_to_num(sol[:, :k]), torch.nan_to_num(sol[:, k]), ok


#: Largest number of support pairs enumerated per game.
MAX_PAIRS = 5000


def support_enumeration(a: torch.Tensor, b: torch.Tensor, max_pairs: int = MAX_PAIRS):
    """Mixed equilibria (support size >= 2) of ``[G, m, n]`` games, in enumeration order.

    Returns a list of ``(x [G, m], y [G, n], found [G])``, one entry per support pair
    that holds an equilibrium in at least one game.
    """
    g, m, n = a.shape
    pairs = n_support_pairs(m, n)
    if pairs > max_pairs:
        raise ValueError(
            f"search_mixed='all': {m}x{n} games have {pairs} support pairs (limit {max_pairs}); "
            "use search_mixed='always' (Lemke-Howson) for games this large"
        )
    out = []
    for k in range(2, min(m, n) + 1):
        for rows in combinations(range(m), k):
            for cols in combinations(range(n), k):
                r = torch.tensor(rows, device=a.device)
                c = torch.tensor(cols, device=a.device)
                y_s, u, ok_y = _indifferent(a[:, r][:, :, c])
                x_s, v, ok_x = _indifferent(b[:, r][:, :, c].transpose(1, 2))
                x = a.new_zeros(g, m)
                y = a.new_zeros(g, n)
                x[:, r], y[:, c] = x_s, y_s
                ok = ok_x & ok_y & (x_s >= -TOL).all(1) & (y_s >= -TOL).all(1)
                ok &= (torch.einsum("gij,gj->gi", a, y) <= u.unsqueeze(1) + TOL).all(1)
                ok &= (torch.einsum("gij,gi->gj", b, x) <= v.unsqueeze(1) + TOL).all(1)
                if bool(ok.any()):
                    out.append((x.clamp_min(0.0), y.clamp_min(0.0), ok))
    return out
