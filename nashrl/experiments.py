"""``nashrl suite SUITE.yaml``: run an experiment suite and write its result tables.

A suite lists experiments, each a config (plus ``--set`` style overrides), the algorithms
to compare and the seeds. Baselines get settings matched to the config's Nash-Q section
(:func:`~nashrl.algorithms.registry.baseline_settings`). Every run is trained, its final
checkpoint evaluated (:func:`~nashrl.analysis.report.evaluate_checkpoint`: greedy play
against theory, Nash gaps, profit gain, impulse response), and the results are written
as JSON and as Markdown tables of mean, standard deviation and range across seeds.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

from nashrl.config import ALGORITHMS, apply_override, load_config, read_yaml, validate
from nashrl.files import atomic_write_text, write_json
from nashrl.markets.validation import ConfigError

SUITE_KEYS = {"title", "output", "raw_output", "seeds", "experiments", "run", "algorithm_overrides", "notes"}


def load_suite(path: str | Path) -> dict[str, Any]:
    suite = read_yaml(Path(path), "suite")
    if not isinstance(suite, dict) or set(suite) - SUITE_KEYS or "experiments" not in suite:
        raise ConfigError(f"suite: expected a mapping with experiments and some of {sorted(SUITE_KEYS)}")
    if not isinstance(suite["experiments"], list) or not suite["experiments"]:
        raise ConfigError(f"suite.experiments: expected a non-empty list of experiments, got {suite['experiments']!r}")
    _check_seeds(suite.get("seeds", [0]), "suite.seeds")
    for k, exp in enumerate(suite["experiments"]):
        where = f"suite.experiments[{k}]"
        if not isinstance(exp, dict) or "config" not in exp or "name" not in exp:
            raise ConfigError(f"{where}: expected a mapping with name and config")
        _check_seeds(exp.get("seeds", [0]), f"{where}.seeds")
        algorithms = exp.get("algorithms", ["nash_q"])
        if not isinstance(algorithms, list):
            raise ConfigError(f"{where}.algorithms: expected a list of algorithm names, got {algorithms!r}")
        for algo in algorithms:
            if algo not in ALGORITHMS:
                raise ConfigError(f"{where}.algorithms: expected some of {ALGORITHMS}, got {algo!r}")
        for config in expand(suite, exp):  # every run's config is valid before anything runs
            validate(config)
    return suite


def _check_seeds(seeds: Any, field: str) -> None:
    """A count >= 1 or a non-empty list of distinct integers >= 0."""
    if isinstance(seeds, bool):
        ok = False
    elif isinstance(seeds, int):
        ok = seeds >= 1
    else:
        ok = (
            isinstance(seeds, list)
            and bool(seeds)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)
            and len(set(seeds)) == len(seeds)
        )
    if not ok:
        raise ConfigError(f"{field}: expected a count >= 1 or a list of distinct seeds >= 0, got {seeds!r}")


def _seeds(suite: dict[str, Any], exp: dict[str, Any]) -> list[int]:
    seeds = exp.get("seeds", suite.get("seeds", [0, 1, 2]))
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def expand(suite: dict[str, Any], exp: dict[str, Any]) -> list[dict[str, Any]]:
    """The run configs of one experiment: every algorithm and seed."""
    from nashrl.algorithms.registry import baseline_settings

    base = load_config(exp["config"], exp.get("set", []))
    runs = []
    for algo in exp.get("algorithms", [base["algorithm"]["name"]]):
        for seed in _seeds(suite, exp):
            config = copy.deepcopy(base)
            config["name"] = exp["name"]
            config["algorithm"] = baseline_settings(algo, base["algorithm"], base["run"])
            for item in suite.get("algorithm_overrides", {}).get(algo, []):
                apply_override(config, f"algorithm.{item}")
            for item in suite.get("run", []) + exp.get("run", []):
                apply_override(config, f"run.{item}")
            config["run"]["seed"] = seed
            config["run"]["progress"] = False
            runs.append(config)
    return runs


def run_suite(path: str | Path, only: list[str] | None = None, resume: bool = False) -> Path:
    """Run every (experiment, algorithm, seed) of the suite and write its tables.

    With ``resume``, the runs already in the suite's raw output are kept and skipped, so an
    interrupted suite continues where it stopped.
    """
    from nashrl.analysis.report import evaluate_checkpoint
    from nashrl.train import run_training

    suite = load_suite(path)
    raw_path = Path(suite.get("raw_output", "docs/results.json"))
    out = Path(suite.get("output", "docs/results.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    results = _previous_results(raw_path) if resume else []
    done = {(r["experiment"], r["algorithm"], r["seed"]) for r in results}
    for exp in suite["experiments"]:
        if only and exp["name"] not in only:
            continue
        for config in expand(suite, exp):
            if (exp["name"], config["algorithm"]["name"], config["run"]["seed"]) in done:
                continue
            started = time.time()
            summary = run_training(validate(config), quiet=True)
            evaluation = evaluate_checkpoint(summary["checkpoint"], summary=summary["evaluation"])
            row = {
                "experiment": exp["name"],
                "algorithm": config["algorithm"]["name"],
                "seed": config["run"]["seed"],
                "env_steps": summary["final_metrics"].get("env_steps"),
                "wall_s": time.time() - started,
                "summary": evaluation["summary"],
                "impulse_response": evaluation.get("impulse_response"),
            }
            results.append(row)
            print(json.dumps(headline(row)), flush=True)
            raw_path.parent.mkdir(parents=True, exist_ok=True)
            write_json(raw_path, results, indent=1)
            atomic_write_text(out, markdown(suite, results))  # tables so far, if the suite is stopped early
    atomic_write_text(out, markdown(suite, results))
    return out


def _previous_results(raw_path: Path) -> list[dict[str, Any]]:
    if not raw_path.exists():
        return []
    try:
        results = json.loads(raw_path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{raw_path}: cannot resume, the raw results are not valid JSON ({err})") from None
    keys = ("experiment", "algorithm", "seed", "summary")
    if not isinstance(results, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in results):
        raise ConfigError(f"{raw_path}: cannot resume, expected a list of runs with keys {list(keys)}")
    return results


def headline(row: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one run that the tables aggregate."""
    s = row["summary"]
    out = {
        "experiment": row["experiment"],
        "algorithm": row["algorithm"],
        "seed": row["seed"],
        "env_steps": row["env_steps"],
        "wall_s": round(row["wall_s"], 1),
    }
    if "final_actions" in s:  # (games with private shocks are compared in choice probabilities)
        out["final_actions"] = [round(x, 4) for x in s["final_actions"]]
        out["stage_nash_gap"] = s["stage_nash_gap"]
    for key in ("mpe_max_ccp_diff", "mpe_mean_ccp_diff"):
        if key in s:
            out[key] = s[key]
    nash = next((c for c in s.get("comparisons", []) if c["concept"] in ("nash", "grid_subgame_perfect")), None)
    if nash:
        out["grid_steps_to_nash"] = nash["max_grid_steps"]
    grid = next((c for c in s.get("comparisons", []) if c["concept"] == "grid_nash"), None)
    if grid:  # the grid stage game's exact (selected) equilibrium
        out["grid_steps_to_grid_nash"] = grid["max_grid_steps"]
    if s.get("profit_gain") is not None:
        out["profit_gain"] = s["profit_gain"]
    if "state_comparisons" in s:
        out["mean_grid_steps_to_state_nash"] = statistics.mean(c["max_grid_steps"] for c in s["state_comparisons"])
        out["max_grid_steps_to_state_nash"] = max(c["max_grid_steps"] for c in s["state_comparisons"])
        if "state_stage_gap" in s:
            out["state_stage_gap_relative"] = s["state_stage_gap"]["relative"]
        if s.get("state_following") is not None:
            out["state_following_slope"] = s["state_following"]["slope"]
            out["best_constant_grid_steps"] = s["state_following"]["best_constant_steps"]
    if "dynamic_nash_gap" in s:
        out["dynamic_nash_gap_relative"] = s["dynamic_nash_gap"]["relative"]
    if "mpe_mean_investment_gap" in s:
        out["mpe_mean_investment_gap"] = s["mpe_mean_investment_gap"]
        out["mpe_ergodic_share_equal"] = s.get("mpe_ergodic_share_equal")
        out["mpe_ergodic_share_near"] = s.get("mpe_ergodic_share_near")
        if "ergodic_investment" in s:
            out["ergodic_investment"] = statistics.mean(s["ergodic_investment"])
    ir = row.get("impulse_response")
    if ir:
        out["rival_change_after_deviation"] = statistics.mean(ir["rival_relative_change_next_period"])
        out["periods_to_return"] = ir["periods_to_return"]
    return out


