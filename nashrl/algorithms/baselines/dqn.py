"""Independent learners with RLlib's own DQN: each firm its own module and Q over its own actions.

Each firm treats its rivals as part of the environment (no equilibrium reasoning);
replay is RLlib's ``MultiAgentEpisodeReplayBuffer`` (the single-agent episode buffers
do not take multi-agent episodes).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from nashrl.markets import make_market, register_rllib_envs, rllib_env_name
from nashrl.schema import DQNSettings


def dqn_config(market_config: dict[str, Any], settings: dict[str, Any], resources: dict[str, Any]) -> DQNConfig:
    register_rllib_envs()
    s = DQNSettings(**settings).model_dump(warnings=False)  # typed, with the baseline's defaults
    market = make_market(market_config)
    agents = list(market.possible_agents)
    specs = {
        a: RLModuleSpec(observation_space=market.observation_space(a), action_space=market.action_space(a))
        for a in agents
    }
    training = {
        "lr": [tuple(p) for p in s["lr"]] if isinstance(s["lr"], list) else s["lr"],
        "gamma": s["gamma"],
        "train_batch_size_per_learner": s["train_batch_size"],
        "target_network_update_freq": s["target_network_update_freq"],
        "double_q": s["double_q"],
        "dueling": s["dueling"],
        "n_step": s["n_step"],
        "epsilon": [tuple(p) for p in s["epsilon"]] if isinstance(s["epsilon"], list) else [(0, s["epsilon"])],
        "num_steps_sampled_before_learning_starts": s["num_steps_sampled_before_learning_starts"],
        "replay_buffer_config": {"type": "MultiAgentEpisodeReplayBuffer", "capacity": s["replay_capacity"]},
    }
    if s["training_intensity"] is not None:
        training["training_intensity"] = s["training_intensity"]
    return (
        DQNConfig()
        .environment(rllib_env_name(market.market_type), env_config=dict(market_config))
        .env_runners(
            num_env_runners=resources.get("num_env_runners", 1),
            num_envs_per_env_runner=resources.get("num_envs_per_env_runner", 1),
            rollout_fragment_length=s["rollout_fragment_length"],
        )
        .multi_agent(policies=set(agents), policy_mapping_fn=lambda agent_id, *args, **kwargs: agent_id)
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(rl_module_specs=specs),
            model_config={"fcnet_hiddens": list(s["hiddens"]), "head_fcnet_hiddens": []},
        )
        .learners(num_learners=0, num_gpus_per_learner=1 if torch.cuda.is_available() else 0)
        .training(**training)
        .reporting(min_sample_timesteps_per_iteration=0)
        .debugging(seed=resources.get("seed", 0))
    )
