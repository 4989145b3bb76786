r"""Replay of *joint* transitions :math:`(s, a_1..a_N, r_1..r_N, s', \text{terminated})`.

Nash-Q's target for firm :math:`i` needs every firm's action (to index
:math:`Q_i(s, a)`) and every firm's reward, from the same environment step. RLlib's
multi-agent episode buffers sample per module (even the ``synchronized`` mode returns
rows grouped per module), so sampled ``MultiAgentEpisode`` chunks are converted here,
once, into aligned numpy arrays; sampling a batch is then one vectorised index.

In markets with private shocks (:mod:`nashrl.markets.private_shocks`) each firm's reward holds
the realised shock of its chosen action, which it saw in its own observation; the buffer keeps
those shocks (``own_shocks``, reward units) so that soft Nash-Q can learn shock-free choice
values from :math:`r_i - \varepsilon_i(a_i)` (see :mod:`nashrl.algorithms.nash_q.learner`).

With ``alpha > 0`` sampling is prioritised by the transitions' last TD errors
(:mod:`nashrl.algorithms.nash_q.priorities`): a sample then also holds the rows' replay
``indices`` and importance-sampling ``weights``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from ray.rllib.core.columns import Columns

from nashrl.algorithms.nash_q.connectors import firm_index
from nashrl.algorithms.nash_q.priorities import SumTree

#: Each firm's realised shock of its chosen action (private-shock markets; zero otherwise).
OWN_SHOCKS = "own_shocks"
#: Prioritised replay's importance-sampling weights of a sample's rows.
WEIGHTS = "weights"
FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", OWN_SHOCKS)
#: The learner's column name of each field (RLlib's names where RLlib has one).
TRAIN_COLUMNS = {
    "obs": Columns.OBS,
    "actions": Columns.ACTIONS,
    "rewards": Columns.REWARDS,
    "next_obs": Columns.NEXT_OBS,
    "terminated": Columns.TERMINATEDS,
    OWN_SHOCKS: OWN_SHOCKS,
    WEIGHTS: WEIGHTS,
}
#: A prioritised sample's rows in the replay (for :meth:`JointTransitionBuffer.update_priorities`).
INDICES = "indices"


class JointTransitionBuffer:
    """A ring buffer of joint transitions, sampled uniformly (``alpha`` 0) or in proportion to
    their priorities to the power ``alpha`` (prioritised replay)."""

    def __init__(
        self,
        capacity: int,
        n_firms: int,
        obs_dim: int,
        seed: int | None = None,
        public_size: int | None = None,
        alpha: float = 0.0,
        priority_epsilon: float = 1e-6,
    ):
        """``public_size``: with private shocks, where the public part of an observation ends (the
        firm's shocks follow it; only the public part is stored, all the network reads); None: no shocks.
        ``alpha``, ``priority_epsilon``: prioritised replay's exponent and the constant added to
        |TD error| (see :mod:`~nashrl.algorithms.nash_q.priorities`); alpha 0: uniform."""
        self.capacity, self.n_firms = int(capacity), int(n_firms)
        self.public_size = public_size
        obs_dim = public_size if public_size is not None else obs_dim
        self.data = {
            "obs": np.zeros((self.capacity, obs_dim), dtype=np.float32),
            "actions": np.zeros((self.capacity, n_firms), dtype=np.int64),
            "rewards": np.zeros((self.capacity, n_firms), dtype=np.float32),
            "next_obs": np.zeros((self.capacity, obs_dim), dtype=np.float32),
            "terminated": np.zeros(self.capacity, dtype=np.float32),
            "own_shocks": np.zeros((self.capacity, n_firms), dtype=np.float32),
        }
        self.size = 0
        self.cursor = 0
        self.added = 0
        self.rng = np.random.default_rng(seed)
        if not (np.isfinite(alpha) and alpha >= 0 and np.isfinite(priority_epsilon) and priority_epsilon > 0):
            raise ValueError(f"replay: expected alpha >= 0 and priority_epsilon > 0, got {alpha}, {priority_epsilon}")
        self.alpha, self.priority_epsilon = float(alpha), float(priority_epsilon)
        self.priorities = SumTree(self.capacity) if self.alpha > 0 else None
        self.max_priority = 1.0

    @property
    def prioritized(self) -> bool:
        return self.priorities is not None

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: dict[str, np.ndarray]) -> None:
        n = len(transitions["obs"])
        if n > self.capacity:  # keep the newest
            transitions = {k: x[-self.capacity :] for k, x in transitions.items()}
            n = self.capacity
        idx = (self.cursor + np.arange(n)) % self.capacity
        for key in FIELDS:
            self.data[key][idx] = transitions[key] if key in transitions else 0  # (own_shocks: optional)
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self.added += n
        if self.priorities is not None:  # new transitions: the largest priority so far
            self.priorities.update(idx, self.max_priority**self.alpha)

    def add_sample(self, sample: dict[str, np.ndarray] | Iterable[Any]) -> int:
        """Add an env runner's sample: joint arrays (the vector runner's) or RLlib episodes; returns the count."""
        if isinstance(sample, dict):
            self.add(sample)
            return len(sample["obs"])
        return self.add_episodes(sample)

    def add_episodes(self, episodes: Iterable[Any]) -> int:
        """Add every complete joint step of RLlib ``MultiAgentEpisode`` chunks; returns the count."""
        count = 0
        for episode in episodes:
            transitions = joint_transitions(episode, self.n_firms, self.public_size)
            if transitions is not None:
                self.add(transitions)
                count += len(transitions["obs"])
        return count

    def sample(self, batch_size: int, beta: float = 0.4) -> dict[str, np.ndarray]:
        """``batch_size`` rows drawn with replacement; prioritised: with their ``indices`` and
        importance-sampling ``weights`` for exponent ``beta``."""
        if self.size == 0:
            raise ValueError("replay buffer is empty")
        if self.priorities is None:
            idx = self.rng.integers(0, self.size, size=batch_size)
            return {key: self.data[key][idx] for key in FIELDS}
        idx = self.priorities.sample(batch_size, self.size, self.rng)
        probability = self.priorities.values(idx) / self.priorities.total
        weights = (self.size * probability) ** -float(beta)
        sample = {key: self.data[key][idx] for key in FIELDS}
        sample[WEIGHTS] = (weights / weights.max()).astype(np.float32)
        sample[INDICES] = idx
        return sample

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        r"""Priorities :math:`(|\delta| + \epsilon)^\alpha` of the rows ``indices`` from their new
        absolute TD errors (finite, one per row)."""
        if self.priorities is None:
            raise ValueError("update_priorities: the replay is not prioritised (alpha 0)")
        td_errors = np.abs(np.asarray(td_errors, dtype=np.float64))
        if td_errors.shape != np.shape(indices) or not np.all(np.isfinite(td_errors)):
            raise ValueError(f"update_priorities: expected {np.shape(indices)} finite TD errors, got {td_errors.shape}")
        priority = td_errors + self.priority_epsilon
        self.max_priority = max(self.max_priority, float(priority.max(initial=0.0)))
        self.priorities.update(indices, priority**self.alpha)

    def get_state(self) -> dict[str, Any]:
        return {
            "data": {k: x[: self.size].copy() for k, x in self.data.items()},
            "cursor": self.cursor,
            "added": self.added,
            "rng": self.rng.bit_generator.state,
            **(
                {"priorities": self.priorities.values(np.arange(self.size)), "max_priority": self.max_priority}
                if self.priorities is not None
                else {}
            ),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        size = len(state["data"]["obs"])
        for k in FIELDS:
            if k in state["data"]:  # (checkpoints before own_shocks existed: no shocks)
                stored = state["data"][k]
                if k in ("obs", "next_obs"):  # (older checkpoints kept firm 0's shocks after the public part)
                    stored = stored[:, : self.data[k].shape[1]]
                self.data[k][:size] = stored
        self.size, self.cursor, self.added = size, state["cursor"], state["added"]
        self.rng.bit_generator.state = state["rng"]
        if self.priorities is not None:  # (a checkpoint of a uniform replay: every row at priority 1)
            self.priorities = SumTree(self.capacity)
            self.priorities.update(np.arange(size), state.get("priorities", np.ones(size)))
            self.max_priority = float(state.get("max_priority", 1.0))


def joint_transitions(episode: Any, n_firms: int, public_size: int | None = None) -> dict[str, np.ndarray] | None:
    """Aligned arrays of one ``MultiAgentEpisode`` chunk (all firms act every step); with
    ``public_size``, each firm's realised shock of its chosen action from its own observation."""
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
    own_shocks = np.zeros((length, n_firms), dtype=np.float32)
    if public_size is not None:
        for i in range(n_firms):
            seen = np.asarray(by_firm[i].get_observations(slice(0, length)), dtype=np.float32).reshape(length, -1)
            own_shocks[:, i] = seen[np.arange(length), public_size + actions[:, i].astype(np.int64)]
    observations = observations.reshape(length + 1, -1)[:, :public_size]  # (public_size None: all of it)
    return {
        "obs": observations[:-1],
        "actions": actions.astype(np.int64),
        "rewards": rewards.astype(np.float32),
        "next_obs": observations[1:],
        "terminated": terminated,
        "own_shocks": own_shocks,
    }
