r"""The market base class: a PettingZoo ``ParallelEnv`` whose players are firms.

Every market is a stochastic game :math:`(S, \{A_i\}, \pi, P)`: a state
:math:`s \in S`, firm :math:`i`'s action grid :math:`A_i` (quantities, prices or
investments), per-period profits :math:`\pi_i(s, a)` and transitions
:math:`P(s' \mid s, a)`. A subclass states these four things:

- :meth:`initial_state`, :meth:`transition`: the state process;
- :meth:`stage_profits`: profits for *arrays* of joint action indices, so that the whole
  stage game at a state, :meth:`payoff_table` of shape ``[N, A_1, ..., A_N]``, is one
  call (theory and Nash-Q both use it);
- :meth:`observe`: the public observation, the same for every firm, a float vector in
  ``[0, 1]`` unless the market says otherwise.

Optionally, for speed, the same for K copies at once (:meth:`initial_states`,
:meth:`transitions`, :meth:`profits_at`, :meth:`observe_all`, used by
:class:`~nashrl.markets.vector.VectorMarket`): the defaults loop over the single-copy methods;
array code overrides them, and its single-copy methods should call the same array code.

Agents are ``firm_0 .. firm_{N-1}`` (string ids). Rewards are profits, divided by
``reward_scale`` when ``normalise_rewards`` is set. Episodes end by truncation after
``episode_length`` steps.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from nashrl.markets import validation as v

COMMON_FIELDS = {"type", "episode_length", "normalise_rewards", "discount"}


class MarketEnv(ParallelEnv):
    """Base class of all markets; see the module docstring for the contract."""

    metadata: ClassVar[dict[str, Any]] = {"name": "market", "render_modes": [], "is_parallelizable": True}
    market_type: ClassVar[str] = "market"
    #: Sequential-move markets set this; see :class:`~nashrl.markets.stackelberg.StackelbergMarket`.
    sequential: ClassVar[bool] = False
    #: True when the one-period game ``payoff_table(s)`` is the game an MPE plays at ``s``
    #: (actions do not move the payoff-relevant state). Markets with investment or other
    #: payoff-relevant dynamics set False: there a one-period "stage Nash gap" is not an
    #: equilibrium test (the exact MPE fails it), and evaluation reports the one-step
    #: deviation gain in the value sense instead.
    stage_game_is_benchmark: ClassVar[bool] = True
    #: True when :meth:`transition` does not use its random generator: greedy play then ends
    #: in a limit cycle, over which long-run outcomes are measured (Calvano et al. 2020).
    deterministic: ClassVar[bool] = False
    #: What an action is, for axis labels ("quantity", "price", "investment").
    action_label: ClassVar[str] = "action"
    #: True for games with private payoff shocks (:mod:`~nashrl.markets.private_shocks`): firms'
    #: observations differ (each holds its own shocks) and theory is an MPE in choice probabilities.
    private_shocks: ClassVar[bool] = False
    #: True for aggregative stage games (:mod:`~nashrl.equilibrium.aggregative`): a firm's profit
    #: depends on its own action and the sum of its rivals' contributions; such a market states
    #: :meth:`contributions` and :meth:`aggregate_profits`, and many firms need no joint-action
    #: table (Nash-Q's ``q_head: aggregative``, theory by best replies).
    aggregative: ClassVar[bool] = False

    def __init__(self, n_firms: int, grids: list[np.ndarray], params: dict[str, Any]):
        if not self.aggregative:
            v.joint_actions([len(g) for g in grids])  # before anything enumerates them
        self.n_firms = n_firms
        self.grids = grids
        self.params = dict(params)
        self.episode_length = v.integer(params.get("episode_length", 100), "market.episode_length")
        self.discount = v.number(params.get("discount", 0.95), "market.discount", nonneg=True, below=1.0)
        self.normalise_rewards = v.boolean(params.get("normalise_rewards", False), "market.normalise_rewards")
        self.possible_agents = [f"firm_{i}" for i in range(n_firms)]
        self.agents: list[str] = []
        self.render_mode = None
        self._rng = np.random.default_rng()
        self._resume_state: dict[str, Any] | None = None  # see resume_rng
        self.state_: np.ndarray | None = None
        self._t = 0
        self._action_spaces = {a: gym.spaces.Discrete(len(g)) for a, g in zip(self.possible_agents, grids)}
        low, high = self.observation_bounds()
        self._observation_space = gym.spaces.Box(low, high, shape=(self.observation_size,), dtype=np.float32)
        self.reward_scale = self._reward_scale() if self.normalise_rewards else 1.0

    # ----- what a market states -----
    @property
    def observation_size(self) -> int:
        raise NotImplementedError

    @property
    def public_size(self) -> int:
        """Length of the public part of an observation (its first entries; all of it here)."""
        return self.observation_size

    def observation_bounds(self) -> tuple[float, float]:
        return 0.0, 1.0

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Profits ``[..., N]`` for joint action indices ``actions`` of shape ``[..., N]``."""
        raise NotImplementedError

    def observe(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ----- the same for K copies at once (VectorMarket); a market with array code overrides these -----
    def initial_states(self, rng: np.random.Generator, copies: int) -> np.ndarray:
        """``[K, ...]`` initial states of ``copies`` independent markets."""
        return np.stack([self.initial_state(rng) for _ in range(copies)])

    def transitions(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Next states ``[K, ...]`` of states ``[K, ...]`` after joint actions ``[K, N]``."""
        return np.stack([self.transition(s, a, rng) for s, a in zip(states, actions)])

    def profits_at(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Profits ``[K, N]`` of joint actions ``[K, N]``, copy ``k`` at ``states[k]``."""
        return np.stack([self.stage_profits(s, a[None])[0] for s, a in zip(states, actions)])

    def observe_all(self, states: np.ndarray) -> np.ndarray:
        """Public observations ``[K, observation_size]`` of states ``[K, ...]``."""
        return np.stack([self.observe(s) for s in states])

    def _own(self, owner: type, *names: str) -> bool:
        """True when this market's class inherits ``names`` from ``owner`` unchanged (so that
        ``owner``'s array code for K copies describes it, not a subclass's own dynamics)."""
        return all(getattr(type(self), n) is getattr(owner, n) for n in names)

    # ----- derived -----
    @property
    def action_sizes(self) -> tuple[int, ...]:
        return tuple(len(g) for g in self.grids)

    def all_profiles(self) -> np.ndarray:
        """Every joint action index profile, ``[prod A_i, N]``, in row-major order (refused above
        :data:`~nashrl.markets.validation.MAX_JOINT_ACTIONS`)."""
        v.joint_actions(self.action_sizes)
        return np.array(list(itertools.product(*(range(n) for n in self.action_sizes))), dtype=np.int64)

    def payoff_table(self, state: np.ndarray) -> np.ndarray:
        """The stage game at ``state``: profits ``[N, A_1, ..., A_N]``."""
        profits = self.stage_profits(state, self.all_profiles())
        return np.moveaxis(profits.reshape(*self.action_sizes, self.n_firms), -1, 0)

    def deviation_payoffs(self, state: np.ndarray, profile: np.ndarray) -> np.ndarray:
        """``[N, max A_i]``: firm ``i``'s profit from each of its actions when the others play
        ``profile`` (padded with ``-inf``): the unilateral deviations, ``N * A`` profiles instead
        of the whole stage game."""
        profile = np.asarray(profile, dtype=np.int64)
        width = max(self.action_sizes)
        out = np.full((self.n_firms, width), -np.inf)
        if self.aggregative:
            x = self.contribution_values(profile)
            for i in range(self.n_firms):
                out[i, : self.action_sizes[i]] = self.aggregate_profits(state, i, x.sum() - x[i : i + 1])[0]
            return out
        for i, size in enumerate(self.action_sizes):
            joint = np.repeat(profile[None], size, 0)
            joint[:, i] = np.arange(size)
            out[i, :size] = self.stage_profits(state, joint)[:, i]
        return out

    def firm_views(self) -> np.ndarray | None:
        """``[N, public_size]`` indices: firm ``i``'s view of the public observation, its own
        entries first, for markets whose firms are exchangeable (firm ``i`` at state ``s`` faces
        what firm 0 faces at ``s`` seen through view ``i``), so one network can hold every firm's
        Q (Nash-Q's ``share_firms``); None where they are not (the default)."""
        return None

    # ----- aggregative markets (aggregative = True) -----
    def contributions(self) -> np.ndarray:
        """``[N, max A_i]``: each firm's contribution :math:`g_i(a)` to its rivals' aggregate."""
        raise NotImplementedError

    def aggregate_profits(self, state: np.ndarray, firm: int, aggregate: np.ndarray) -> np.ndarray:
        """``[B, A_firm]``: ``firm``'s profit from each of its actions when its rivals' aggregate is
        ``aggregate`` ``[B]``."""
        raise NotImplementedError

    def contribution_values(self, profile: np.ndarray) -> np.ndarray:
        """``[..., N]`` contributions of joint action indices ``profile`` ``[..., N]``."""
        return self.contributions()[np.arange(self.n_firms), np.asarray(profile, dtype=np.int64)]

    def aggregate_knots(self, firm: int, count: int) -> np.ndarray:
        """Aggregate values at which a Q head holds ``firm``'s payoffs: every attainable value when
        all firms share one evenly spaced grid and contributions are the grid values (a sum of
        grid points is then a point of an evenly spaced grid), else ``count`` points spanning the
        attainable range evenly in :attr:`aggregate_transform`."""
        contributions = self.contributions()
        rows = [contributions[j, : self.action_sizes[j]] for j in range(self.n_firms)]
        rivals = [rows[j] for j in range(self.n_firms) if j != firm]
        low, high = sum(r.min() for r in rivals), sum(r.max() for r in rivals)
        steps = np.diff(rows[0])
        shared = all(np.array_equal(r, rows[0]) for r in rows) and len(steps) > 0 and np.allclose(steps, steps[0])
        if shared and self.aggregate_transform == "linear":
            return low + steps[0] * np.arange(len(rivals) * (len(rows[0]) - 1) + 1)
        if self.aggregate_transform == "log":
            return np.exp(np.linspace(np.log(low), np.log(high), count))
        return np.linspace(low, high, count)

    #: The coordinate in which a Q head interpolates between aggregate knots ("linear" or "log").
    aggregate_transform: ClassVar[str] = "linear"

    def aggregation(self, knots: int = 33):
        """The :class:`~nashrl.equilibrium.aggregative.Aggregation` of this market (torch, float64)."""
        import torch

        from nashrl.equilibrium.aggregative import Aggregation

        grid = np.stack([self.aggregate_knots(i, knots) for i in range(self.n_firms)])  # one count for all firms
        coordinate = np.log(grid) if self.aggregate_transform == "log" else grid
        return Aggregation(
            contributions=torch.as_tensor(self.contributions(), dtype=torch.float64),
            sizes=self.action_sizes,
            knots=torch.as_tensor(coordinate, dtype=torch.float64),
            transform=self.aggregate_transform,
        )

    def action_values(self, actions: np.ndarray) -> np.ndarray:
        """Economic values (quantities, prices, ...) of action indices ``[..., N]``."""
        actions = np.asarray(actions)
        return np.stack([self.grids[i][actions[..., i]] for i in range(self.n_firms)], axis=-1)

    def representative_states(self) -> list[np.ndarray]:
        """States whose stage games set the reward scale (and that theory reports on)."""
        return [self.initial_state(np.random.default_rng(0))]

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """The theory this market's learned play is compared with (rows, see
        :mod:`nashrl.theory.rows`). Default: the exact equilibria of the grid stage game at
        each representative state; markets with closed forms or an MPE override it."""
        from nashrl.theory.rows import grid_rows

        return grid_rows(self, selection)

    def finite_model(self):
        """``(states, transition(state_index, joint) -> distribution over states)`` when the state
        process is finite and known (enables the exact dynamic Nash gap), else None."""
        return None

    @property
    def has_payoff_table(self) -> bool:
        """Whether the stage game fits a joint table (:data:`~nashrl.markets.validation.MAX_JOINT_ACTIONS`);
        only aggregative markets are built without one, and work from deviation payoffs."""
        return np.prod([float(a) for a in self.action_sizes]) <= v.MAX_JOINT_ACTIONS

    def _reward_scale(self) -> float:
        if not self.has_payoff_table:
            # The largest profit over every own action and every rival aggregate a head can hold.
            scale = max(
                float(np.abs(self.aggregate_profits(s, i, self.aggregate_knots(i, 257))).max())
                for s in self.representative_states()
                for i in range(self.n_firms)
            )
        else:
            scale = max(float(np.abs(self.payoff_table(s)).max()) for s in self.representative_states())
        return scale if scale > 0 else 1.0

    # ----- PettingZoo API -----
    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> gym.spaces.Discrete:
        return self._action_spaces[agent]

    def rng_state(self) -> dict[str, Any]:
        """The state of the market's random generator (checkpointed with the env runners)."""
        return self._rng.bit_generator.state

    def resume_rng(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` at the next reset, instead of re-seeding (resuming a checkpoint)."""
        self._resume_state = state

    def reset(self, seed: int | None = None, options: dict | None = None):
        if self._resume_state is not None:  # a restored run continues the generator where the checkpoint left it
            self._rng.bit_generator.state = self._resume_state
            self._resume_state = None
        elif seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self.state_ = self.initial_state(self._rng)
        return self.observations(self.observe(self.state_).astype(np.float32)), {a: {} for a in self.agents}

    def observations(self, public: np.ndarray) -> dict[str, np.ndarray]:
        """Each firm's observation of the current period: the public one for every firm here;
        markets with private information (:mod:`~nashrl.markets.private_shocks`) append it."""
        return {a: public.copy() for a in self.possible_agents}

    def realised_profits(self, joint: np.ndarray) -> np.ndarray:
        """Profits ``[N]`` the firms earn this period for ``joint``: the stage profits here;
        markets with private payoff shocks add the realised shock of each firm's action."""
        return self.stage_profits(self.state_, joint[None])[0]

    def step(self, actions: dict[str, int]):
        if self.state_ is None or not self.agents:
            raise RuntimeError("step() called before reset() or after the episode ended")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions: expected one action per firm, missing {missing}")
        joint = np.array([int(actions[a]) for a in self.possible_agents], dtype=np.int64)
        profits = self.realised_profits(joint)
        self.state_ = self.transition(self.state_, joint, self._rng)
        self._t += 1
        observations = self.observations(self.observe(self.state_).astype(np.float32))
        done = self._t >= self.episode_length
        values = self.action_values(joint)
        agents = list(self.agents)
        rewards = {a: float(profits[i] / self.reward_scale) for i, a in enumerate(agents)}
        infos = {a: {"profit": float(profits[i]), "action_value": float(values[i])} for i, a in enumerate(agents)}
        terminations = {a: False for a in agents}
        truncations = {a: done for a in agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None


class RepeatedGameMarket(MarketEnv):
    """A market whose state is the last ``memory`` periods' joint actions (Calvano et al.).

    State: int array ``[memory, N]`` of action indices, oldest first, drawn uniformly at
    reset. Observation: those indices divided by ``A_i - 1``, flattened (``memory * N``).
    With ``memory: 0`` the state is constant (observation ``[0.0]``): the one-shot stage
    game repeated, whose only Markov perfect equilibria are its Nash equilibria, the
    setting in which learned play is compared with the static closed forms.
    """

    deterministic = True

    def __init__(self, n_firms: int, grids: list[np.ndarray], params: dict[str, Any]):
        self.memory = v.integer(params.get("memory", 1), "market.memory", minimum=0)
        super().__init__(n_firms, grids, params)

    @property
    def observation_size(self) -> int:
        return max(self.memory * self.n_firms, 1)

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, n, size=self.memory) for n in self.action_sizes], axis=1)

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.shift_memory(np.asarray(state)[None], np.asarray(actions)[None])[0]

    def shift_memory(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """States ``[K, memory, N]`` after joint actions ``[K, N]``: drop the oldest period, append these."""
        if self.memory == 0:
            return states
        return np.concatenate([states[:, 1:], actions[:, None]], axis=1)

    def transitions(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self._own(RepeatedGameMarket, "transition"):
            return super().transitions(states, actions, rng)
        return self.shift_memory(states, actions)

    def profits_at(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if not self._own(RepeatedGameMarket, "stage_profits"):
            return super().profits_at(states, actions)
        return self.price_or_quantity_profits(self.action_values(actions))

    def firm_views(self) -> np.ndarray | None:
        """Firm ``i`` sees every remembered period's actions rotated to start at its own,
        ``(a_i, a_{i+1}, ..., a_{i-1})``: valid when all firms share one grid and profits are
        equivariant under that rotation of firms (checked on 64 seeded random profiles), i.e.
        symmetric costs, demands and qualities."""
        if not self._own(RepeatedGameMarket, "observe", "observe_past", "stage_profits", "transition"):
            return None
        if any(not np.array_equal(g, self.grids[0]) for g in self.grids):
            return None
        profiles = np.random.default_rng(0).integers(0, len(self.grids[0]), size=(64, self.n_firms))
        values = self.action_values(profiles)
        shifted = np.roll(values, -1, axis=1)  # firm j takes firm j+1's action
        if not np.allclose(
            self.price_or_quantity_profits(shifted),
            np.roll(self.price_or_quantity_profits(values), -1, axis=1),
            rtol=1e-12,
            atol=1e-12,
        ):
            return None
        if self.memory == 0:
            return np.zeros((self.n_firms, 1), dtype=np.int64)
        firms = (np.arange(self.n_firms)[:, None] + np.arange(self.n_firms)[None, :]) % self.n_firms  # [i, j]
        periods = np.arange(self.memory)[:, None, None] * self.n_firms
        return (periods + firms[None]).transpose(1, 0, 2).reshape(self.n_firms, -1)

    def observe_all(self, states: np.ndarray) -> np.ndarray:
        if not self._own(RepeatedGameMarket, "observe", "observe_past"):
            return super().observe_all(states)
        return self.observe_past(states) if self.memory > 0 else np.zeros((len(states), 1))

    def observe_past(self, past: np.ndarray) -> np.ndarray:
        """Past action indices ``[..., memory, N]`` scaled to ``[0, 1]``, each ``[memory, N]`` flattened."""
        denom = np.maximum(np.array(self.action_sizes) - 1, 1)
        return (past / denom).reshape(*past.shape[:-2], -1)

    def observe(self, state: np.ndarray) -> np.ndarray:
        return self.observe_past(state) if self.memory > 0 else np.zeros(1)

    def price_or_quantity_profits(self, values: np.ndarray) -> np.ndarray:
        """Profits ``[..., N]`` as a function of action *values* (not indices)."""
        raise NotImplementedError

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return self.price_or_quantity_profits(self.action_values(actions))
