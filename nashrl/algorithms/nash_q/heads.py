r"""What the last layer of the Nash-Q network means: the Q head.

The network is an MLP body :math:`h(s)` and a last linear layer; the head says how that layer's
outputs make each firm's Q-values, their stage game, its solution and its value:

- :class:`JointHead` (Hu and Wellman 2003): every firm's Q over *joint* actions,
  :math:`Q_i(s, a_1, \dots, a_N)`, ``N * prod(A_i)`` outputs; the stage game at :math:`s` is the
  tensor ``[N, A_1, ..., A_N]`` the batched solver takes (:func:`nashrl.equilibrium.solve`).
- :class:`IndependentHead`: each firm's Q over its *own* actions, :math:`Q_i(s, a_i)`,
  ``sum(A_i)`` outputs: independent learners (Tan 1993; deep: Tampuu et al. 2017), each treating
  its rivals as part of the environment. In the stage game :math:`Q_i` ignores the rivals, so its
  Nash equilibrium is every firm's own argmax: the target is DQN's
  :math:`r_i + \gamma \max_{a_i} \bar Q_i(s', a_i)` (logit: the soft maximum), and the same
  runner, replay and learner make it the like-with-like baseline for Nash-Q.

The TD loss needs :math:`Q_i(s, a)` only at the joint action taken, so ``taken`` computes just
those ``N`` outputs per sample (the layer's rows for them, gathered) instead of all of them: the
same loss and gradients (the other rows' gradients are zero either way), without the dense output
layer in the training forward and backward.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from nashrl.equilibrium import StageGameSolution, deviation_payoffs


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

    def solve(self, q: torch.Tensor, solver) -> StageGameSolution:
        """The selected equilibrium of every stage game (``solver``: the module's solution cache)."""
        return solver(q.detach().double())

    def values(self, q: torch.Tensor, solution: StageGameSolution) -> torch.Tensor:
        """``[B, N]`` each firm's expected ``q`` under the solution's (joint) distribution."""
        joint = solution.joint.to(q.device)
        return (q.double() * joint.unsqueeze(1)).flatten(2).sum(-1)

    def deviations(self, q: torch.Tensor, strategies: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per firm ``[B, A_i]``: its Q of each own action against the rivals' strategies."""
        return deviation_payoffs(q.double(), strategies)

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


class IndependentHead:
    """Each firm's Q over its own actions: outputs ``offset_i + a_i`` are :math:`Q_i(s, a_i)`.

    ``concept``: ``"nash"`` (every firm's argmax, the earliest on ties) or ``"logit"`` with
    ``temperature`` (softmax choice, the soft-Q value)."""

    def __init__(self, action_sizes: tuple[int, ...], concept: str = "nash", temperature: float | None = None):
        if concept not in ("nash", "logit"):
            raise ValueError(f"solution_concept: expected 'nash' or 'logit' for independent learners, got {concept!r}")
        self.action_sizes = tuple(action_sizes)
        self.n_firms = len(self.action_sizes)
        self.n_outputs = sum(self.action_sizes)
        self.offsets = torch.tensor([0, *itertools.accumulate(self.action_sizes)][:-1])
        self.concept, self.temperature = concept, temperature

    def stage_games(self, out: torch.Tensor) -> list[torch.Tensor]:
        """Per firm ``[B, A_i]`` from the layer's outputs ``[B, sum(A_i)]``."""
        return list(torch.split(out, self.action_sizes, dim=1))

    def taken(self, layer: nn.Linear, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        rows = (actions.long() + self.offsets.to(actions.device)).flatten()  # [B * N]
        return gathered_linear(layer, features, rows, self.n_firms)

    def solve(self, q: list[torch.Tensor], solver=None) -> StageGameSolution:
        q = [qi.detach().double() for qi in q]
        if self.concept == "logit":
            strategies = [torch.softmax(qi / self.temperature, -1) for qi in q]
        else:
            strategies = [torch.nn.functional.one_hot(qi.argmax(-1), qi.shape[1]).double() for qi in q]
        b, device = q[0].shape[0], q[0].device
        if self.concept == "logit":  # with the shocks' expected maximum, as the joint solver reports it
            values = torch.stack([self.temperature * torch.logsumexp(qi / self.temperature, -1) for qi in q], 1)
        else:
            values = self.values(q, None, strategies)
        return StageGameSolution(
            strategies=strategies,
            values=values,
            nash_gap=torch.zeros(b, dtype=torch.float64, device=device),
            solved=torch.ones(b, dtype=torch.bool, device=device),
            n_equilibria=torch.ones(b, dtype=torch.long, device=device),
        )

    def values(self, q: list[torch.Tensor], solution: StageGameSolution | None, strategies=None) -> torch.Tensor:
        strategies = solution.strategies if strategies is None else strategies
        return torch.stack([(qi.double() * s.to(qi.device)).sum(-1) for qi, s in zip(q, strategies)], 1)

    def deviations(self, q: list[torch.Tensor], strategies: list[torch.Tensor]) -> list[torch.Tensor]:
        return [qi.double() for qi in q]


def make_head(kind: str, action_sizes: tuple[int, ...], concept: str = "nash", temperature: float | None = None):
    """The head of ``q_head`` = ``kind``."""
    if kind == "joint":
        return JointHead(action_sizes)
    if kind == "independent":
        return IndependentHead(action_sizes, concept, temperature)
    raise ValueError(f"q_head: expected 'joint' or 'independent', got {kind!r}")
