"""``nashrl evaluate`` (a checkpoint against theory) and ``nashrl report`` (a run directory as Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nashrl.analysis.evaluation import play, summarize
from nashrl.analysis.impulse import impulse_response
from nashrl.checkpoints import CheckpointError, experiment_of, read_meta
from nashrl.markets import make_market


def load_policy(checkpoint: str | Path, config: dict[str, Any]):
    """The greedy joint policy stored in a checkpoint, without starting Ray."""
    from nashrl.algorithms.policies import IndependentPolicy, NashQPolicy

    path = Path(checkpoint).resolve()
    name = config["algorithm"]["name"]
    try:
        if name in ("nash_q", "dqn"):
            from ray.rllib.core.rl_module.rl_module import RLModule

            modules_dir = path / "learner_group" / "learner" / "rl_module"
            if name == "nash_q":
                return NashQPolicy(RLModule.from_checkpoint(modules_dir / "nash_q"))
            agents = list(make_market(config["market"]).possible_agents)
            return IndependentPolicy({a: RLModule.from_checkpoint(modules_dir / a) for a in agents}, agents)
        from nashrl.algorithms.baselines.tabular import TabularTrainer

        trainer = TabularTrainer(config)
        trainer.restore(path)
        return trainer.policy()
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"checkpoint: could not load a policy from {str(checkpoint)!r} ({err})") from err


def evaluate_checkpoint(checkpoint: str | Path, steps: int = 50) -> dict[str, Any]:
    meta = read_meta(checkpoint)
    config, run_dir = experiment_of(checkpoint)
    policy = load_policy(checkpoint, config)
    market = make_market(config["market"])
    result = {"checkpoint": str(checkpoint), "meta": meta, "summary": summarize(policy, market, steps=steps)}
    path = play(policy, market, steps)
    result["action_path"] = market.action_values(path["actions"]).tolist()
    result["profit_path"] = path["profits"].tolist()
    if not market.sequential and market.market_type != "capacity":
        result["impulse_response"] = impulse_response(policy, market, warmup=max(steps // 2, 2), horizon=15)
    result["convergence"] = _convergence_time(run_dir)
    return result


def _convergence_time(run_dir: Path) -> dict[str, Any] | None:
    """First logged env step after which the greedy evaluation stopped changing (from progress.jsonl)."""
    log = run_dir / "progress.jsonl"
    if not log.is_file():
        return None
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not rows:
        return None
    return {
        "iterations": int(rows[-1].get("iteration", 0)),
        "env_steps": float(rows[-1].get("env_steps", 0)),
        "time_s": float(rows[-1].get("time_s", 0.0)),
    }


def print_evaluation(result: dict[str, Any]) -> None:
    from nashrl.cli import _fmt

    s = result["summary"]
    print(f"checkpoint: {result['checkpoint']} ({result['meta']['algorithm']} on {result['meta']['market']})")
    print(
        f"greedy actions {_fmt(s['final_actions'])}, mean profits {_fmt(s['mean_profit'])}, "
        f"stage Nash gap {s['stage_nash_gap']:.4g}"
    )
    for c in s["comparisons"]:
        print(
            f"  vs {c['concept']:<22} actions {_fmt(c['actions'])} profits {_fmt(c['profits'])} "
            f"grid steps {c['grid_steps']}"
        )
    if "profit_gain" in s:
        print(f"  profit gain Delta = {s['profit_gain']:.3f}")
    if "impulse_response" in result:
        ir = result["impulse_response"]
        print(
            f"  impulse response: firm {ir['deviator']} deviates to {ir['deviation_action']:.4g}; rivals change "
            f"{[f'{x:+.1%}' for x in ir['rival_relative_change_next_period']]} next period; back after "
            f"{ir['periods_to_return']} periods; deviation profitable: {ir['deviation_profitable']}"
        )


def write_report(run_dir: str | Path) -> Path:
    """Markdown report with learning curves and the summary of a training run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    summary_file = run_dir / "summary.json"
    if not summary_file.is_file():
        raise CheckpointError(f"run_dir: {str(run_dir)!r} has no summary.json; expected a finished nashrl train run")
    summary = json.loads(summary_file.read_text())
    rows = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines() if line.strip()]
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    lines = [f"# Run report: {run_dir.name}", ""]
    steps = np.array([r.get("env_steps", i) for i, r in enumerate(rows)])
    curves = sorted({k for r in rows for k in r if "loss" in k or "return" in k or "mean_profit" in k})
    if curves:
        fig, axes = plt.subplots(len(curves), 1, figsize=(7, 2.4 * len(curves)), squeeze=False)
        for ax, key in zip(axes[:, 0], curves):
            ax.plot(steps, [r.get(key, np.nan) for r in rows])
            ax.set_ylabel(key.split("/")[-1])
            ax.set_title(key, fontsize=9)
        axes[-1, 0].set_xlabel("env steps")
        fig.tight_layout()
        fig.savefig(figures / "learning_curves.png", dpi=100)
        plt.close(fig)
        lines += ["## Learning curves", "", "![learning curves](figures/learning_curves.png)", ""]
    ev = summary["evaluation"]
    lines += [
        "## Greedy policy against theory",
        "",
        "| concept | actions | profits | grid steps away |",
        "|---|---|---|---|",
    ]
    lines.append(f"| learned | {ev['final_actions']} | {ev['mean_profit']} | |")
    for c in ev["comparisons"]:
        lines.append(f"| {c['concept']} | {c['actions']} | {c['profits']} | {c['grid_steps']} |")
    lines.append("")
    if "profit_gain" in ev:
        lines += [f"Profit gain Delta = {ev['profit_gain']:.3f}; stage Nash gap {ev['stage_nash_gap']:.4g}.", ""]
    out = run_dir / "report.md"
    out.write_text("\n".join(lines))
    return out
