r"""Payoff tensors of batched normal-form games and the quantities derived from them.

A batch of :math:`B` games with :math:`N` players, player :math:`i` having
:math:`A_i` actions, is one tensor ``G`` of shape ``[B, N, A_1, ..., A_N]``:
``G[b, i, a_1, ..., a_N]`` is player :math:`i`'s payoff in game :math:`b` at the
pure profile :math:`a`.

For mixed strategies :math:`x_j \in \Delta(A_j)` the *deviation payoff* of
player :math:`i`'s pure action :math:`a_i` is

.. math::

    u_i(a_i, x_{-i}) = \sum_{a_{-i}} G_i(a_i, a_{-i}) \prod_{j \ne i} x_j(a_{j}),

the expected payoff is :math:`u_i(x) = \sum_{a_i} x_i(a_i)\, u_i(a_i, x_{-i})`
and the Nash gap (exploitability) of the profile is

.. math::

    \mathrm{gap}(x) = \max_i \Big(\max_{a_i} u_i(a_i, x_{-i}) - u_i(x)\Big) \ge 0,

which is zero exactly at a Nash equilibrium.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
import torch

_LETTERS = string.ascii_lowercase.replace("b", "")


def as_payoff_tensor(
    payoffs: torch.Tensor | np.ndarray,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Validate ``payoffs`` of shape ``[B, N, A_1, ..., A_N]`` and return a torch tensor.

    Raises:
        ValueError: naming ``payoffs`` and what was expected when the shape is not
            ``[B, N, A_1, ..., A_N]``, an action set is empty, or (``check_finite``; a caller
            that checks as it reads, like the compiled two-player kernel, passes False and
            raises :data:`NOT_FINITE` itself) a payoff is not finite.
    """
    if isinstance(payoffs, torch.Tensor):
        if payoffs.dtype is dtype and (device is None or payoffs.device == torch.device(device)):
            tensor = payoffs  # (the solver's per-call path: no conversion, no copy)
        elif payoffs.is_complex() or payoffs.dtype == torch.bool:
            raise ValueError(f"payoffs: expected real numbers, got dtype {payoffs.dtype}")
        else:
            tensor = payoffs.to(dtype=dtype, device=device if device is not None else payoffs.device)
    elif isinstance(payoffs, np.ndarray):
        if not (np.issubdtype(payoffs.dtype, np.floating) or np.issubdtype(payoffs.dtype, np.integer)):
            raise ValueError(f"payoffs: expected real numbers, got dtype {payoffs.dtype}")
        tensor = torch.as_tensor(payoffs, dtype=dtype, device=device)
    else:
        raise TypeError(f"payoffs: expected a torch.Tensor or numpy array, got {type(payoffs).__name__}")
    shape = tensor.shape
    if len(shape) < 4:
        raise ValueError(f"payoffs: expected shape [B, N, A_1, ..., A_N] with N >= 2 players, got {tuple(shape)}")
    if len(shape) != shape[1] + 2:
        raise ValueError(
            f"payoffs: shape {tuple(shape)} says N={shape[1]} players but has "
            f"{len(shape) - 2} action axes; expected [B, N, A_1, ..., A_N]"
        )
    if 0 in shape[2:]:
        raise ValueError(f"payoffs: every player needs at least one action, got {tuple(shape)}")
    if check_finite:
        require_finite(tensor)
    return tensor


NOT_FINITE = "payoffs: every payoff must be finite (found NaN or inf)"


def require_finite(tensor: torch.Tensor) -> None:
    """Raise ``ValueError(NOT_FINITE)`` unless every entry is finite."""
    if tensor.numel() and not torch.isfinite(torch.stack(torch.aminmax(tensor))).all():  # both propagate NaN
        raise ValueError(NOT_FINITE)


def deviation_payoffs(payoffs: torch.Tensor, strategies: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Return ``[u_i(., x_{-i})]``: for each player a ``[B, A_i]`` tensor of pure-action payoffs."""
    n_players = payoffs.shape[1]
    axes = _LETTERS[:n_players]
    out = []
    for i in range(n_players):
        operands = [payoffs[:, i]] + [strategies[j] for j in range(n_players) if j != i]
        spec = "b" + axes + "," + ",".join("b" + axes[j] for j in range(n_players) if j != i)
        out.append(torch.einsum(f"{spec}->b{axes[i]}", *operands))
    return out


def values_and_gap(payoffs: torch.Tensor, strategies: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``u_i(x)`` ``[B, N]`` and the Nash gap ``[B]`` from one set of deviation payoffs."""
    devs = deviation_payoffs(payoffs, strategies)
    values = torch.stack([(d * x).sum(-1) for d, x in zip(devs, strategies)], dim=1)
    best = torch.stack([d.amax(-1) for d in devs], dim=1)
    return values, (best - values).amax(dim=1).clamp_min(0.0)


def expected_payoffs(payoffs: torch.Tensor, strategies: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return ``u_i(x)`` for every game and player, shape ``[B, N]``."""
    return values_and_gap(payoffs, strategies)[0]


def nash_gap(payoffs: torch.Tensor, strategies: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return the Nash gap (largest unilateral gain of any player), shape ``[B]``."""
    return values_and_gap(payoffs, strategies)[1]
