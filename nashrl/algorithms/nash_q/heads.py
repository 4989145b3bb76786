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
- :class:`AggregativeHead`, for aggregative markets (:mod:`nashrl.equilibrium.aggregative`):
  each firm's Q over its own action and its rivals' aggregate,
  :math:`Q_i(s, a_i, X_{-i})`, held at ``M`` aggregate knots (every attainable aggregate on a
  shared even quantity grid; else ``aggregate_knots`` points, linear in the market's coordinate
  between them): ``N * A * M`` outputs instead of ``N * A^N`` (10 Cournot firms with 13
  quantities: 14,170 instead of 1.4e12). Its stage games are solved for pure equilibria by
  best-reply dynamics at a cost linear in ``N``, or (``logit``, markets with private shocks whose
  aggregate is a count, such as entry) for logit equilibria against the distribution of the
  rivals' aggregate (:mod:`~nashrl.equilibrium.aggregative_logit`). With ``share_firms`` (exchangeable firms) one
  network of ``A * M`` outputs reads each firm's own view of the state
  (:class:`~nashrl.algorithms.nash_q.module.SharedFirms`): symmetric firms share parameters.

With ``dueling`` (Wang et al. 2016) any of these heads is written as a state value and
centred advantages, firm by firm: :math:`Q_i(s, \cdot) = V_i(s) + A_i(s, \cdot) - \bar A_i(s)`,
:math:`\bar A_i` the mean of firm :math:`i`'s outputs (:class:`DuelingHead`). The function class
is the same; what changes is learning: :math:`V_i` is updated by every sample, so the part of Q
that does not depend on the actions (in dynamic markets most of it: the discounted continuation)
is learned from all the data, and the outputs per action carry only the small differences the
stage game is about.

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

from nashrl.equilibrium import StageGameSolution, deviation_payoffs, solve
from nashrl.equilibrium.aggregative import Aggregation, solve_aggregative_tables
from nashrl.equilibrium.aggregative_logit import count_index, solve_aggregative_logit, table_deviations


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

    def solver(self, payoffs: torch.Tensor, **options) -> StageGameSolution:
        """The batched solver (the solution cache's ``solver``)."""
        return solve(payoffs, **options)

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


