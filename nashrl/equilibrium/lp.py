r"""Solution concepts computed by linear programming, one game at a time (scipy HiGHS).

**Correlated equilibrium** (Aumann), maximising welfare: a distribution :math:`p` over
joint profiles such that no player gains by deviating from a recommended action,

.. math::

    \max_{p \ge 0,\ 1^\top p = 1} \sum_a p(a) \sum_i G_i(a) \quad \text{s.t.} \quad
    \sum_{a_{-i}} p(a_i, a_{-i}) \big[G_i(a_i', a_{-i}) - G_i(a_i, a_{-i})\big] \le 0
    \quad \forall i,\ a_i \ne a_i'.

**Maximin (security) value** of player :math:`i` against all others acting jointly
(the zero-sum value of a two-player zero-sum game, the "foe" value of Friend-or-Foe Q):

.. math::

    v_i = \max_{x_i \in \Delta(A_i)} \min_{a_{-i}} \sum_{a_i} x_i(a_i)\, G_i(a_i, a_{-i}).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linprog

from nashrl.equilibrium.payoffs import as_payoff_tensor


def _incentive_rows(own: np.ndarray, player: int) -> np.ndarray:
    """Rows ``[(a_i, a_i'), P]`` of the obedience constraints of ``player``."""
    front = np.moveaxis(own, player, 0)  # [A_i, rest...]
    n = front.shape[0]
    rest = front.shape[1:]
    rows = np.zeros((n, n, n) + rest)
    for ai in range(n):
        rows[ai, :, ai] = front - front[ai]  # G_i(a_i', a_-i) - G_i(a_i, a_-i) at slot a_i
    rows = rows[~np.eye(n, dtype=bool)]  # drop a_i' == a_i
    return np.moveaxis(rows, 1, 1 + player).reshape(rows.shape[0], -1)


def correlated_equilibrium(payoffs) -> tuple[torch.Tensor, torch.Tensor]:
    """Welfare-maximising correlated equilibrium of every game.

    Returns:
        joint: ``[B, A_1, ..., A_N]`` distribution over profiles.
        values: ``[B, N]`` expected payoffs under it.
    """
    tensor = as_payoff_tensor(payoffs)
    games = tensor.detach().cpu().numpy()
    n_players = games.shape[1]
    joints = []
    for game in games:
        a_ub = np.concatenate([_incentive_rows(game[i], i) for i in range(n_players)])
        welfare = game.sum(0).ravel()
        res = linprog(
            -welfare,
            A_ub=a_ub,
            b_ub=np.zeros(a_ub.shape[0]),
            A_eq=np.ones((1, welfare.size)),
            b_eq=[1.0],
            bounds=(0, None),
            method="highs",
        )
        if res.status != 0:
            raise RuntimeError(f"correlated_equilibrium: the LP failed ({res.message})")
        p = np.clip(res.x, 0.0, None)
        joints.append((p / p.sum()).reshape(game.shape[1:]))
    joint = torch.as_tensor(np.stack(joints), dtype=tensor.dtype, device=tensor.device)
    values = (tensor * joint.unsqueeze(1)).flatten(2).sum(-1)
    return joint, values


def maximin(payoffs) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every player's maximin strategy and security value, ``([B, A_i] ...), [B, N]``."""
    tensor = as_payoff_tensor(payoffs)
    games = tensor.detach().cpu().numpy()
    n_players = games.shape[1]
    strategies = [[] for _ in range(n_players)]
    values = np.zeros(games.shape[:2])
    for b, game in enumerate(games):
        for i in range(n_players):
            own = np.moveaxis(game[i], i, 0).reshape(game.shape[1 + i], -1)  # [A_i, joint a_-i]
            n_own, n_rest = own.shape
            c = np.zeros(n_own + 1)
            c[-1] = -1.0  # maximise v
            a_ub = np.hstack([-own.T, np.ones((n_rest, 1))])  # v - x^T G_i(., a_-i) <= 0
            a_eq = np.hstack([np.ones((1, n_own)), np.zeros((1, 1))])
            bounds = [(0, None)] * n_own + [(None, None)]
            res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n_rest), A_eq=a_eq, b_eq=[1.0], bounds=bounds, method="highs")
            if res.status != 0:
                raise RuntimeError(f"maximin: the LP failed ({res.message})")
            x = np.clip(res.x[:-1], 0.0, None)
            strategies[i].append(x / x.sum())
            values[b, i] = res.x[-1]
    as_t = lambda arr: torch.as_tensor(np.asarray(arr), dtype=tensor.dtype, device=tensor.device)  # noqa: E731
    return [as_t(s) for s in strategies], as_t(values)
