r"""The Nash-Q RLModule: every firm's Q-values over joint actions, and equilibrium play.

An MLP maps the public state :math:`s` to :math:`Q_i(s, a_1, \dots, a_N)` for every
firm :math:`i` (one tensor ``[B, N, A_1, ..., A_N]``): the stage game at :math:`s`.
Acting solves that stage game (:func:`nashrl.equilibrium.solve`, same solution
concept and selection as the learner's targets) and firm :math:`i` plays its part
:math:`\sigma_i(s)`:

- inference: the most likely action of :math:`\sigma_i(s)` (the greedy joint policy);
- exploration, ``"epsilon"``: a uniformly random action with probability
  :math:`\varepsilon_t`, otherwise a draw from :math:`\sigma_i(s)`;
- exploration, ``"boltzmann"``: a draw from
  :math:`\mathrm{softmax}(Q_i(s, a_i, \sigma_{-i}(s)) / T_t)`, i.e. noisy best responses to
  the rivals' equilibrium play.

With ``solution_concept: "logit"`` (soft Nash-Q, for games with private type-1 extreme-value
shocks) the stage game's solution is its logit equilibrium at the shocks' scale
(``logit_temperature``). In a market with private shocks (:mod:`nashrl.markets.private_shocks`)
a firm's observation ends with its own shocks; the network reads only the public part, and the
firm plays :math:`\arg\max_{a_i} [Q_i(s, a_i, \sigma_{-i}(s)) + \varepsilon_i(a_i)]`, which is
exactly a draw from its logit strategy :math:`\sigma_i(s)` (in inference too: that is the
equilibrium strategy of a firm that sees its shocks); epsilon exploration still applies on top.

:math:`\varepsilon_t` and :math:`T_t` follow piecewise-linear schedules in env steps.

Two entry points share one implementation (:meth:`NashQTorchRLModule.act`): RLlib's per-agent
rows (``forward_inference`` / ``forward_exploration``, one row per firm), and
:meth:`NashQTorchRLModule.act_joint`, which the vectorised env runner calls with the K public
states of its market copies: one forward pass and one solve per state for all its firms.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.schedules.scheduler import Scheduler
from torch import nn

from nashrl.algorithms.nash_q.connectors import FIRM_INDEX
from nashrl.algorithms.nash_q.heads import make_head
from nashrl.equilibrium import SolutionCache, StageGameSolution
from nashrl.equilibrium.aggregative import Aggregation

Q_JOINT = "q_joint"
#: forward_train's output: each firm's Q at the batch's joint actions, ``[B, N]``.
Q_TAKEN = "q_taken"


def aggregation_of(spec: dict | None) -> Aggregation | None:
    """The aggregative head's :class:`Aggregation` from its ``model_config`` entry (plain lists)."""
    if spec is None:
        return None
    return Aggregation(
        contributions=torch.tensor(spec["contributions"], dtype=torch.float64),
        sizes=tuple(spec["sizes"]),
        knots=torch.tensor(spec["knots"], dtype=torch.float64),
        transform=spec["transform"],
    )


def aggregation_spec(aggregation: Aggregation) -> dict:
    """:func:`aggregation_of`'s inverse: plain lists, for a module's ``model_config``."""
    return {
        "contributions": aggregation.contributions.tolist(),
        "sizes": list(aggregation.sizes),
        "knots": aggregation.knots.tolist(),
        "transform": aggregation.transform,
    }


