"""End-to-end (small) training through RLlib: Nash-Q, DQN, tabular; checkpoints; Tune."""

import json
import os

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
            "market": {
                "type": "cournot",
                "memory": 0,
                "episode_length": 25,
                "normalise_rewards": True,
                "discount": 0.5,  # = NASH_Q's gamma
                **market,
            },
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


@pytest.mark.parametrize("sampler", ["vector", "episodes"])
def test_nash_q_end_to_end_learns_cournot_nash(ray_session, tmp_path, sampler):
    """Both samplers: the vectorised market copies (default) and RLlib's episode runner."""
    from nashrl.train import run_training

    summary = run_training(small_config(tmp_path, {**NASH_Q, "sampler": sampler}, env_steps=3000), quiet=True)
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


def test_progress_logs_what_an_economist_monitors(ray_session, tmp_path):
    import csv
    from pathlib import Path

    from nashrl.train import run_training

    config = small_config(tmp_path, NASH_Q, env_steps=1000)
    config["run"]["eval_every"] = 5
    summary = run_training(config, quiet=True)
    with open(Path(summary["run_dir"]) / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    for key in (
        "firm_0/mean_profit",
        "firm_1/mean_profit",
        "exploration",
        "replay_size",
        "nash_q/solver_max_gap",
        "nash_q/solver_unsolved",
        "eval/max_grid_steps_to_nash",
        "eval/profit_gain",
    ):
        assert key in last and np.isfinite(float(last[key])), key
    assert float(rows[0]["exploration"]) > float(last["exploration"])  # the schedule decays
    assert 0 < float(last["firm_0/mean_profit"]) < 20.25  # money per period, below the monopoly profit
    assert float(last["replay_size"]) == summary["final_metrics"]["env_steps"]


def test_nash_q_learns_the_stackelberg_subgame_perfect_outcome(ray_session, tmp_path):
    # Backward induction through the targets: the shipped config (24k env steps, ~90 s) ends
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
    old_style = tmp_path / "old"
    old_style.mkdir()
    (old_style / "nashrl.json").write_text(json.dumps({"algorithm": "nash_q", "market": "cournot"}))
    with pytest.raises(CheckpointError, match="lacks the algorithm, market, config and manifest"):
        run_training(config, resume=str(old_style))
    assert not (tmp_path / "test").exists()  # no run directory was left behind


def _rows(summary):
    from pathlib import Path

    lines = (Path(summary["run_dir"]) / "progress.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s" and "seconds" not in k} for line in lines]


def test_runs_are_reproducible_and_resume_is_exact(ray_session, tmp_path):
    """One env runner, fixed seed: two runs log identical metrics; resuming the first run's
    checkpoint (at an episode boundary, replay stored by default) logs the very same metrics."""
    from pathlib import Path

    from nashrl.train import run_training

    config = small_config(tmp_path, NASH_Q, env_steps=600, memory=1)  # random initial states
    config["run"]["checkpoint_every"] = 6  # 6 iterations x 50 steps = 12 whole episodes
    first = run_training(config, quiet=True)
    second = run_training(config, quiet=True)
    assert first["run_dir"] != second["run_dir"]
    assert _rows(first) == _rows(second) and len(_rows(first)) == 12
    checkpoint = sorted((Path(first["run_dir"]) / "checkpoints").iterdir())[0]
    assert checkpoint.name == "iter_000006"
    resumed = run_training(config, resume=str(checkpoint), quiet=True)
    assert _rows(resumed) == _rows(first)
    assert resumed["evaluation"] == first["evaluation"]
    assert json.loads((Path(resumed["run_dir"]) / "progress.jsonl").read_text().splitlines()[-1])["time_s"] > 0


def test_tampered_rllib_checkpoint_is_refused_before_unpickling(ray_session, tmp_path):
    import pickle
    from pathlib import Path

    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.train import run_training

    summary = run_training(small_config(tmp_path, NASH_Q, env_steps=300), quiet=True)
    checkpoint = Path(summary["checkpoint"])
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    target = next(checkpoint.rglob("class_and_ctor_args.pkl"))
    target.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="class_and_ctor_args.pkl .* does not match the sha256"):
        evaluate_checkpoint(checkpoint)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        run_training(small_config(tmp_path, NASH_Q, env_steps=300), resume=str(checkpoint))
    assert not marker.exists()


