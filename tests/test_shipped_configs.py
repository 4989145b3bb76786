"""Every shipped config runs for a few iterations (train, and tune where it has a tune section),
so a shipped config that crashes is caught here; the README's Python API example runs too."""

from pathlib import Path

import pytest

from nashrl.config import load_config

CONFIGS = sorted(str(p) for p in Path("configs").glob("*.yaml"))
TINY = ["run.stop={iterations: 2}", "run.checkpoint_every=0", "run.progress=false", "run.eval_every=1"]


def shrink(config):
    """Learn from the first batch (replay learners); a short iteration (tabular learners)."""
    if config["algorithm"]["name"] in ("nash_q", "independent_dqn", "dqn"):
        config["algorithm"]["num_steps_sampled_before_learning_starts"] = 0
    if config["algorithm"]["name"].startswith("tabular"):
        config["algorithm"]["steps_per_iteration"] = 5_000
    return config


def tiny(path, tmp_path):
    return shrink(load_config(path, [*TINY, f"run.output_dir={tmp_path}"]))


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


def _suite_runs():
    """(suite, experiment, algorithm) of every shipped suite: the first seed's run config of each."""
    from nashrl.experiments import expand, load_suite

    out = []
    for path in sorted(Path("configs/experiments").glob("*.yaml")):
        suite = load_suite(path)
        for exp in suite["experiments"]:
            seen = set()
            for config in expand(suite, exp):
                if config["algorithm"]["name"] not in seen:
                    seen.add(config["algorithm"]["name"])
                    out.append(pytest.param(config, id=f"{path.stem}:{exp['name']}:{config['algorithm']['name']}"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("config", _suite_runs())
def test_shipped_suite_runs_train(ray_session, tmp_path, config):
    """Every experiment x algorithm of the shipped suites (configs/experiments) trains two
    iterations with its own settings, so a suite that would crash hours in is caught here."""
    from nashrl.config import apply_override, validate
    from nashrl.train import run_training

    for item in [*TINY, "run.eval_every=2", f"run.output_dir={tmp_path}"]:  # one evaluation, at the end
        apply_override(config, item)
    summary = run_training(validate(shrink(config)), quiet=True)
    assert summary["final_metrics"]["iteration"] == 2
    assert any(k.startswith("eval/") for k in summary["final_metrics"]), summary["final_metrics"]
