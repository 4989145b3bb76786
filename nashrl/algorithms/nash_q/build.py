"""Build a ready ``NashQConfig`` for a market: env, firm-to-module mapping, module spec, learner device."""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from nashrl.algorithms.nash_q.algorithm import MODULE_ID
from nashrl.algorithms.nash_q.config import NashQConfig
from nashrl.algorithms.nash_q.connectors import AddFirmIndex
from nashrl.algorithms.nash_q.module import NashQTorchRLModule
from nashrl.markets import make_market, register_rllib_envs, rllib_env_name


def nash_q_config(market_config: dict[str, Any], training: dict[str, Any], resources: dict[str, Any]) -> NashQConfig:
    """``training``: NashQConfig.training() keys; ``resources``: seed, num_env_runners, num_envs_per_env_runner."""
    register_rllib_envs()
    market = make_market(market_config)
    agent = market.possible_agents[0]
    spec = RLModuleSpec(
        module_class=NashQTorchRLModule,
        observation_space=market.observation_space(agent),
        action_space=market.action_space(agent),
        model_config={"action_sizes": list(market.action_sizes)},
    )
    return (
        NashQConfig()
        .environment(rllib_env_name(market.market_type), env_config=dict(market_config))
        .env_runners(
            num_env_runners=resources.get("num_env_runners", 1),
            num_envs_per_env_runner=resources.get("num_envs_per_env_runner", 1),
            env_to_module_connector=lambda env, spaces=None, device=None: AddFirmIndex(),
        )
        .multi_agent(policies={MODULE_ID}, policy_mapping_fn=lambda agent_id, *args, **kwargs: MODULE_ID)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={MODULE_ID: spec}))
        .learners(num_learners=0, num_gpus_per_learner=1 if torch.cuda.is_available() else 0)
        .training(**training)
        .debugging(seed=resources.get("seed", 0))
    )