def test_thread_budget_per_process_survives_the_solver(ray_session, tmp_path):
    """After env runners have acted (numba solver inside) and the learner has updated, every env
    runner still runs 1 torch and 1 numba thread on the non-spinning workqueue layer, and the
    driver's learner its budget (a regression here made training 6-7x slower on shared machines)."""
    from nashrl.algorithms.registry import build_trainer
    from nashrl.threads import default_learner_threads, thread_counts

    config = small_config(tmp_path, {**NASH_Q, "num_steps_sampled_before_learning_starts": 50})
    trainer = build_trainer(config)
    try:
        for _ in range(3):
            metrics = trainer.train()
        assert metrics.get("nash_q/td_loss") is not None  # the learner (and its solver) ran
        runners = trainer.algo.env_runner_group.foreach_env_runner(lambda r: thread_counts(), local_env_runner=False)
        assert runners == [{"torch": 1, "numba": 1, "numba_layer": "workqueue"}]
        # Ray's default worker niceness (15) starved env runners beside any normal-priority load.
        assert trainer.algo.env_runner_group.foreach_env_runner(lambda r: os.nice(0), local_env_runner=False) == [0]
        # RLlib seeded the runner deterministically without importing TorchInductor (nashrl.startup).
        seeded = trainer.algo.env_runner_group.foreach_env_runner(
            lambda r: (torch.are_deterministic_algorithms_enabled(), "torch._inductor" in __import__("sys").modules),
            local_env_runner=False,
        )
        assert seeded == [(True, False)]
        driver = thread_counts()
        assert driver["torch"] == driver["numba"] == default_learner_threads(1)
        assert driver["numba_layer"] == "workqueue"
    finally:
        trainer.stop()


def test_cli_checkpoint_loads_with_rllib_in_a_fresh_process(ray_session, tmp_path):
    """An RLlib user's Algorithm.from_checkpoint on a path printed by the CLI, in a new process
    that never imported nashrl itself (the pickled config does)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from nashrl.train import run_training

    summary = run_training(small_config(tmp_path, NASH_Q, env_steps=200), quiet=True)
    assert Path(summary["checkpoint"]).is_absolute()
    code = (
        "import ray; ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False); "
        "from ray.rllib.algorithms.algorithm import Algorithm; "
        f"algo = Algorithm.from_checkpoint({summary['checkpoint']!r}); "
        "print(type(algo).__name__, algo.get_module('nash_q').action_sizes); algo.stop()"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NashQ (13, 13)" in out.stdout


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_diverging_training_stops_with_a_finite_checkpoint(ray_session, tmp_path, alpha):
    """Uniform and prioritised replay (whose priorities a diverging update must not poison)."""
    from pathlib import Path

    from nashrl.analysis.report import load_policy
    from nashrl.checkpoints import experiment_of
    from nashrl.train import TrainingError, run_status, run_training

    config = small_config(
        tmp_path, {**NASH_Q, "lr": 1e30, "td_error_loss_fn": "mse", "prioritized_replay_alpha": alpha}, env_steps=1500
    )
    with pytest.raises(TrainingError, match="training diverged at iteration .* last finite update are saved in") as err:
        run_training(config, quiet=True)
    saved = Path(str(err.value).split("saved in ")[1].split(";")[0])
    stored, _ = experiment_of(saved)
    policy = load_policy(saved, stored)
    assert all(torch.isfinite(p).all() for p in policy.module.parameters())
    assert run_status(saved.parent.parent)["status"] == "failed"


def still_running(pids: list[int], within_s: float) -> list[int]:
    """The processes of ``pids`` still alive (not zombies) after waiting up to ``within_s`` seconds."""
    import time
    from pathlib import Path

    deadline = time.time() + within_s
    alive = list(pids)
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and _state(p) != "Z"]
    return alive


def cli_config(tmp_path, name: str, env_steps: int):
    """A small Cournot Nash-Q config file for runs of the nashrl command in a subprocess."""
    config = tmp_path / f"{name}.yaml"
    run = {"stop": {"env_steps": env_steps}, "output_dir": str(tmp_path / "runs"), "progress": False}
    algorithm = {"name": "nash_q", "hiddens": [16]}
    config.write_text(
        json.dumps({"name": name, "market": {"type": "cournot", "memory": 0}, "algorithm": algorithm, "run": run})
    )
    return config


def test_command_exits_right_after_its_results_and_the_watchdog_ends_ray(tmp_path):
    """`nashrl train` leaves with os._exit once summary and checkpoint are written; its watchdog
    then ends the local Ray instance (no ray.shutdown wait): nothing of Ray outlives it."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    config = cli_config(tmp_path, "short", env_steps=200)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    watched: list[int] = []
    driver = subprocess.Popen(
        [sys.executable, "-m", "nashrl.cli", "train", str(config), "--json"], env=env, stdout=subprocess.PIPE, text=True
    )
    from nashrl.watchdog import descendants, parents

    while driver.poll() is None:  # record the Ray processes the command starts
        watched = sorted(set(watched) | {p for p in descendants(driver.pid, parents()) if _is_ray(p)})
        time.sleep(0.2)
    summary = json.loads(driver.stdout.read())
    assert driver.returncode == 0
    assert Path(summary["checkpoint"], "nashrl.json").is_file()
    assert json.loads(Path(summary["run_dir"], "status.json").read_text())["status"] == "complete"
    assert watched, "no Ray process seen"
    alive = still_running(watched, within_s=30)
    assert not alive, f"Ray processes outlived the command: {alive}"


