"""``nashrl evaluate`` (a checkpoint against theory) and ``nashrl report`` (a run directory as Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nashrl.analysis.evaluation import play, summarize
from nashrl.analysis.impulse import impulse_response
from nashrl.checkpoints import CheckpointError, experiment_of, read_meta
from nashrl.files import atomic_write_text
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


def can_punish(market) -> bool:
    """Whether a deviation can be answered: simultaneous moves and strategies that see past actions."""
    return not market.sequential and market.stage_game_is_benchmark and getattr(market, "memory", 0) > 0


def evaluate_checkpoint(checkpoint: str | Path, steps: int | None = None) -> dict[str, Any]:
    """The checkpoint's long-run greedy outcome against theory, from the state training reached
    (stored in the checkpoint), with the run's seed and ``evaluation_steps`` unless ``steps``
    is given: the same numbers as the run's final summary."""
    meta = read_meta(checkpoint)
    config, run_dir = experiment_of(checkpoint)
    policy = load_policy(checkpoint, config)
    market = make_market(config["market"])
    steps = config["run"]["evaluation_steps"] if steps is None else steps
    seed, start = config["run"]["seed"], meta.get("final_state")
    summary = summarize(policy, market, steps=steps, seed=seed, start_state=start)
    result = {"checkpoint": str(checkpoint), "meta": meta, "summary": summary}
    path = play(policy, market, steps, seed, start_state=start)
    result["action_path"] = market.action_values(path["actions"]).tolist()
    result["profit_path"] = path["profits"].tolist()
    if can_punish(market):
        result["impulse_response"] = impulse_response(policy, market, horizon=15, seed=seed, start_state=start)
    result["convergence"] = _convergence_time(run_dir)
    if run_dir is not None:
        from nashrl.train import run_status

        status = run_status(run_dir)["status"]
        if status != "complete":
            result["warning"] = f"the run that wrote this checkpoint is incomplete (status {status})"
    return result