def mlp(n_in: int, hiddens: list[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hiddens:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class SharedFirms(nn.Module):
    r"""One network for every firm of an exchangeable market (``share_firms``): firm ``i``'s
    outputs are ``net`` at its own view of the state, :math:`Q_i(s, \cdot) = Q(v_i(s), \cdot)`
    (``views`` ``[N, P]``, :meth:`nashrl.markets.base.MarketEnv.firm_views`), laid out firm by
    firm as the head expects; ``net``'s last layer has one firm's outputs."""

    def __init__(self, net: nn.Sequential, views: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("views", views.long(), persistent=False)

    def per_firm(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, P]``: every firm's view of states ``x`` ``[B, P]``."""
        return x[:, self.views]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.per_firm(x)).flatten(1)


def last_layer_and_features(net: nn.Module, x: torch.Tensor) -> tuple[nn.Linear, torch.Tensor]:
    """The Q network's last layer and the features it reads: ``[B, H]``, or ``[B, N, H]`` (one row
    per firm's view) for :class:`SharedFirms`."""
    if isinstance(net, SharedFirms):
        return net.net[-1], net.net[:-1](net.per_firm(x))
    return net[-1], net[:-1](x)


class NashQTorchRLModule(TorchRLModule, TargetNetworkAPI, InferenceOnlyAPI):
    """``model_config`` keys: ``action_sizes``, ``hiddens``, ``q_head`` (``joint``, ``independent``
    or ``aggregative`` with its ``aggregation``, :mod:`~nashrl.algorithms.nash_q.heads`),
    ``firm_views`` (one network for all firms, :class:`SharedFirms`; aggregative head only),
    ``dueling`` (values and centred advantages, :class:`~nashrl.algorithms.nash_q.heads.DuelingHead`),
    ``solution_concept``, ``selection``, ``solver_backend``, ``equilibrium_search``,
    ``exploration``, ``epsilon``, ``temperature``, ``logit_temperature``, ``public_size``
    (observation entries the network reads; the rest, if any, are the firm's own shocks)."""

    def setup(self) -> None:
        cfg = self.model_config
        self.action_sizes: tuple[int, ...] = tuple(int(a) for a in cfg["action_sizes"])
        self.n_firms = len(self.action_sizes)
        self.concept: str = cfg.get("solution_concept", "nash")
        self.selection: str = cfg.get("selection", "pareto")
        self.solver_backend: str = cfg.get("solver_backend", "auto")
        self.equilibrium_search: str = cfg.get("equilibrium_search", "auto")
        self.logit_temperature: float | None = cfg.get("logit_temperature") if self.concept == "logit" else None
        self.head = make_head(
            cfg.get("q_head", "joint"),
            self.action_sizes,
            self.concept,
            self.logit_temperature,
            aggregation_of(cfg.get("aggregation")),
            dueling=bool(cfg.get("dueling", False)),
        )
        # Games recur (same states, weights unchanged between syncs/target updates): memoise.
        self._solutions = SolutionCache(
            solver=getattr(self.head, "solver", None),
            sizes=self.action_sizes,
            concept=self.concept,
            selection=self.selection,
            backend=self.solver_backend,
            search_mixed=self.equilibrium_search,
            temperature=self.logit_temperature,
        )
        self.exploration: str = cfg.get("exploration", "epsilon")
        self.epsilon_schedule = Scheduler(cfg.get("epsilon", [(0, 1.0), (10_000, 0.05)]), framework="torch")
        self.temperature_schedule = Scheduler(cfg.get("temperature", [(0, 1.0), (10_000, 0.01)]), framework="torch")
        n_obs = int(math.prod(self.observation_space.shape))
        self.public_size = int(cfg.get("public_size") or n_obs)
        self.private_shocks = self.public_size < n_obs  # the observation ends with the firm's own shocks
        hiddens = list(cfg.get("hiddens", [64, 64]))
        if cfg.get("firm_views") is not None:  # share_firms: one network for every firm
            views = torch.tensor(cfg["firm_views"], dtype=torch.long)
            self.q_net = SharedFirms(mlp(self.public_size, hiddens, self.head.n_outputs // self.n_firms), views)
        else:
            self.q_net = mlp(self.public_size, hiddens, self.head.n_outputs)
        #: Env step from which the greedy policy reads the running mean of the online weights.
        self.average_from: int | None = cfg.get("average_weights_from")
        if self.average_from is not None:
            self._average_q_net = copy.deepcopy(self.q_net).requires_grad_(False)
            # Weights averaged so far (a buffer: synced to env runners and checkpointed with them).
            self.register_buffer("average_count", torch.zeros((), dtype=torch.float64))

    # ----- Q-values and stage games -----
    def _public(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float().flatten(1)[:, : self.public_size]

    def _q(self, net: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        return self.head.stage_games(net(self._public(obs)))

    def raw_q(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, n_outputs]``: the last layer's outputs (every Q-value the head holds)."""
        return self.q_net(self._public(obs))

    def q_taken(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B, N]``: every firm's Q at the joint actions taken (only those outputs computed)."""
        return self.head.taken(*last_layer_and_features(self.q_net, self._public(obs)), actions)

    def q_values(self, obs: torch.Tensor):
        """The stage games at ``obs`` in the head's form: ``[B, N, A_1, ..., A_N]`` (every firm's Q over
        joint actions) for the joint head, per firm ``[B, A_i]`` for the independent one."""
        return self._q(self.q_net, obs)

    def target_q_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._q(self._target_q_net, obs)

    def policy_q_values(self, obs: torch.Tensor):
        """The stage games the greedy policy plays: :meth:`q_values` at the averaged weights once
        there are any (``average_weights_from``), at the online weights before."""
        averaging = self.average_from is not None and float(self.average_count) > 0
        return self._q(self._average_q_net if averaging else self.q_net, obs)

    @torch.no_grad()
    def update_average(self) -> None:
        r"""Polyak-Ruppert averaging (Polyak and Juditsky 1992): with :math:`n` weights averaged,
        :math:`\bar\theta \leftarrow \bar\theta + (\theta - \bar\theta) / (n + 1)`, so that
        :math:`\bar\theta` is the arithmetic mean of the online weights at every call since
        ``average_weights_from``. SGD's iterates wander around the fit at a scale set by the
        learning rate; their mean does not, which matters where the stage game has near-ties."""
        self.average_count += 1
        weight = 1.0 / float(self.average_count)
        for mean, online in zip(self._average_q_net.parameters(), self.q_net.parameters(), strict=True):
            mean.lerp_(online, weight)

    def solve_stage_games(self, q) -> StageGameSolution:
        return self.head.solve(q, self._solutions)

    # ----- acting -----
    def act(
        self,
        q: torch.Tensor,
        state_of_row: torch.Tensor,
        firm: torch.Tensor,
        shocks: torch.Tensor | None,
        explore: bool,
        t: int = 0,
    ) -> torch.Tensor:
        """Actions of rows ``(state_of_row, firm)``: firm ``firm[r]`` at the state whose stage game
        is ``q[state_of_row[r]]``; ``shocks`` ``[R, A]`` are each row's own private shocks (None
        without). One solve per state, however many firms act there (see the module doc)."""
        with torch.no_grad():
            sol = self.solve_stage_games(q)
            device = firm.device
            strategies = [s.to(device) for s in sol.strategies]
            own = torch.zeros(len(firm), max(self.action_sizes), dtype=torch.float64, device=device)
            for i, strategy in enumerate(strategies):
                rows = firm == i
                own[rows, : strategy.shape[1]] = strategy[state_of_row[rows]]
            needs_devs = shocks is not None or (explore and self.exploration == "boltzmann")
            devs = self.head.deviations(q, strategies) if needs_devs else []
            row_devs = torch.full_like(own, -float("inf"))
            for i, dev in enumerate(devs):
                rows = firm == i
                row_devs[rows, : dev.shape[1]] = dev[state_of_row[rows]]
            if shocks is not None:  # the best action given equilibrium payoffs and the firm's own shocks
                width = shocks.shape[1]
                chosen = (row_devs[:, :width] + shocks.double()).argmax(-1)
            if not explore:
                return chosen if shocks is not None else own.argmax(-1)
            # Random draws are made in a canonical row order (stably by firm), so that they do not
            # depend on the order in which RLlib lists the agents (a set: it varies between processes).
            order = torch.argsort(firm, stable=True)
            back = torch.argsort(order)
            if self.exploration == "boltzmann":
                self.temperature_schedule.update(t)
                temperature = max(float(self.temperature_schedule.get_current_value()), 1e-8)
                return torch.distributions.Categorical(logits=(row_devs / temperature)[order]).sample()[back]
            if shocks is not None:  # the shocks are the randomness: argmax of value + own shock
                actions = chosen
            else:
                actions = torch.multinomial(own[order].clamp_min(0.0) + 1e-12, 1).squeeze(1)[back]
            self.epsilon_schedule.update(t)
            epsilon = float(self.epsilon_schedule.get_current_value())
            sizes = torch.tensor(self.action_sizes, device=device)[firm]
            random = (torch.rand(len(firm), device=device)[back] * sizes).long()
            explore_rows = torch.rand(len(firm), device=device)[back] < epsilon
        return torch.where(explore_rows, random, actions)

    def act_joint(self, public: torch.Tensor, shocks: torch.Tensor | None, explore: bool, t: int = 0) -> torch.Tensor:
        """Joint actions ``[K, N]`` at ``K`` states (public observations ``[K, public_size]``;
        ``shocks`` ``[K, N, A]`` each firm's own, or None): one forward and one batched solve."""
        with torch.no_grad():
            q = self.q_values(public) if explore else self.policy_q_values(public)
        k = public.shape[0]
        state_of_row = torch.arange(k, device=public.device).repeat_interleave(self.n_firms)
        firm = torch.arange(self.n_firms, device=public.device).repeat(k)
        rows = None if shocks is None else shocks.reshape(k * self.n_firms, -1)
        return self.act(q, state_of_row, firm, rows, explore, t).view(k, self.n_firms)

    def choice_probabilities(self, q: torch.Tensor) -> list[torch.Tensor]:
        """Every firm's equilibrium choice probabilities (CCPs with private shocks) at stage games ``q``."""
        return list(self.solve_stage_games(q).strategies)

    def _rows(self, batch: dict[str, Any], explore: bool) -> tuple:
        """RLlib's per-agent rows: each row its own state (greedy: at the policy's weights)."""
        obs = batch[Columns.OBS]
        with torch.no_grad():
            q = self.q_values(obs) if explore else self.policy_q_values(obs)
        shocks = obs.flatten(1)[:, self.public_size :] if self.private_shocks else None
        return q, torch.arange(obs.shape[0], device=obs.device), batch[FIRM_INDEX].long(), shocks

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: self.act(*self._rows(batch, explore=False), explore=False)}

    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: self.act(*self._rows(batch, explore=True), explore=True, t=t)}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Q_TAKEN: self.q_taken(batch[Columns.OBS], batch[Columns.ACTIONS])}

    # ----- target network -----
    def make_target_networks(self) -> None:
        self._target_q_net = make_target_network(self.q_net)

    def get_target_network_pairs(self):
        return [(self.q_net, self._target_q_net)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_JOINT: self.target_q_values(batch[Columns.OBS])}

    def get_non_inference_attributes(self) -> list[str]:
        return ["_target_q_net"]