COLUMNS = [
    ("grid_steps_to_nash", "grid steps to Nash/SPE", "{:.2f}"),
    ("grid_steps_to_grid_nash", "grid steps to the grid's Nash", "{:.2f}"),
    ("profit_gain", "profit gain Delta", "{:.3f}"),
    ("stage_nash_gap", "stage Nash gap", "{:.3g}"),
    ("mean_grid_steps_to_state_nash", "grid steps to state Nash", "{:.2f}"),
    ("max_grid_steps_to_state_nash", "grid steps to state Nash, worst state", "{:.2f}"),
    ("state_stage_gap_relative", "largest state's deviation gain (rel.)", "{:.3g}"),
    ("state_following_slope", "slope on the state's Nash (1: follows it, 0: ignores the state)", "{:.2f}"),
    ("best_constant_grid_steps", "grid steps of the best state-independent action, worst state", "{:.0f}"),
    ("dynamic_nash_gap_relative", "dynamic Nash gap (rel.)", "{:.3g}"),
    ("mpe_mean_investment_gap", "investment gap to MPE", "{:.3g}"),
    ("mpe_ergodic_share_equal", "states equal to the MPE (ergodic)", "{:.1%}"),
    ("mpe_ergodic_share_near", "states within 0.1% of value of the MPE's choice (ergodic)", "{:.1%}"),
    ("ergodic_investment", "long-run investment", "{:.3f}"),
    ("mpe_max_ccp_diff", "max CCP diff to MPE", "{:.3f}"),
    ("mpe_mean_ccp_diff", "mean CCP diff to MPE (ergodic)", "{:.3f}"),
    ("rival_change_after_deviation", "rival move after deviation", "{:+.1%}"),
    ("wall_s", "wall time (s)", "{:.0f}"),
]


