"""End-to-end (small) training through RLlib: Nash-Q, DQN, tabular; checkpoints; Tune."""

import json

import numpy as np
import pytest
import torch

from nashrl.checkpoints import CheckpointError
from nashrl.config import validate
from nashrl.markets import make_market

pytestmark = pytest.mark.slow


def small_config(tmp_path, algorithm, env_steps=1500, **market):
    return validate(
        {
            "name": "test",
            "market": {"type": "cournot", "memory": 0, "episode_length": 25, "normalise_rewards": True, **market},
            "algorithm": algorithm,
            "run": {
                "seed": 0,
                "stop": {"env_steps": env_steps},
                "num_env_runners": 1,
                "num_envs_per_env_runner": 2,
                "checkpoint_every": 0,
                "output_dir": str(tmp_path),
                "evaluation_steps": 5,
                "progress": False,
            },
        }
    )


NASH_Q = {
    "name": "nash_q",
    "lr": 0.003,
    "gamma": 0.5,
    "train_batch_size": 128,
    "hiddens": [32],
    "epsilon": [[0, 1.0], [1000, 0.05]],
    "target_network_update_freq": 100,
    "num_steps_sampled_before_learning_starts": 200,
    "updates_per_iteration": 4,
}


def test_registered_envs_build_through_rllib(ray_session):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from nashrl.markets import MARKETS, rllib_env_name

    for kind in MARKETS:
        env = _global_registry.get(ENV_CREATOR, rllib_env_name(kind))({"episode_length": 3})
        obs, _ = env.reset(seed=0)
        assert list(obs) == env.possible_agents
        actions = {a: env.action_spaces[a].sample() for a in env.agents}
        obs, rewards, terms, truncs, _ = env.step(actions)
        assert set(rewards) == set(env.possible_agents) and "__all__" in truncs


def test_nash_q_end_to_end_learns_cournot_nash(ray_session, tmp_path):
    from nashrl.train import run_training

    summary = run_training(small_config(tmp_path, NASH_Q, env_steps=3000), quiet=True)
    metrics = summary["final_metrics"]
    assert metrics["env_steps"] >= 3000
    assert np.isfinite(metrics["nash_q/td_loss"]) and metrics["nash_q/solver_unsolved"] == 0
    ev = summary["evaluation"]
    nash = next(c for c in ev["comparisons"] if c["concept"] == "nash")
    assert nash["max_grid_steps"] <= 1, ev
    run_dir = summary["run_dir"]
    for name in ("experiment.yaml", "progress.csv", "progress.jsonl", "summary.json"):
        assert (tmp_path / run_dir.split(str(tmp_path))[-1].lstrip("/") / name).exists()
    meta = json.loads((__import__("pathlib").Path(summary["checkpoint"]) / "nashrl.json").read_text())
    assert meta["algorithm"] == "nash_q" and meta["env_steps"] >= 3000


def test_nash_q_learns_the_stackelberg_subgame_perfect_outcome(ray_session, tmp_path):
    # Backward induction through the targets: the shipped config (16k env steps, ~30 s) ends
    # within one grid step of the grid's subgame-perfect outcome (4.8, 2.0), not at Cournot.
    from nashrl.config import load_config
    from nashrl.train import run_training

    config = load_config(
        "configs/stackelberg.yaml",
        ["run.seed=0", f"run.output_dir={tmp_path}", "run.checkpoint_every=0", "run.progress=false"],
    )
    ev = run_training(config, quiet=True)["evaluation"]
    spe = next(c for c in ev["comparisons"] if c["concept"] == "grid_subgame_perfect")
    cournot = next(c for c in ev["comparisons"] if c["concept"] == "cournot_nash")
    assert spe["max_grid_steps"] <= 1, ev
    assert cournot["max_grid_steps"] >= 2, ev


def _learner_state(trainer):
    state = trainer.module_state()["learner"]
    weights = state["rl_module"]["nash_q"]
    optim = state["optimizer"]
    return weights, optim


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}/{k}"))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for i, v in enumerate(tree):
            out.update(_flat(v, f"{prefix}/{i}"))
        return out
    return {prefix: tree}