def test_killed_driver_leaves_no_ray_processes_and_no_ray_results(tmp_path):
    """kill -9 of `nashrl train`: the watchdog ends the local Ray instance's processes."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from nashrl.watchdog import descendants, parents

    results = Path.home() / "ray_results"
    before = set(results.iterdir()) if results.is_dir() else set()
    config = cli_config(tmp_path, "long", env_steps=10**7)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen([sys.executable, "-m", "nashrl.cli", "train", str(config)], env=env)
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "runs").rglob("progress.jsonl")) and time.time() < deadline:
            time.sleep(1)
        assert list((tmp_path / "runs").rglob("progress.jsonl")), "training did not start"
        time.sleep(3)
        ray_children = [p for p in descendants(driver.pid, parents()) if _is_ray(p)]
        assert ray_children  # raylet, gcs_server, agents, workers
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    alive = still_running(ray_children, within_s=30)
    assert not alive, f"Ray processes outlived the killed driver: {alive}"
    after = set(results.iterdir()) if results.is_dir() else set()
    assert after == before  # nothing new under ~/ray_results
    status = json.loads(next((tmp_path / "runs").rglob("status.json")).read_text())
    assert status["status"] == "running"  # a killed run stays marked incomplete


def _is_ray(pid):
    try:
        return "ray" in open(f"/proc/{pid}/cmdline").read()
    except OSError:
        return False


def _state(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def test_independent_dqn_baseline_runs(ray_session, tmp_path):
    from nashrl.train import run_training

    algo = {"name": "dqn", "num_steps_sampled_before_learning_starts": 100, "train_batch_size": 64, "hiddens": [16]}
    summary = run_training(small_config(tmp_path, algo, env_steps=400), quiet=True)
    assert np.isfinite(summary["final_metrics"]["firm_0/qf_loss"])
    assert len(summary["evaluation"]["final_actions"]) == 2


def test_independent_dqn_on_nash_q_machinery_trains_evaluates_and_resumes(ray_session, tmp_path):
    """independent_dqn: the Nash-Q config's settings, each firm's Q over its own actions; it trains on
    the vector runner (its TD targets are checked against DQN's in test_nash_q_module), and its
    checkpoint evaluates to the same greedy play and records its name."""
    from pathlib import Path

    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.train import run_training

    algo = {**NASH_Q, "name": "independent_dqn"}
    summary = run_training(small_config(tmp_path, algo, env_steps=3000), quiet=True)
    metrics = summary["final_metrics"]
    assert np.isfinite(metrics["nash_q/td_loss"]) and metrics["env_steps"] >= 3000
    assert metrics["nash_q/solver_unsolved"] == 0
    meta = json.loads((Path(summary["checkpoint"]) / "nashrl.json").read_text())
    assert meta["algorithm"] == "independent_dqn"
    evaluated = evaluate_checkpoint(summary["checkpoint"])["summary"]
    assert evaluated["final_action_indices"] == summary["evaluation"]["final_action_indices"]


def test_averaged_weights_are_trained_checkpointed_and_evaluated(ray_session, tmp_path):
    """average_weights_from: the learner adds the online weights to their mean once per update
    call from that env step on; the checkpoint holds the mean and its count, and evaluating the
    checkpoint reproduces the run's own evaluation (both read the averaged weights)."""
    import pickle
    from pathlib import Path

    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.train import run_training

    algo = {**NASH_Q, "average_weights_from": 500}
    summary = run_training(small_config(tmp_path, algo, env_steps=1500), quiet=True)
    state_file = next(Path(summary["checkpoint"]).glob("learner_group/learner/rl_module/*/module_state.pkl"))
    state = pickle.loads(state_file.read_bytes())
    iterations = summary["final_metrics"]["iteration"]
    assert 0 < float(state["average_count"]) < iterations  # none before env step 500
    averaged = {k.removeprefix("_average_q_net."): v for k, v in state.items() if k.startswith("_average_q_net.")}
    online = {k.removeprefix("q_net."): v for k, v in state.items() if k.startswith("q_net.")}
    assert averaged.keys() == online.keys() and any(not np.allclose(averaged[k], online[k]) for k in online)
    evaluated = evaluate_checkpoint(summary["checkpoint"])["summary"]
    assert evaluated["final_action_indices"] == summary["evaluation"]["final_action_indices"]
    assert evaluated["stage_nash_gap"] == summary["evaluation"]["stage_nash_gap"]


def test_shared_aggregative_nash_q_learns_three_firm_cournot_and_resumes(ray_session, tmp_path):
    """share_firms: one network for three exchangeable Cournot firms (aggregative head) reaches the
    grid's Nash quantities; its checkpoint evaluates to the same play and resumes; a resume that
    changes the head's sharing is refused before loading weights."""
    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.train import run_training

    algo = {**NASH_Q, "q_head": "aggregative", "share_firms": True}
    summary = run_training(small_config(tmp_path, algo, env_steps=3000, n_firms=3), quiet=True)
    nash = next(c for c in summary["evaluation"]["comparisons"] if c["concept"] == "nash")
    assert nash["max_grid_steps"] <= 1, nash
    evaluated = evaluate_checkpoint(summary["checkpoint"])["summary"]
    assert evaluated["final_action_indices"] == summary["evaluation"]["final_action_indices"]
    resumed = run_training(
        small_config(tmp_path, algo, env_steps=3500, n_firms=3), quiet=True, resume=summary["checkpoint"]
    )
    assert resumed["final_metrics"]["env_steps"] >= 3500
    with pytest.raises(CheckpointError, match="algorithm.share_firms"):
        run_training(
            small_config(tmp_path, {**algo, "share_firms": False}, env_steps=3500, n_firms=3),
            resume=summary["checkpoint"],
        )


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


def test_an_rllib_run_evaluated_at_its_last_iteration_is_not_evaluated_again(ray_session, tmp_path, monkeypatch):
    """The trainer's callback evaluates at iterations 1 and 2 (eval_every=1); the run's final
    evaluation is the second of them, not a third computation (12-firm evaluations take minutes);
    with other evaluation steps than the run's it would be computed anew."""
    import nashrl.analysis.evaluation as evaluation
    from nashrl.train import run_training

    calls = []
    original = evaluation.summarize

    def counted(*args, **kwargs):
        calls.append(original(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(evaluation, "summarize", counted)
    config = small_config(tmp_path, {**NASH_Q, "num_steps_sampled_before_learning_starts": 0}, env_steps=100)
    config["run"].update({"stop": {"iterations": 2}, "eval_every": 1})
    summary = run_training(config, quiet=True)
    assert summary["final_metrics"]["iteration"] == 2
    assert len(calls) == 2 and summary["evaluation"] is calls[1]


def test_nash_q_trains_with_the_support_search_for_three_firms(ray_session, tmp_path):
    """``equilibrium_search: support`` (the N-player support enumeration) reaches the module's
    stage-game solves through its solution cache: a three-firm run with the joint head trains,
    every stage game solved; a duopoly asking for it is refused before Ray."""
    from nashrl.markets.validation import ConfigError
    from nashrl.train import run_training

    algo = {**NASH_Q, "equilibrium_search": "support"}
    grid = {"low": 0, "high": 6, "size": 5}
    summary = run_training(small_config(tmp_path, algo, env_steps=800, n_firms=3, quantities=grid), quiet=True)
    metrics = summary["final_metrics"]
    assert metrics["nash_q/solver_unsolved"] == 0 and metrics["nash_q/solver_max_gap"] <= 1e-6
    assert len(summary["evaluation"]["final_actions"]) == 3
    with pytest.raises(ConfigError, match="algorithm.equilibrium_search"):
        small_config(tmp_path, algo, quantities=grid)
