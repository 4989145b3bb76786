"""Greedy joint policies of trained agents: what evaluation and the final summary play.

A policy maps the market's current state (and its public observation) to one action
index per firm, greedily (no exploration).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class JointPolicy(Protocol):
    def act(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray: ...


class NashQPolicy:
    """Every firm plays the most likely action of its part of the selected stage equilibrium (with
    an independent head: of its own greedy or logit choice)."""

    def __init__(self, module):
        self.module = module

    def act(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.module.policy_q_values(torch.as_tensor(obs, dtype=torch.float32)[None])
        sol = self.module.solve_stage_games(q)
        return np.array([int(s[0].argmax()) for s in sol.strategies])

    def choice_probabilities(self, public_obs: np.ndarray) -> list[np.ndarray]:
        """Every firm's equilibrium strategy at each public observation ``[S, d]``: ``[S, A_i]`` each
        (with private shocks and the logit concept, the firm's exact conditional choice probabilities)."""
        with torch.no_grad():
            q = self.module.policy_q_values(torch.as_tensor(public_obs, dtype=torch.float32))
            return [s.cpu().numpy() for s in self.module.choice_probabilities(q)]

    def firm_actions(self, firm: int, obs: np.ndarray) -> np.ndarray:
        """Firm ``firm``'s greedy actions at a batch of its own observations ``[B, d]``."""
        from nashrl.algorithms.nash_q.connectors import FIRM_INDEX

        batch = {"obs": torch.as_tensor(obs, dtype=torch.float32), FIRM_INDEX: torch.full((len(obs),), firm)}
        with torch.no_grad():
            return self.module.forward_inference(batch)["actions"].cpu().numpy()


class IndependentPolicy:
    """Each firm's own RLModule (independent learners), greedy."""

    def __init__(self, modules: dict[str, object], agents: list[str]):
        self.modules, self.agents = modules, agents

    def act(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray:
        batch = {"obs": torch.as_tensor(obs, dtype=torch.float32)[None]}
        with torch.no_grad():
            return np.array([int(self.modules[a].forward_inference(batch)["actions"][0]) for a in self.agents])

    def firm_actions(self, firm: int, obs: np.ndarray) -> np.ndarray:
        """Firm ``firm``'s greedy actions at a batch of its own observations ``[B, d]``."""
        batch = {"obs": torch.as_tensor(obs, dtype=torch.float32)}
        with torch.no_grad():
            return self.modules[self.agents[firm]].forward_inference(batch)["actions"].cpu().numpy()


class TabularPolicy:
    """Greedy play from tabular values; ``choose(state_index) -> joint action``."""

    def __init__(self, choose, encode):
        self.choose, self.encode = choose, encode

    def act(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray:
        return np.asarray(self.choose(self.encode(state)))
