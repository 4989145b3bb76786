r"""What the last layer of the Nash-Q network means: the Q head.

The network is an MLP body :math:`h(s)` and a last linear layer; the head says how that layer's
outputs make each firm's Q-values and their stage game.

- :class:`JointHead` (Hu and Wellman 2003): every firm's Q over *joint* actions,
  :math:`Q_i(s, a_1, \dots, a_N)`, ``N * prod(A_i)`` outputs; the stage game at :math:`s` is the
  tensor ``[N, A_1, ..., A_N]`` the batched solver takes.

The TD loss needs :math:`Q_i(s, a)` only at the joint action taken, so :meth:`JointHead.taken`
computes just those ``N`` outputs per sample (the layer's rows for them, gathered) instead of all
``N * prod(A_i)``: the same loss and gradients (the other rows' gradients are zero either way),
without the dense output layer in the training forward and backward.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def joint_index(actions: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Row-major flat index of joint actions ``[B, N]``."""
    flat = torch.zeros(actions.shape[0], dtype=torch.long, device=actions.device)
    for i, size in enumerate(sizes):
        flat = flat * size + actions[:, i].long()
    return flat


class JointHead:
    """Every firm's Q over joint actions: output ``i * prod(A) + joint_index(a)`` is :math:`Q_i(s, a)`."""

    def __init__(self, action_sizes: tuple[int, ...]):
        self.action_sizes = tuple(action_sizes)
        self.n_firms = len(self.action_sizes)
        self.n_profiles = math.prod(self.action_sizes)
        self.n_outputs = self.n_firms * self.n_profiles

    def stage_games(self, out: torch.Tensor) -> torch.Tensor:
        """``[B, N, A_1, ..., A_N]`` from the layer's outputs ``[B, n_outputs]``."""
        return out.view(-1, self.n_firms, *self.action_sizes)

    def taken(self, layer: nn.Linear, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B, N]``: :math:`Q_i(s_b, a_b)` from the body's ``features`` ``[B, H]`` and the joint
        actions ``[B, N]``, computing only those outputs of ``layer``."""
        firms = torch.arange(self.n_firms, device=actions.device) * self.n_profiles
        rows = (joint_index(actions, self.action_sizes).unsqueeze(1) + firms).flatten()  # [B * N]
        return gathered_linear(layer, features, rows, self.n_firms)


def gathered_linear(layer: nn.Linear, features: torch.Tensor, rows: torch.Tensor, per_sample: int) -> torch.Tensor:
    """``[B, per_sample]``: outputs ``rows`` (``[B * per_sample]``, sample-major) of ``layer`` at
    ``features`` ``[B, H]``. index_select's backward is an index_add, far cheaper on CPU than
    the accumulate-scatter of advanced indexing or einsum's batched matmul at these shapes."""
    b, width = features.shape
    weight = torch.index_select(layer.weight, 0, rows).view(b, per_sample, width)
    bias = torch.index_select(layer.bias, 0, rows).view(b, per_sample)
    return (weight * features.unsqueeze(1)).sum(-1) + bias
