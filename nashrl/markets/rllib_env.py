"""RLlib ``MultiAgentEnv`` around a market, keeping the firms in their order.

(RLlib's own ``ParallelPettingZooEnv`` builds its agent list from a set, which loses
``firm_0, firm_1, ...`` order; Nash-Q's joint action axes rely on that order.)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from nashrl.markets import make_market


class MarketMultiAgentEnv(MultiAgentEnv):
    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__()
        self.market = make_market(dict(config or {}))
        self.possible_agents = list(self.market.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {a: self.market.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: self.market.action_space(a) for a in self.possible_agents}
        self.observation_space = gym.spaces.Dict(self.observation_spaces)
        self.action_space = gym.spaces.Dict(self.action_spaces)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = self.market.reset(seed=seed, options=options)
        self.agents = list(self.market.agents)
        return obs, infos

    def step(self, action_dict):
        obs, rewards, terms, truncs, infos = self.market.step(action_dict)
        self.agents = list(self.market.agents)
        terms["__all__"] = all(terms.values())
        truncs["__all__"] = all(truncs.values())
        return obs, rewards, terms, truncs, infos
