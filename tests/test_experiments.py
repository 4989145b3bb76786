"""The experiment suite: expansion, validation before running, and the result tables."""

import json
from pathlib import Path

import pytest
import yaml

from nashrl.experiments import expand, load_suite, run_suite
from nashrl.markets.validation import ConfigError


def write_suite(tmp_path, experiments, **extra):
    suite = {
        "output": str(tmp_path / "results.md"),
        "raw_output": str(tmp_path / "results.json"),
        "seeds": 2,
        "run": [f"output_dir={tmp_path / 'runs'}", "eval_every=0"],
        "experiments": experiments,
        **extra,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_suite_runs_and_tabulates_mean_and_spread(tmp_path):
    path = write_suite(
        tmp_path,
        [
            {
                "name": "tiny_calvano",
                "config": "configs/logit_bertrand_calvano_tabular_q.yaml",
                "set": ["run.stop={iterations: 2}", "algorithm.steps_per_iteration=20000", "algorithm.beta=0.0002"],
                "algorithms": ["tabular_q"],
            }
        ],
        notes="Budgets scaled to a test.",
    )
    out = run_suite(path)
    text = out.read_text()
    assert "## tiny_calvano" in text and "| tabular_q | 2 |" in text
    assert "Budgets scaled to a test." in text
    assert "±" in text  # two seeds: mean ± sd
    raw = json.loads((tmp_path / "results.json").read_text())
    assert [r["seed"] for r in raw] == [0, 1]
    assert all("profit_gain" in r["summary"] for r in raw)

    # Resume: seed 0 kept from the raw output, seed 1 run again (here: dropped first).
    (tmp_path / "results.json").write_text(json.dumps(raw[:1]))
    run_suite(path, resume=True)
    again = json.loads((tmp_path / "results.json").read_text())
    assert again[0] == raw[0] and [r["seed"] for r in again] == [0, 1]
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot resume"):
        run_suite(path, resume=True)


def test_baselines_get_matched_settings_and_overrides(tmp_path):
    path = write_suite(
        tmp_path,
        [{"name": "c", "config": "configs/cournot_duopoly.yaml", "algorithms": ["nash_q", "dqn", "tabular_q"]}],
        algorithm_overrides={"dqn": ["training_intensity=null"]},
    )
    suite = load_suite(path)
    runs = expand(suite, suite["experiments"][0])
    assert [r["algorithm"]["name"] for r in runs] == ["nash_q"] * 2 + ["dqn"] * 2 + ["tabular_q"] * 2
    dqn = runs[2]["algorithm"]
    assert dqn["gamma"] == runs[0]["algorithm"]["gamma"] and dqn["training_intensity"] is None
    assert [r["run"]["seed"] for r in runs[:2]] == [0, 1]


def test_bad_suites_are_refused_before_running(tmp_path):
    with pytest.raises(ConfigError, match="algorithms"):
        load_suite(
            write_suite(tmp_path, [{"name": "x", "config": "configs/cournot_duopoly.yaml", "algorithms": ["ppo"]}])
        )
    with pytest.raises(ConfigError, match="market.n_firms"):
        load_suite(
            write_suite(
                tmp_path, [{"name": "x", "config": "configs/cournot_duopoly.yaml", "set": ["market.n_firms=1"]}]
            )
        )
    with pytest.raises(ConfigError, match="algorithm.name"):  # tabular learners need a repeated game
        load_suite(
            write_suite(tmp_path, [{"name": "x", "config": "configs/capacity.yaml", "algorithms": ["tabular_q"]}])
        )


@pytest.mark.parametrize("path", sorted(str(p) for p in Path("configs/experiments").glob("*.yaml")))
def test_shipped_suites_are_valid(path):
    """Every shipped suite loads: every run config of every experiment validates (before Ray)."""
    suite = load_suite(path)
    runs = [run for exp in suite["experiments"] for run in expand(suite, exp)]
    assert runs and all(r["algorithm"]["name"] for r in runs)


def test_headline_reads_state_and_mpe_columns_and_tabulates_them():
    from nashrl.experiments import headline, markdown

    def row(seed, steps, share, invest):
        summary = {
            "final_actions": [1.0, 1.0],
            "stage_nash_gap": None,
            "state_comparisons": [{"max_grid_steps": s} for s in steps],
            "mpe_mean_investment_gap": 0.1,
            "mpe_ergodic_share_equal": share,
            "ergodic_investment": invest,
        }
        run = {"experiment": "e", "algorithm": "nash_q", "seed": seed, "env_steps": 10, "wall_s": 1.0}
        return {**run, "summary": summary}

    rows = [row(0, [0, 2, 1], 0.9, [0.2, 0.4]), row(1, [1, 1, 1], 1.0, [0.3, 0.3])]
    first = headline(rows[0])
    assert first["max_grid_steps_to_state_nash"] == 2 and first["mean_grid_steps_to_state_nash"] == 1
    assert first["ergodic_investment"] == pytest.approx(0.3) and first["mpe_ergodic_share_equal"] == 0.9
    table = markdown({"experiments": [{"name": "e"}]}, rows)
    assert "| grid steps to state Nash, worst state |" in table
    line = next(x for x in table.splitlines() if x.startswith("| nash_q"))
    assert "1.50 ± 0.71 [1.00, 2.00]" in line and "95.0% ± 7.1% [90.0%, 100.0%]" in line
