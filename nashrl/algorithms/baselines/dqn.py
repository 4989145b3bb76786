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

from nashrl.algorithms.settings import hiddens_ok, schedule_ok
from nashrl.markets import make_market, register_rllib_envs, rllib_env_name
from nashrl.markets.validation import is_int, is_real

DQN_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "gamma": 0.95,
    "train_batch_size": 128,
    "hiddens": [64, 64],
    "epsilon": [[0, 1.0], [20_000, 0.02]],
    "target_network_update_freq": 500,
    "double_q": True,
    "dueling": False,
    "n_step": 1,
    "replay_capacity": 100_000,
    "num_steps_sampled_before_learning_starts": 1_000,
    "training_intensity": None,
    "rollout_fragment_length": 25,
}


def dqn_errors(settings: dict[str, Any]) -> list[str]:
    errors = [
        f"{k}: unknown DQN setting; expected some of {sorted(DQN_DEFAULTS)}" for k in settings if k not in DQN_DEFAULTS
    ]
    merged = {**DQN_DEFAULTS, **settings}
    if not schedule_ok(merged["lr"]) or merged["lr"] == 0:
        errors.append(f"lr: expected a finite positive number or [[env_step, lr], ...], got {merged['lr']!r}")
    if not schedule_ok(merged["epsilon"], 0.0, 1.0):
        errors.append(
            f"epsilon: expected a probability in [0, 1] or [[env_step, value], ...], got {merged['epsilon']!r}"
        )
    for key, minimum in (
        ("train_batch_size", 1),
        ("target_network_update_freq", 1),
        ("n_step", 1),
        ("replay_capacity", 1),
        ("rollout_fragment_length", 1),
        ("num_steps_sampled_before_learning_starts", 0),
    ):
        if not is_int(merged[key], minimum):
            errors.append(f"{key}: expected an integer >= {minimum}, got {merged[key]!r}")
    intensity = merged["training_intensity"]
    if intensity is not None and not (is_real(intensity) and intensity > 0):
        errors.append(f"training_intensity: expected a finite positive number or null, got {intensity!r}")
    if not (is_real(merged["gamma"]) and 0 <= merged["gamma"] < 1):
        errors.append(f"gamma: expected a discount in [0, 1), got {merged['gamma']!r}")
    if not hiddens_ok(merged["hiddens"]):
        errors.append(
            f"hiddens: expected a list of positive integers (at most 16, each <= 8192), got {merged['hiddens']!r}"
        )
    for key in ("double_q", "dueling"):
        if not isinstance(merged[key], bool):
            errors.append(f"{key}: expected true or false, got {merged[key]!r}")
    return errors


def dqn_config(market_config: dict[str, Any], settings: dict[str, Any], resources: dict[str, Any]) -> DQNConfig:
    register_rllib_envs()
    s = {**DQN_DEFAULTS, **settings}
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
        "epsilon": [tuple(p) for p in s["epsilon"]],
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
