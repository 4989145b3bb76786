r"""Replay of *joint* transitions :math:`(s, a_1..a_N, r_1..r_N, s', \text{terminated})`.

Nash-Q's target for firm :math:`i` needs every firm's action (to index
:math:`Q_i(s, a)`) and every firm's reward, from the same environment step. RLlib's
multi-agent episode buffers sample per module (even the ``synchronized`` mode returns
rows grouped per module), so sampled ``MultiAgentEpisode`` chunks are converted here,
once, into aligned numpy arrays; sampling a batch is then one vectorised index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from nashrl.algorithms.nash_q.connectors import firm_index

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")


class JointTransitionBuffer:
    """A ring buffer of joint transitions with uniform sampling."""

    def __init__(self, capacity: int, n_firms: int, obs_dim: int, seed: int | None = None):
        self.capacity, self.n_firms = int(capacity), int(n_firms)
        self.data = {
            "obs": np.zeros((self.capacity, obs_dim), dtype=np.float32),
            "actions": np.zeros((self.capacity, n_firms), dtype=np.int64),
            "rewards": np.zeros((self.capacity, n_firms), dtype=np.float32),
            "next_obs": np.zeros((self.capacity, obs_dim), dtype=np.float32),
            "terminated": np.zeros(self.capacity, dtype=np.float32),
        }
        self.size = 0
        self.cursor = 0
        self.added = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: dict[str, np.ndarray]) -> None:
        n = len(transitions["obs"])
        if n > self.capacity:  # keep the newest
            transitions = {k: x[-self.capacity :] for k, x in transitions.items()}
            n = self.capacity
        idx = (self.cursor + np.arange(n)) % self.capacity
        for key in FIELDS:
            self.data[key][idx] = transitions[key]
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self.added += n

    def add_episodes(self, episodes: Iterable[Any]) -> int:
        """Add every complete joint step of RLlib ``MultiAgentEpisode`` chunks; returns the count."""
        count = 0
        for episode in episodes:
            transitions = joint_transitions(episode, self.n_firms)
            if transitions is not None:
                self.add(transitions)
                count += len(transitions["obs"])
        return count

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        if self.size == 0:
            raise ValueError("replay buffer is empty")
        idx = self.rng.integers(0, self.size, size=batch_size)
        return {key: self.data[key][idx] for key in FIELDS}

    def get_state(self) -> dict[str, Any]:
        return {
            "data": {k: x[: self.size].copy() for k, x in self.data.items()},
            "cursor": self.cursor,
            "added": self.added,
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        size = len(state["data"]["obs"])
        for k in FIELDS:
            self.data[k][:size] = state["data"][k]
        self.size, self.cursor, self.added = size, state["cursor"], state["added"]
        self.rng.bit_generator.state = state["rng"]


def joint_transitions(episode: Any, n_firms: int) -> dict[str, np.ndarray] | None:
    """Aligned arrays of one ``MultiAgentEpisode`` chunk (all firms act every step)."""
    by_firm = {firm_index(aid): sa for aid, sa in episode.agent_episodes.items()}
    if sorted(by_firm) != list(range(n_firms)):
        raise ValueError(f"episode: expected firms 0..{n_firms - 1}, got agent ids {sorted(episode.agent_episodes)}")
    length = min(len(sa) for sa in by_firm.values())
    if length == 0:
        return None
    first = by_firm[0]
    observations = np.asarray(first.get_observations(slice(0, length + 1)), dtype=np.float32)
    actions = np.stack([np.asarray(by_firm[i].get_actions(slice(0, length))) for i in range(n_firms)], 1)
    rewards = np.stack([np.asarray(by_firm[i].get_rewards(slice(0, length))) for i in range(n_firms)], 1)
    terminated = np.zeros(length, dtype=np.float32)
    if first.is_terminated and len(first) == length:
        terminated[-1] = 1.0
    return {
        "obs": observations[:-1].reshape(length, -1),
        "actions": actions.astype(np.int64),
        "rewards": rewards.astype(np.float32),
        "next_obs": observations[1:].reshape(length, -1),
        "terminated": terminated,
    }