def read_progress(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``progress.jsonl``; a missing file is no rows, a torn line (killed run) is skipped."""
    log = Path(run_dir) / "progress.jsonl"
    if not log.is_file():
        return []
    rows = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _convergence_time(run_dir: Path | None) -> dict[str, Any] | None:
    """How long the run trained until the evaluated checkpoint's last logged row (from progress.jsonl)."""
    rows = read_progress(run_dir) if run_dir is not None else []
    if not rows:
        return None
    return {
        "iterations": int(rows[-1].get("iteration", 0)),
        "env_steps": float(rows[-1].get("env_steps", 0)),
        "time_s": float(rows[-1].get("time_s", 0.0)),
    }


def print_evaluation(result: dict[str, Any]) -> None:
    from nashrl.cli import print_policy_summary

    print(f"checkpoint: {result['checkpoint']} ({result['meta']['algorithm']} on {result['meta']['market']})")
    if "warning" in result:
        print(f"warning: {result['warning']}")
    print_policy_summary(result["summary"])
    if "impulse_response" in result:
        ir = result["impulse_response"]
        print(
            f"  impulse response: firm {ir['deviator']} deviates to {ir['deviation_action']:.4g}; rivals change "
            f"{[f'{x:+.1%}' for x in ir['rival_relative_change_next_period']]} next period; back after "
            f"{ir['periods_to_return']} periods; deviation profitable: {ir['deviation_profitable']}"
        )


def _figure(plt, path: Path, title: str, draw) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    draw(ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"![{title}](figures/{path.name})"


def capacity_policy_maps(policy, market, path: Path) -> Path:
    """Heatmaps of firm 0's investment by (own, rival) capacity: learned policy against the MPE."""
    import matplotlib.pyplot as plt

    from nashrl.theory.capacity import solve_mpe

    mpe = solve_mpe(market)
    k = market.levels
    learned = np.zeros((k, k))
    equilibrium = mpe.expected_investment(market.grids[0])[:, 0].reshape(k, k)
    for state in market.state_list:
        joint = policy.act(market.observe(state).astype(np.float32), state)
        learned[state[0], state[1]] = market.grids[0][joint[0]]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    mpe_title = "MPE" if mpe.converged else f"MPE NOT CONVERGED (BR gain {mpe.best_response_gain:.2g})"
    for ax, data, title in zip(axes, (learned, equilibrium), ("learned", mpe_title)):
        im = ax.imshow(data, origin="lower", vmin=market.grids[0].min(), vmax=market.grids[0].max(), cmap="viridis")
        ax.set_xlabel("rival capacity level")
        ax.set_ylabel("own capacity level")
        ax.set_title(f"firm 0 investment: {title}", fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(run_dir: str | Path) -> Path:
    """Markdown report of a training run: learning curves, Nash gap over training, action paths,
    impulse response, policy maps against the MPE (capacity game), and the theory comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nashrl.train import run_status

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run_dir: {str(run_dir)!r} is not a directory")
    summary_file = run_dir / "summary.json"
    status = run_status(run_dir)["status"]
    if not summary_file.is_file():
        raise CheckpointError(
            f"run_dir: {str(run_dir)!r} has no summary.json (status {status}: the run was killed, failed or is "
            "still going); expected a finished nashrl train run, or evaluate one of its checkpoints"
        )
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"run_dir: {summary_file} is corrupt ({err})") from err
    rows = read_progress(run_dir)
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    lines = [f"# Run report: {run_dir.name}", ""]
    if status != "complete":
        lines += [f"**Warning: this run is incomplete (status {status}).**", ""]
    if not rows:
        lines += ["No training progress was logged (progress.jsonl missing or empty).", ""]
    steps = np.array([r.get("env_steps", i) for i, r in enumerate(rows)])

    def series(key):
        return [r.get(key, np.nan) for r in rows]

    def section(title: str, keys: list[str], marker: str | None) -> list[str]:
        if not keys:
            return []
        out = [f"## {title}", ""]
        for key in keys:
            draw = lambda ax, key=key: (ax.plot(steps, series(key), marker=marker), ax.set_xlabel("env steps"))  # noqa: E731
            out.append(_figure(plt, figures / f"{key.replace('/', '_')}.png", key, draw))
        return out + [""]

    keys = sorted({k for r in rows for k in r})
    lines += section("Learning curves", [k for k in keys if "loss" in k or "return" in k or "mean_profit" in k], None)
    lines += section("Equilibrium metrics over training", [k for k in keys if k.startswith("eval/")], ".")

    ev = summary["evaluation"]
    lines += [
        "## Greedy policy against theory",
        "",
        "| concept | actions | profits | grid steps away |",
        "|---|---|---|---|",
        f"| learned | {ev['final_actions']} | {ev['mean_profit']} | |",
    ]
    for c in ev["comparisons"]:
        lines.append(f"| {c['concept']} | {c['actions']} | {c['profits']} | {c['grid_steps']} |")
    lines.append("")
    facts = []
    if ev.get("stage_nash_gap") is not None:
        facts.append(f"stage Nash gap {ev['stage_nash_gap']:.4g}")
    if "one_step_deviation_gain" in ev:
        facts.append(f"one-step deviation gain (value sense) {ev['one_step_deviation_gain']:.4g}")
    if "mpe_converged" in ev:
        facts.append(
            f"MPE benchmark by {ev['mpe_method']}, best-response gain {ev['mpe_best_response_gain']:.3g}"
            + ("" if ev["mpe_converged"] else " (WARNING: not converged, approximate)")
        )
    if ev.get("profit_gain") is not None:
        facts.append(f"profit gain Delta = {ev['profit_gain']:.3f}")
    if "dynamic_nash_gap" in ev:
        facts.append(
            f"dynamic Nash gap {ev['dynamic_nash_gap']['dynamic_nash_gap']:.4g} "
            f"(relative {ev['dynamic_nash_gap']['relative']:.3g})"
        )
    lines += ["; ".join(facts) + ".", ""]
    for c in ev.get("state_comparisons", []):
        lines.append(
            f"- {c['concept']} at {c['state']}: learned {c['policy_actions']} vs {c['benchmark_actions']} "
            f"({c['max_grid_steps']} grid steps)"
        )
    lines.append("")

    checkpoint = summary.get("checkpoint")
    if checkpoint and Path(checkpoint).is_dir():
        config, _ = experiment_of(checkpoint)
        market = make_market(config["market"])
        policy = load_policy(checkpoint, config)
        start, seed = summary.get("final_state"), config["run"]["seed"]
        path = play(policy, market, 40, seed, start_state=start)
        values = market.action_values(path["actions"])

        def draw_paths(ax):
            for i in range(market.n_firms):
                ax.plot(values[:, i], label=f"firm {i}", drawstyle="steps-post")
            ax.set_xlabel("period")
            ax.legend(fontsize=8)

        lines += [
            "## Action paths (greedy play)",
            "",
            _figure(plt, figures / "action_paths.png", "greedy actions", draw_paths),
            "",
        ]
        if can_punish(market):
            ir = impulse_response(policy, market, horizon=15, seed=seed, start_state=start)
            after = np.array(ir["actions_after"])
            lines += [
                "## Impulse response to a one-period deviation",
                "",
                _figure(
                    plt,
                    figures / "impulse_response.png",
                    "firm 0 forced to its static best response at t=0",
                    lambda ax: (
                        [ax.plot(after[:, i], marker="o", label=f"firm {i}") for i in range(market.n_firms)],
                        ax.axhline(ir["pre_deviation_actions"][1], color="grey", lw=0.5),
                        ax.set_xlabel("periods after the deviation"),
                        ax.legend(fontsize=8),
                    ),
                ),
                "",
                f"Rivals' change next period: {ir['rival_relative_change_next_period']}; back to the "
                f"pre-deviation actions after {ir['periods_to_return']} periods; deviation profitable: "
                f"{ir['deviation_profitable']}.",
                "",
            ]
        if market.market_type == "capacity":
            capacity_policy_maps(policy, market, figures / "policy_maps.png")
            lines += ["## Investment policy against the MPE", "", "![policy maps](figures/policy_maps.png)", ""]
    out = run_dir / "report.md"
    atomic_write_text(out, "\n".join(lines))
    return out
