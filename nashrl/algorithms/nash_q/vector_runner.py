r"""The vectorised env runner of Deep Nash-Q: K market copies, one forward and one solve per period.

RLlib's ``MultiAgentEnvRunner`` steps each env copy through Python dicts, its connector
pipelines and a ``MultiAgentEpisode`` per copy, and the module then acts row by row (one row
per firm). Nash-Q needs none of that per row: the firms of a market share one public state, and
the stage game there is solved once for all of them. :class:`VectorEnvRunner` keeps RLlib's
runner (spaces, module, weights sync, checkpoints, metrics, fault tolerance, placement on a Ray
cluster) and replaces its sampling loop:

1. ``K = num_envs_per_env_runner`` copies of the market live in one
   :class:`~nashrl.markets.vector.VectorMarket` (array states, the market's own economics);
2. each period the module maps the ``K`` public states to their stage games in one batched
   forward pass and solves them in one batched call
   (:meth:`~nashrl.algorithms.nash_q.module.NashQTorchRLModule.act_joint`), then every firm
   draws its action (exploration as configured);
3. the copies step as one array operation; the joint transitions go back as aligned arrays
   (the replay's layout, :class:`~nashrl.algorithms.nash_q.replay.JointTransitionBuffer`), so
   no episode is converted anywhere.

Episode metrics (return, length, each firm's mean profit per period) are logged as RLlib's
runner logs them.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
    SAMPLE_TIMER,
)

from nashrl.markets.vector import VectorMarket
from nashrl.startup import eager_deterministic_flag

#: Episodes each firm's mean profit per period is averaged over (as RLlib smooths returns).
PROFIT_WINDOW = 20


class VectorEnvRunner(MultiAgentEnvRunner):
    """``sample()`` returns joint transitions ``{obs, actions, rewards, next_obs, terminated,
    own_shocks}`` (arrays over ``periods x K`` rows, public observations) instead of episodes."""

    def __init__(self, *args, **kwargs) -> None:
        with eager_deterministic_flag():  # RLlib seeds torch here (nashrl.startup)
            super().__init__(*args, **kwargs)

    def make_env(self) -> None:
        # RLlib's env: one copy, for spaces, checks and callbacks; the K copies stepped are a VectorMarket.
        copies = int(self.config.num_envs_per_env_runner)
        self.config.num_envs_per_env_runner = 1
        try:
            super().make_env()
        finally:
            self.config.num_envs_per_env_runner = copies
        self.vector = VectorMarket(self.env.envs[0].unwrapped.market, copies, seed=self._seed)
        agents = self.vector.market.possible_agents
        self._returns = np.zeros((copies, len(agents)))
        self._profits = np.zeros((copies, len(agents)))
        self._started = time.perf_counter()

    @property
    def market(self):
        return self.vector.market

    def sample(
        self,
        *,
        num_timesteps: int | None = None,
        num_episodes: int | None = None,
        explore: bool | None = None,
        random_actions: bool = False,
        force_reset: bool = False,
        **kwargs: Any,
    ) -> dict[str, np.ndarray]:
        """At least ``num_timesteps`` env steps (default ``rollout_fragment_length x K``), whole
        periods of all ``K`` copies; ``num_episodes``: that many whole episodes per copy."""
        if num_timesteps is not None and num_episodes is not None:
            raise ValueError("sample: give num_timesteps or num_episodes, not both")
        copies = self.vector.copies
        if force_reset or num_episodes is not None:
            self.vector.needs_reset = True
            self._returns[:] = 0.0
            self._profits[:] = 0.0
        if num_episodes is not None:
            periods = int(num_episodes) * self.market.episode_length
        else:
            steps = num_timesteps or self.config.get_rollout_fragment_length(self.worker_index) * copies
            periods = max(1, math.ceil(steps / copies))
        explore = self.config.explore if explore is None else explore
        with self.metrics.log_time(SAMPLE_TIMER):
            out = self._play(periods, explore, random_actions)
        return out

    def _play(self, periods: int, explore: bool, random_actions: bool) -> dict[str, np.ndarray]:
        vector, market = self.vector, self.vector.market
        copies, n = vector.copies, market.n_firms
        rows, width = periods * copies, market.public_size
        out = {
            "obs": np.zeros((rows, width), dtype=np.float32),
            "actions": np.zeros((rows, n), dtype=np.int64),
            "rewards": np.zeros((rows, n), dtype=np.float32),
            "next_obs": np.zeros((rows, width), dtype=np.float32),
            "terminated": np.zeros(rows, dtype=np.float32),  # markets end by truncation only
            "own_shocks": np.zeros((rows, n), dtype=np.float32),
        }
        module = next(iter(self.module.values())) if self.module is not None else None  # Nash-Q's one module
        runners = self.config.num_env_runners or 1
        sizes = np.array(market.action_sizes)
        for p in range(periods):
            public = vector.public()
            shocks = vector.own_shocks()
            if random_actions or module is None:
                joint = (vector.rng.random((copies, n)) * sizes).astype(np.int64)
            else:
                # RLlib's convention: global env steps ~ this runner's count x the number of runners.
                t = (self.num_env_steps_sampled_lifetime // runners + p * copies) * runners
                joint = module.act_joint(
                    torch.from_numpy(public),
                    None if shocks is None else torch.from_numpy(shocks),
                    explore=explore,
                    t=t,
                ).numpy()
            step = vector.step(joint)
            block = slice(p * copies, (p + 1) * copies)
            out["obs"][block] = public
            out["actions"][block] = joint
            out["rewards"][block] = step.rewards
            out["next_obs"][block] = step.next_public
            out["own_shocks"][block] = step.own_shocks
            self._returns += step.rewards
            self._profits += step.profits
            if step.truncated:
                self._end_episodes()
        self._count_steps(rows)
        return out

    def _count_steps(self, steps: int) -> None:
        log = self.metrics.log_value
        log(NUM_ENV_STEPS_SAMPLED, steps, reduce="sum")
        log(NUM_ENV_STEPS_SAMPLED_LIFETIME, steps, reduce="lifetime_sum", with_throughput=True)
        for agent in self.market.possible_agents:
            log((NUM_AGENT_STEPS_SAMPLED, agent), steps, reduce="sum")
            log((NUM_AGENT_STEPS_SAMPLED_LIFETIME, agent), steps, reduce="lifetime_sum")
        agent_steps = steps * self.market.n_firms
        for module_id in self.module.keys() if self.module is not None else ():
            log((NUM_MODULE_STEPS_SAMPLED, module_id), agent_steps, reduce="sum")
            log((NUM_MODULE_STEPS_SAMPLED_LIFETIME, module_id), agent_steps, reduce="lifetime_sum")
        self.num_env_steps_sampled_lifetime += steps

    def _end_episodes(self) -> None:
        """Every copy's episode ended: log its return, length and each firm's mean profit per period."""
        length = self.market.episode_length
        agents = self.market.possible_agents
        seconds = time.perf_counter() - self._started  # the copies play their episodes side by side
        modules = list(self.module.keys()) if self.module is not None else []
        for returns, profits in zip(self._returns, self._profits):
            per_agent = {a: float(r) for a, r in zip(agents, returns)}
            self._log_episode_metrics(
                length,
                float(returns.sum()),
                seconds,
                per_agent,
                {m: float(returns.sum()) for m in modules},
                dict.fromkeys(agents, length),
            )
            for agent, profit in zip(agents, profits):
                self.metrics.log_value(f"mean_profit/{agent}", float(profit / length), window=PROFIT_WINDOW)
        self.metrics.log_value(NUM_EPISODES, len(self._returns), reduce="sum")
        self.metrics.log_value(NUM_EPISODES_LIFETIME, len(self._returns), reduce="lifetime_sum")
        self._returns[:] = 0.0
        self._profits[:] = 0.0
        self._started = time.perf_counter()

    def sample_with_metrics(self) -> tuple[dict[str, np.ndarray], Any]:
        """One ``sample()`` and this runner's reduced metrics, in one remote call."""
        return self.sample(), self.get_metrics()
