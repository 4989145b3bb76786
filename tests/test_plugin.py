"""A market of the user's own (docs/examples/hotelling.py) through theory, training, evaluation, report."""

import json
from pathlib import Path

import pytest

from nashrl.cli import main
from nashrl.config import validate
from nashrl.markets import ConfigError, make_market

EXAMPLES = str(Path(__file__).resolve().parents[1] / "docs" / "examples")
HOTELLING = {"type": "hotelling:HotellingMarket", "t": 1.0, "memory": 0, "episode_length": 20, "discount": 0.5}


@pytest.fixture
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)


def test_plugin_market_theory(examples_on_path, tmp_path, capsys):
    config = tmp_path / "hotelling.yaml"
    config.write_text(json.dumps({"market": HOTELLING}))
    assert main(["theory", str(config), "--json"]) == 0
    rows = {r["concept"]: r for r in json.loads(capsys.readouterr().out)["benchmarks"]}
    assert rows["nash"]["actions"] == [1.0, 1.0]  # c + t
    assert [1.0, 1.0] in rows["grid_nash"]["pure_equilibria"]  # the closed form is a grid equilibrium


def test_plugin_market_errors_name_the_field(examples_on_path):
    with pytest.raises(ConfigError, match="^market.type: cannot import module 'nowhere'"):
        make_market({"type": "nowhere:Market"})
    with pytest.raises(ConfigError, match="is not a nashrl.markets.MarketEnv subclass"):
        make_market({"type": "json:JSONDecoder"})
    with pytest.raises(ConfigError, match="^market.t"):
        make_market({**HOTELLING, "t": -1})


def test_plugin_market_trains_evaluates_and_reports(examples_on_path, ray_session, tmp_path):
    from nashrl.analysis.report import evaluate_checkpoint, write_report
    from nashrl.train import run_training

    config = validate(
        {
            "name": "hotelling",
            "market": HOTELLING,
            "algorithm": {
                "name": "nash_q",
                "hiddens": [32],
                "train_batch_size": 64,
                "num_steps_sampled_before_learning_starts": 100,
                "updates_per_iteration": 2,
            },
            "run": {
                "stop": {"env_steps": 300},
                "num_env_runners": 0,  # env runs in this process, where the example is importable
                "output_dir": str(tmp_path),
                "progress": False,
                "evaluation_steps": 5,
                "eval_every": 2,
            },
        }
    )
    summary = run_training(config, quiet=True)
    concepts = {c["concept"] for c in summary["evaluation"]["comparisons"]}
    assert concepts == {"nash", "grid_nash"}
    assert evaluate_checkpoint(summary["checkpoint"])["summary"] == summary["evaluation"]
    report = write_report(summary["run_dir"]).read_text()
    assert "| nash |" in report and "| grid_nash |" in report
