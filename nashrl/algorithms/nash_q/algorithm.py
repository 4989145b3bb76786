"""``NashQ``: the RLlib ``Algorithm`` that runs Deep Nash-Q.

One iteration (``training_step``), CleanRL-plain:

1. env runners play the market with the current module (equilibrium play + exploration)
   and return ``MultiAgentEpisode`` chunks;
2. their joint transitions go into :class:`~nashrl.algorithms.nash_q.replay.JointTransitionBuffer`;
3. once ``num_steps_sampled_before_learning_starts`` env steps were sampled, the learner
   takes ``updates_per_iteration`` gradient steps on batches of ``train_batch_size``
   (equilibrium targets computed on the learner's device);
4. the new weights go to the env runners.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from nashrl.algorithms.nash_q.config import NashQConfig
from nashrl.algorithms.nash_q.replay import JointTransitionBuffer

MODULE_ID = "nash_q"


def to_train_batch(sample: dict[str, np.ndarray]) -> MultiAgentBatch:
    """A joint-replay sample as the learner's ``MultiAgentBatch`` (RLlib column names)."""
    columns = {
        Columns.OBS: sample["obs"],
        Columns.ACTIONS: sample["actions"],
        Columns.REWARDS: sample["rewards"],
        Columns.NEXT_OBS: sample["next_obs"],
        Columns.TERMINATEDS: sample["terminated"],
    }
    return MultiAgentBatch({MODULE_ID: SampleBatch(columns)}, env_steps=len(sample["obs"]))


class NashQ(Algorithm):
    @classmethod
    def get_default_config(cls) -> NashQConfig:
        return NashQConfig()

    def setup(self, config: NashQConfig) -> None:
        super().setup(config)
        spec = self.config.rl_module_spec.rl_module_specs[MODULE_ID]
        obs_dim = int(np.prod(spec.observation_space.shape))
        n_firms = len(spec.model_config["action_sizes"])
        self.replay = JointTransitionBuffer(self.config.replay_capacity, n_firms, obs_dim, seed=self.config.seed)

    def training_step(self) -> None:
        episodes, runner_metrics = synchronous_parallel_sample(
            worker_set=self.env_runner_group,
            concat=True,
            sample_timeout_s=self.config.sample_timeout_s,
            _uses_new_env_runners=True,
            _return_metrics=True,
        )
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        added = self.replay.add_episodes(episodes)
        self.metrics.log_value("replay_transitions_added", added, reduce="sum")
        self.metrics.log_value("replay_size", len(self.replay), window=1)

        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if sampled < self.config.num_steps_sampled_before_learning_starts or len(self.replay) == 0:
            return
        for _ in range(self.config.updates_per_iteration):
            train_batch = to_train_batch(self.replay.sample(self.config.train_batch_size))
            results = self.learner_group.update(batch=train_batch, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled})
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.learner_group, policies=[MODULE_ID], inference_only=True
        )

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        if store_replay(self.config, self.replay):
            state["joint_replay"] = self.replay.get_state()
        # Exploration randomness of every env runner (RLlib checkpoints weights and counters, not RNGs).
        state["env_runner_rng"] = self.env_runner_group.foreach_env_runner(
            _rng_state, local_env_runner=self.env_runner_group.num_remote_env_runners() == 0
        )
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if "joint_replay" in state:
            self.replay.set_state(state["joint_replay"])
        saved = {s["worker_index"]: s for s in state.get("env_runner_rng", [])}
        if saved:
            self.env_runner_group.foreach_env_runner(
                lambda runner: _set_rng_state(runner, saved.get(runner.worker_index)),
                local_env_runner=self.env_runner_group.num_remote_env_runners() == 0,
            )


#: Joint replay up to this size (bytes) goes into checkpoints by default.
REPLAY_IN_CHECKPOINT_BYTES = 256 * 2**20


def store_replay(config, replay) -> bool:
    """``store_buffer_in_checkpoints``: true, false, or "auto" (when the filled buffer is under 256 MiB)."""
    if config.store_buffer_in_checkpoints == "auto":
        used = sum(x[: len(replay)].nbytes for x in replay.data.values())
        return used <= REPLAY_IN_CHECKPOINT_BYTES
    return bool(config.store_buffer_in_checkpoints)


def _rng_state(runner) -> dict[str, Any]:
    import random

    return {
        "worker_index": runner.worker_index,
        "torch": torch.random.get_rng_state().numpy(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "markets": [market.rng_state() for market in _markets(runner)],
    }


def _markets(runner) -> list:
    """The market of every env copy of an env runner (none where the runner has no env)."""
    envs = getattr(getattr(runner, "env", None), "envs", None) or []
    return [env.unwrapped.market for env in envs]


def _set_rng_state(runner, state: dict[str, Any] | None) -> None:
    import random

    if state is None:
        return
    torch.random.set_rng_state(torch.as_tensor(state["torch"]))
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for market, rng in zip(_markets(runner), state.get("markets", [])):
        market.resume_rng(rng)