class AggregativeHead:
    """Output ``(i * A + a) * M + k`` is :math:`Q_i(s, a, x_k)` at aggregate knot ``k`` (``A`` the
    largest action set); between knots Q is interpolated (:class:`~nashrl.equilibrium.aggregative.Aggregation`)."""

    def __init__(
        self,
        action_sizes: tuple[int, ...],
        aggregation: Aggregation,
        concept: str = "nash",
        temperature: float | None = None,
    ):
        if concept not in ("nash", "logit"):
            raise ValueError(f"solution_concept: expected 'nash' or 'logit' for the aggregative head, got {concept!r}")
        self.action_sizes = tuple(action_sizes)
        self.n_firms = len(self.action_sizes)
        self.width = max(self.action_sizes)
        self.aggregation = aggregation
        self.n_outputs = self.n_firms * self.width * aggregation.n_knots
        self.concept, self.temperature = concept, temperature
        # Logit: mixed strategies, so the rivals' aggregate is a distribution on the count grid.
        self.index = count_index(aggregation) if concept == "logit" else None
        if concept == "logit" and (self.index is None or temperature is None):
            raise ValueError("solution_concept: logit with the aggregative head needs a count grid and a temperature")

    def stage_games(self, out: torch.Tensor) -> torch.Tensor:
        """``[B, N, A, M]`` Q tables from the layer's outputs."""
        return out.view(-1, self.n_firms, self.width, self.aggregation.n_knots)

    def taken(self, layer: nn.Linear, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``features`` ``[B, H]``, or ``[B, N, H]`` with one layer for every firm (each firm's
        own features: ``share_firms``, whose layer holds one firm's ``A * M`` outputs)."""
        aggregation = self.aggregation.to(actions.device)
        k, w = aggregation.locate(aggregation.rival_aggregates(actions))  # [B, N]
        m = aggregation.n_knots
        step = 1 if m > 1 else 0
        if features.dim() == 3:
            b, n, h = features.shape
            low = actions.long() * m + k
            rows = torch.stack([low, low + step], -1).flatten()
            both = gathered_linear(layer, features.reshape(b * n, h), rows, 2).view(b, n, 2)
            w = w.to(both.dtype)
            return (1 - w) * both[..., 0] + w * both[..., 1]
        firms = torch.arange(self.n_firms, device=actions.device)
        low = (firms * self.width + actions.long()) * m + k
        both = gathered_linear(layer, features, torch.cat([low, low + step], 1).flatten(), 2 * self.n_firms)
        w = w.to(both.dtype)
        return (1 - w) * both[:, : self.n_firms] + w * both[:, self.n_firms :]

    def solver(self, tables: torch.Tensor, selection: str = "pareto", **options) -> StageGameSolution:
        """Pure equilibria (``nash``) or logit equilibria (``logit``) of Q tables ``[B, N, A, M]``
        (the solution cache's ``solver``)."""
        if self.concept == "logit":
            return solve_aggregative_logit(tables, self.aggregation.to(tables.device), self.temperature)
        return solve_aggregative_tables(tables, self.aggregation, selection=selection)

    def solve(self, q: torch.Tensor, solver) -> StageGameSolution:
        return solver(q.detach().double())

    def _profile(self, strategies: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([s.argmax(1) for s in strategies], 1)

    def values(self, q: torch.Tensor, solution: StageGameSolution) -> torch.Tensor:
        """``[B, N]`` each firm's Q in tables ``q`` at the solution's profile (logit: its expectation
        under the mixed profile, without the shocks' rent, as the joint head's)."""
        if self.concept == "logit":
            strategies = [s.to(q.device) for s in solution.strategies]
            devs = self.deviations(q, strategies)
            return torch.stack([(d * s).sum(-1) for d, s in zip(devs, strategies)], 1)
        profile = self._profile(solution.strategies).to(q.device)
        deviations = self.deviations(q, solution.strategies)
        return torch.stack([d.gather(1, profile[:, i : i + 1]).squeeze(1) for i, d in enumerate(deviations)], 1)

    def deviations(self, q: torch.Tensor, strategies: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per firm ``[B, A]``: its Q of each own action against the rivals' strategies (pure; logit:
        mixed, against the distribution of their aggregate)."""
        if self.concept == "logit":
            deviations = table_deviations(self.index.to(q.device), self.action_sizes)
            return deviations(q.double(), [s.to(q.device).double() for s in strategies])
        profile = self._profile(strategies).to(q.device)
        oracle = self.aggregation.to(q.device).table_deviations(q.double())
        return [oracle(profile, i) for i in range(self.n_firms)]


class DuelingHead:
    r"""``head`` with a value and centred advantages per firm (module doc): the layer has the
    head's ``n_outputs`` advantage outputs, firm :math:`i`'s in one contiguous block (every head
    orders its outputs firm by firm), then one value output per firm; the head itself sees
    :math:`A_i - \bar A_i + V_i` in place of its outputs, so stage games, solutions and values are
    the head's own."""

    def __init__(self, head):
        self.head = head
        self.n_firms = head.n_firms
        self.block = head.n_outputs // head.n_firms
        if self.block * self.n_firms != head.n_outputs:
            raise ValueError("dueling: expected a head whose outputs split into equal blocks per firm")
        self.n_outputs = head.n_outputs + self.n_firms

    def __getattr__(self, name):  # solver, solve, values, deviations: the head's own
        if name == "head":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.head, name)

    def combine(self, out: torch.Tensor) -> torch.Tensor:
        """The head's outputs ``[B, head.n_outputs]`` from the layer's ``[B, n_outputs]``."""
        advantages = out[:, : self.head.n_outputs].view(-1, self.n_firms, self.block)
        values = out[:, self.head.n_outputs :].unsqueeze(-1)
        return (advantages - advantages.mean(-1, keepdim=True) + values).flatten(1)

    def stage_games(self, out: torch.Tensor):
        return self.head.stage_games(self.combine(out))

    def taken(self, layer: nn.Linear, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The head's gathered outputs (rows below ``head.n_outputs`` are the advantages, indexed
        as the head indexes its layer) shifted by each firm's value less its mean advantage, both
        linear in the features: no other output is computed."""
        n = self.head.n_outputs
        advantage = self.head.taken(layer, features, actions)  # [B, N]
        weight = layer.weight[:n].view(self.n_firms, self.block, -1)
        bias = layer.bias[:n].view(self.n_firms, self.block)
        shift_weight = layer.weight[n:] - weight.mean(1)  # [N, H]
        shift_bias = layer.bias[n:] - bias.mean(1)
        return advantage + features @ shift_weight.T + shift_bias


def make_head(
    kind: str,
    action_sizes: tuple[int, ...],
    concept: str = "nash",
    temperature: float | None = None,
    aggregation: Aggregation | None = None,
    dueling: bool = False,
):
    """The head of ``q_head`` = ``kind`` (with ``dueling``, as :class:`DuelingHead`)."""
    if kind == "joint":
        head = JointHead(action_sizes)
    elif kind == "independent":
        head = IndependentHead(action_sizes, concept, temperature)
    elif kind == "aggregative":
        if aggregation is None:
            raise ValueError("q_head: 'aggregative' needs the market's aggregation (an aggregative market)")
        head = AggregativeHead(action_sizes, aggregation, concept, temperature)
    else:
        raise ValueError(f"q_head: expected 'joint', 'independent' or 'aggregative', got {kind!r}")
    return DuelingHead(head) if dueling else head