def test_checkpoint_resume_restores_weights_and_optimizer(ray_session, tmp_path):
    from nashrl.algorithms.registry import build_trainer
    from nashrl.train import save_checkpoint

    # Also exercises double-Q targets and Boltzmann exploration on the env runners.
    config = small_config(
        tmp_path, {**NASH_Q, "double_q": True, "exploration": "boltzmann", "store_buffer_in_checkpoints": True}
    )
    first = build_trainer(config)
    for _ in range(12):
        metrics = first.train()
    assert metrics.get("nash_q/td_loss") is not None  # the optimizer has taken steps
    path = save_checkpoint(first, tmp_path, config, metrics)
    saved = _flat(_learner_state(first))
    first.stop()

    second = build_trainer(config)
    before = _flat(_learner_state(second))
    second.restore(path)
    after = _flat(_learner_state(second))
    assert saved.keys() == after.keys()
    differs_before = 0
    for key, value in saved.items():
        if isinstance(value, (np.ndarray, torch.Tensor)):
            np.testing.assert_array_equal(np.asarray(after[key]), np.asarray(value), err_msg=key)
            fresh = before.get(key)  # a fresh Adam has no moment estimates yet
            differs_before += fresh is None or not np.array_equal(np.asarray(fresh), np.asarray(value))
        else:
            assert after[key] == value, key
    assert differs_before > 0  # the fresh trainer really was different
    assert len(second.algo.replay) == len(first.algo.replay) > 0  # the joint replay came back too
    np.testing.assert_array_equal(second.algo.replay.data["actions"], first.algo.replay.data["actions"])
    resumed = second.train()
    assert resumed["env_steps"] > metrics["env_steps"]  # counters continue from the checkpoint
    second.stop()


def test_resume_refuses_missing_foreign_and_corrupt_checkpoints(ray_session, tmp_path):
    from nashrl.train import run_training

    config = small_config(tmp_path, NASH_Q)
    with pytest.raises(CheckpointError, match="not a directory"):
        run_training(config, resume=str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="nashrl.json"):
        run_training(config, resume=str(empty))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "nashrl.json").write_text(json.dumps({"algorithm": "dqn", "market": "cournot"}))
    with pytest.raises(CheckpointError, match="holds dqn"):
        run_training(config, resume=str(foreign))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "nashrl.json").write_text(json.dumps({"algorithm": "nash_q", "market": "cournot"}))
    with pytest.raises(CheckpointError, match="could not restore"):
        run_training(config, resume=str(corrupt))
    assert not (tmp_path / "test").exists()  # no run directory was left behind


def test_independent_dqn_baseline_runs(ray_session, tmp_path):
    from nashrl.train import run_training

    algo = {"name": "dqn", "num_steps_sampled_before_learning_starts": 100, "train_batch_size": 64, "hiddens": [16]}
    summary = run_training(small_config(tmp_path, algo, env_steps=400), quiet=True)
    assert np.isfinite(summary["final_metrics"]["firm_0/qf_loss"])
    assert len(summary["evaluation"]["final_actions"]) == 2


def test_tabular_baselines_and_checkpoint_roundtrip(tmp_path):
    from nashrl.algorithms.registry import build_trainer

    config = small_config(tmp_path, {"name": "tabular_q", "steps_per_iteration": 2000, "beta": 1e-3})
    trainer = build_trainer(config)
    trainer.train()
    trainer.save(tmp_path / "ck")
    other = build_trainer(config)
    other.restore(tmp_path / "ck")
    np.testing.assert_array_equal(other.q, trainer.q)
    assert other.t == trainer.t
    market = make_market(config["market"])
    assert np.array_equal(
        other.policy().act(None, market.initial_state(np.random.default_rng(0))),
        trainer.policy().act(None, market.initial_state(np.random.default_rng(0))),
    )


def test_tune_two_trials(ray_session, tmp_path):
    from nashrl.tune import run_tune

    config = small_config(tmp_path, {**NASH_Q, "num_steps_sampled_before_learning_starts": 50})
    config["run"]["num_env_runners"] = 0
    config["run"]["stop"] = {"iterations": 2}
    config["tune"] = {
        "num_samples": 1,
        "metric": "env_runners/num_env_steps_sampled_lifetime",
        "mode": "max",
        "scheduler": {"type": "fifo"},
        "search_space": {"lr": {"grid": [0.001, 0.01]}},
    }
    config = validate(config)
    result = run_tune(config)
    assert result["num_trials"] == 2 and result["errors"] == 0
    assert result["best_config"]["lr"] in (0.001, 0.01)
    assert result["best_metric"] > 0
