"""Every shipped config runs for a few iterations (train, and tune where it has a tune section),
so a shipped config that crashes is caught here; the README's Python API example runs too."""

from pathlib import Path

import pytest

from nashrl.config import load_config

CONFIGS = sorted(str(p) for p in Path("configs").glob("*.yaml"))
TINY = ["run.stop={iterations: 2}", "run.checkpoint_every=0", "run.progress=false", "run.eval_every=1"]


def tiny(path, tmp_path):
    config = load_config(path, [*TINY, f"run.output_dir={tmp_path}"])
    if config["algorithm"]["name"] in ("nash_q", "dqn"):
        config["algorithm"]["num_steps_sampled_before_learning_starts"] = 0  # learn from the first batch
    if config["algorithm"]["name"].startswith("tabular"):
        config["algorithm"]["steps_per_iteration"] = 5_000
    return config


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_config_trains(ray_session, tmp_path, path):
    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.train import run_training

    config = tiny(path, tmp_path)
    summary = run_training(config, quiet=True)
    assert summary["final_metrics"]["iteration"] == 2
    assert any(k.startswith("eval/") for k in summary["final_metrics"]), summary["final_metrics"]
    assert evaluate_checkpoint(summary["checkpoint"])["summary"] == summary["evaluation"]


@pytest.mark.parametrize("path", [p for p in CONFIGS if "tune" in load_config(p)])
def test_shipped_tune_config_searches_and_its_best_checkpoint_evaluates(ray_session, tmp_path, path):
    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.tune import run_tune

    config = tiny(path, tmp_path)
    config["tune"]["num_samples"] = 1
    config["tune"]["scheduler"] = {"type": "asha", "grace_period": 1, "max_t": 2}
    space = config["tune"]["search_space"]
    config["tune"]["search_space"] = {k: {"choice": [next(iter(v.values()))[0]]} for k, v in space.items()}
    result = run_tune(config)
    assert result["errors"] == 0 and result["num_trials"] == 1
    assert result["best_metric"] is not None
    evaluation = evaluate_checkpoint(result["best_checkpoint"])
    assert evaluation["summary"]["comparisons"]