def _stat(values: list[float], fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    mean, sd = statistics.mean(values), statistics.stdev(values)
    return f"{fmt.format(mean)} ± {fmt.format(sd).lstrip('+')} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def markdown(suite: dict[str, Any], results: list[dict[str, Any]]) -> str:
    rows = [headline(r) for r in results]
    lines = [
        f"# {suite.get('title', 'Experiment results')}",
        "",
        "Each cell: mean ± sd [min, max] across seeds. Generated by `nashrl suite`.",
        "",
    ]
    if suite.get("notes"):
        lines += [str(suite["notes"]).strip(), ""]
    planned = [e["name"] for e in suite.get("experiments", [])]
    ran = dict.fromkeys(r["experiment"] for r in rows)
    for exp in [e for e in planned if e in ran] + [e for e in ran if e not in planned]:
        mine = [r for r in rows if r["experiment"] == exp]
        cols = [c for c in COLUMNS if any(c[0] in r for r in mine)]
        lines += [
            f"## {exp}",
            "",
            "| algorithm | seeds | " + " | ".join(c[1] for c in cols) + " |",
            "|---|---|" + "---|" * len(cols),
        ]
        for algo in dict.fromkeys(r["algorithm"] for r in mine):
            runs = [r for r in mine if r["algorithm"] == algo]
            cells = [_stat([r.get(c[0]) for r in runs], c[2]) for c in cols]
            lines.append(f"| {algo} | {len(runs)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
