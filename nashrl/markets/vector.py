r"""K copies of a market stepped as one array operation (the vectorised env runner's market).

:class:`VectorMarket` holds the states ``[K, ...]`` of ``K`` independent copies of one
:class:`~nashrl.markets.base.MarketEnv` and steps them all with the market's own economics,
through its K-copy methods (:meth:`~nashrl.markets.base.MarketEnv.transitions`,
:meth:`~nashrl.markets.base.MarketEnv.profits_at`,
:meth:`~nashrl.markets.base.MarketEnv.observe_all`, ...). Markets written with array code
(repeated games: Cournot, Bertrand, Calvano's logit; games with private shocks) step all
copies in one call; any other market works unchanged, through a loop over its single-copy
methods. There is one implementation of each market's economics: the single-copy PettingZoo
API (what users and tests step) calls the same functions.

Episodes follow the PettingZoo env: every copy is truncated after ``episode_length`` periods
(all copies at once, since they start together) and starts again from a fresh initial state
at the next step; the transition into truncation keeps its true next observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nashrl.markets.base import MarketEnv


@dataclass
class VectorStep:
    """What one step of ``K`` copies returns (arrays over copies)."""

    rewards: np.ndarray  # [K, N] profits / reward_scale, realised shocks included
    profits: np.ndarray  # [K, N] in money
    own_shocks: np.ndarray  # [K, N] each firm's realised shock of its action, reward units (0 without shocks)
    next_public: np.ndarray  # [K, public_size] observation after the step (before any reset)
    truncated: bool  # the episode of every copy ended with this step


class VectorMarket:
    """``copies`` independent copies of ``market`` (its parameters; its own state is not used)."""

    def __init__(self, market: MarketEnv, copies: int, seed: int | None = None):
        if copies < 1:
            raise ValueError(f"copies: expected an integer >= 1, got {copies}")
        self.market, self.copies = market, int(copies)
        self.rng = np.random.default_rng(seed)
        self.states: np.ndarray | None = None
        self.shocks: np.ndarray | None = None  # [K, N, A] this period's private shocks, in money
        self.t = 0
        self.needs_reset = True

    # ----- state -----
    def reset(self) -> None:
        self.states = self.market.initial_states(self.rng, self.copies)
        self.t = 0
        self.needs_reset = False
        self._draw_shocks()

    def _draw_shocks(self) -> None:
        if self.market.private_shocks:
            self.shocks = self.market.draw_shocks(self.rng, (self.copies, self.market.n_firms))

    def public(self) -> np.ndarray:
        """``[K, public_size]`` float32 public observations of the current states."""
        if self.needs_reset:
            self.reset()
        obs = self.market.observe_all(self.states)
        return np.asarray(obs, dtype=np.float32).reshape(self.copies, -1)[:, : self.market.public_size]

    def own_shocks(self) -> np.ndarray | None:
        """``[K, N, A]`` each firm's private shocks this period in reward units (None without shocks)."""
        if self.needs_reset:
            self.reset()
        return None if self.shocks is None else (self.shocks / self.market.reward_scale).astype(np.float32)

    # ----- dynamics -----
    def step(self, joint: np.ndarray) -> VectorStep:
        """Play joint actions ``[K, N]`` in every copy."""
        joint = np.asarray(joint, dtype=np.int64)
        market = self.market
        if joint.shape != (self.copies, market.n_firms):
            raise ValueError(f"joint: expected shape {(self.copies, market.n_firms)}, got {joint.shape}")
        if self.needs_reset:
            self.reset()
        profits = np.asarray(market.profits_at(self.states, joint), dtype=np.float64)
        chosen = np.zeros(joint.shape)
        if self.shocks is not None:
            chosen = np.take_along_axis(self.shocks, joint[..., None], axis=2)[..., 0]
            profits = profits + chosen
        self.states = market.transitions(self.states, joint, self.rng)
        self.t += 1
        truncated = self.t >= market.episode_length
        self._draw_shocks()
        next_public = self.public()
        if truncated:
            self.needs_reset = True  # a fresh start at the next step (lazily: a checkpoint here resumes exactly)
        scale = market.reward_scale
        return VectorStep(
            rewards=(profits / scale).astype(np.float32),
            profits=profits,
            own_shocks=(chosen / scale).astype(np.float32),
            next_public=next_public,
            truncated=truncated,
        )

    # ----- checkpoints -----
    def rng_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def resume_rng(self, state: dict[str, Any]) -> None:
        """Continue from the generator state ``state`` with fresh episodes (at an episode boundary
        this is exactly where a checkpointed run was)."""
        self.rng.bit_generator.state = state
        self.needs_reset = True
