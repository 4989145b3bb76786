"""``nashrl evaluate`` (a checkpoint against theory) and ``nashrl report`` (a run directory as Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nashrl.analysis.evaluation import play, summarize
from nashrl.analysis.figures import EmptyFigure, Reference, Series, across_runs, line_figure, scatter_figure
from nashrl.analysis.impulse import impulse_response
from nashrl.checkpoints import CheckpointError, experiment_of, read_meta
from nashrl.config import NASH_Q_MACHINERY, RLLIB_ALGORITHMS
from nashrl.files import atomic_write_text
from nashrl.markets import make_market
from nashrl.train import read_progress, run_status


def load_policy(checkpoint: str | Path, config: dict[str, Any]):
    """The greedy joint policy stored in a checkpoint, without starting Ray."""
    from nashrl.algorithms.policies import IndependentPolicy, NashQPolicy

    path = Path(checkpoint).resolve()
    name = config["algorithm"]["name"]
    try:
        if name in RLLIB_ALGORITHMS:
            from ray.rllib.core.rl_module.rl_module import RLModule

            modules_dir = path / "learner_group" / "learner" / "rl_module"
            if name in NASH_Q_MACHINERY:
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


def evaluate_checkpoint(
    checkpoint: str | Path, steps: int | None = None, summary: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The checkpoint's long-run greedy outcome against theory, from the state training reached
    (stored in the checkpoint), with the run's seed and ``evaluation_steps`` unless ``steps``
    is given: the same numbers as the run's final summary (pass that as ``summary`` to skip
    computing it again: in games too large to enumerate it is the costly part)."""
    meta = read_meta(checkpoint)
    config, run_dir = experiment_of(checkpoint)
    policy = load_policy(checkpoint, config)
    market = make_market(config["market"])
    steps = config["run"]["evaluation_steps"] if steps is None else steps
    seed, start = config["run"]["seed"], meta.get("final_state")
    if summary is None:
        summary = summarize(policy, market, steps=steps, seed=seed, start_state=start)
    result = {"checkpoint": str(checkpoint), "meta": meta, "summary": summary}
    if not market.private_shocks:  # (with private shocks play is random: the summary compares CCPs)
        path = play(policy, market, steps, seed, start_state=start)
        result["action_path"] = market.action_values(path["actions"]).tolist()
        result["profit_path"] = path["profits"].tolist()
    if can_punish(market):
        result["impulse_response"] = impulse_response(policy, market, horizon=15, seed=seed, start_state=start)
    result["convergence"] = _convergence_time(run_dir)
    if run_dir is not None:
        status = run_status(run_dir)["status"]
        if status != "complete":
            result["warning"] = f"the run that wrote this checkpoint is incomplete (status {status})"
    return result


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


def _ccp_figure(ev: dict[str, Any], market, figures: Path) -> list[str]:
    """Every firm's learned probability of each action > 0 at every state (from the evaluation
    ``ev``, not computed again) against the closest MPE's."""
    from nashrl.theory.ccp import cached_mpe

    eq = cached_mpe(market)["equilibria"][ev["mpe_closest_equilibrium"]]
    learned, how = ev["learned_prob_active"], ev["ccp_estimate"]
    series = [Series(f"firm {i}", eq.ccp[i, :, 1:].sum(-1), learned[i]) for i in range(market.n_firms)]
    image = scatter_figure(
        figures / "ccp_vs_mpe.png",
        f"probability of being active, every state ({how.split(',')[0]})",
        "MPE",
        "learned",
        series,
    )
    return ["## Choice probabilities state by state", "", image, ""]


def capacity_policy_maps(policy, market, path: Path) -> Path:
    """Heatmaps of a firm's investment by (own, next rival's) capacity: learned policy against the
    MPE. Two firms: firm 0's map. More: one row per firm, the other rivals held at their levels in
    the MPE's most visited state (named in each title and in the data)."""
    import matplotlib.pyplot as plt

    from nashrl.theory.capacity import solve_mpe

    mpe = solve_mpe(market)
    n, k = market.n_firms, market.levels
    index = {tuple(int(x) for x in state): row for row, state in enumerate(market.state_list)}
    mode = [int(x) for x in market.state_list[int(np.argmax(mpe.ergodic(market)))]]
    invest = mpe.expected_investment(market.grids[0])
    firms = [0] if n == 2 else list(range(n))
    maps = []
    for i in firms:
        rival = (i + 1) % n
        learned, equilibrium = np.zeros((k, k)), np.zeros((k, k))
        for own in range(k):
            for other in range(k):
                state = np.array(mode)
                state[i], state[rival] = own, other
                joint = policy.act(market.observe(state).astype(np.float32), state)
                learned[own, other] = market.grids[i][joint[i]]
                equilibrium[own, other] = invest[index[tuple(state)], i]
        held = {j: mode[j] for j in range(n) if j not in (i, rival)}
        maps.append({"firm": i, "rival": rival, "held": held, "learned": learned, "mpe": equilibrium})
    fig, axes = plt.subplots(len(maps), 2, figsize=(8, 3.4 if len(maps) == 1 else 3.9 * len(maps)), squeeze=False)
    if len(maps) > 1:
        fig.subplots_adjust(hspace=0.55)
    mpe_title = "MPE" if mpe.converged else f"MPE NOT CONVERGED (BR gain {mpe.best_response_gain:.2g})"
    for row, m in zip(axes, maps):
        held = ", ".join(f"firm {j} at {level}" for j, level in m["held"].items())
        for ax, data, title in zip(row, (m["learned"], m["mpe"]), ("learned", mpe_title)):
            im = ax.imshow(data, origin="lower", vmin=market.grids[0].min(), vmax=market.grids[0].max(), cmap="viridis")
            ax.set_xlabel(f"firm {m['rival']}'s capacity level")
            ax.set_ylabel("own capacity level")
            ax.set_title(f"firm {m['firm']} investment: {title}" + (f"\n({held})" if held else ""), fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="investment")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    data = {
        "maps": [{**m, "learned": m["learned"].tolist(), "mpe": m["mpe"].tolist()} for m in maps],
        "mpe_converged": bool(mpe.converged),
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(data))
    return path


#: How each logged metric is labelled, and which theory lines give it meaning.
METRICS: dict[str, tuple[str, list[tuple[str, float]]]] = {
    "eval/max_grid_steps_to_nash": ("grid steps to Nash / SPE (worst firm)", [("on the equilibrium", 0.0)]),
    "eval/profit_gain": ("profit gain Delta", [("Nash (Delta = 0)", 0.0), ("joint profit (Delta = 1)", 1.0)]),
    "eval/stage_nash_gap": ("stage Nash gap (profit per period)", [("Nash (gap 0)", 0.0)]),
    "eval/one_step_deviation_gain": ("one-step deviation gain (value)", [("MPE (gain 0)", 0.0)]),
    "eval/dynamic_nash_gap": ("dynamic Nash gap (value)", [("MPE (gap 0)", 0.0)]),
    "eval/dynamic_nash_gap_relative": ("dynamic Nash gap / mean |value|", [("MPE (gap 0)", 0.0), ("target 1%", 0.01)]),
    "eval/mean_grid_steps_to_state_nash": ("grid steps to the state's Nash (mean)", [("on the equilibrium", 0.0)]),
    "eval/max_grid_steps_to_state_nash": (
        "grid steps to the state's Nash (worst state)",
        [("on the equilibrium", 0.0), ("target: one step", 1.0)],
    ),
    "eval/state_stage_gap_relative": (
        "largest deviation gain / mean profit",
        [("Nash in every state", 0.0), ("target 1%", 0.01)],
    ),
    "eval/state_following_slope": (
        "slope of the policy on the state's Nash",
        [("follows the state's Nash", 1.0), ("ignores the state", 0.0)],
    ),
    "eval/mpe_mean_investment_gap": ("|investment - MPE| (mean over states)", [("MPE", 0.0)]),
    "eval/ergodic_investment": ("long-run mean investment (greedy)", []),
    "eval/ergodic_active_firms": ("long-run mean number of active firms", []),
    "eval/ergodic_entries": ("long-run entries per period", []),
    "eval/mpe_ergodic_share_equal": (
        "share of states played as the MPE",
        [("MPE", 1.0), ("target 95%", 0.95)],
    ),
    "eval/mpe_ergodic_share_near": (
        "share within 0.1% of value of the MPE's choice",
        [("MPE", 1.0)],
    ),
    "eval/mpe_ergodic_stage_loss": ("stage loss / mean |value| (ergodic mean)", [("MPE", 0.0)]),
    "eval/mpe_max_ccp_diff": (
        "largest |CCP - MPE| over visited states",
        [("MPE", 0.0), ("target 0.02 (entry_exit)", 0.02)],
    ),
    "eval/mpe_mean_ccp_diff": ("|CCP - MPE|, ergodic mean", [("MPE", 0.0)]),
    "exploration": ("exploration rate (epsilon or temperature)", []),
    "episode_return_mean": ("episode return, all firms (scaled rewards)", []),
}


def _label(key: str) -> tuple[str, list[tuple[str, float]]]:
    if key in METRICS:
        return METRICS[key]
    if key.endswith("loss"):
        return (f"TD loss of {key.split('/')[0]} (scaled rewards)", [])
    return (key, [])


CONCEPT_NAMES = {
    "nash": "Nash",
    "grid_nash": "Nash on the grid",
    "cartel": "cartel",
    "joint_profit": "joint profit",
    "subgame_perfect": "subgame perfect",
    "grid_subgame_perfect": "subgame perfect on the grid",
}


def _market_references(key: str, ev: dict[str, Any]) -> list[Reference]:
    """Theory lines of a metric that depend on the market (the MPE's long-run investment)."""
    if key == "eval/ergodic_investment" and "mpe_ergodic_investment" in ev:
        return [Reference("MPE", float(np.mean(ev["mpe_ergodic_investment"])))]
    name = key.removeprefix("eval/")
    if name in ("ergodic_active_firms", "ergodic_entries") and f"mpe_{name}" in ev:
        return [Reference("MPE", float(ev[f"mpe_{name}"]))]
    return []


def _profit_references(ev: dict[str, Any]) -> list[Reference]:
    """Nash and collusive profits (per firm, or one line when firms are symmetric)."""
    refs = []
    for c in ev.get("comparisons", []):
        if c["concept"] not in ("nash", "cartel", "joint_profit", "subgame_perfect"):
            continue
        profits = np.asarray(c["profits"], float)
        if np.allclose(profits, profits[0]):
            refs.append(Reference(f"{CONCEPT_NAMES[c['concept']]} profit", float(profits[0])))
        else:
            refs += [
                Reference(f"{CONCEPT_NAMES[c['concept']]} profit, firm {i}", float(p), firm=i)
                for i, p in enumerate(profits)
            ]
    return refs


def _action_references(
    ev: dict[str, Any], concepts=("nash", "grid_nash", "cartel", "joint_profit", "grid_subgame_perfect")
) -> list[Reference]:
    refs = []
    for c in ev.get("comparisons", []):
        if c["concept"] not in concepts:
            continue
        actions = np.asarray(c["actions"], float)
        if np.allclose(actions, actions[0]):
            refs.append(Reference(CONCEPT_NAMES.get(c["concept"], c["concept"]), float(actions[0])))
        else:
            name = CONCEPT_NAMES.get(c["concept"], c["concept"])
            refs += [Reference(f"{name}, firm {i}", float(a), firm=i) for i, a in enumerate(actions)]
    return refs


def _load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
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
    return summary, read_progress(run_dir), status


def write_report(run_dirs: str | Path | list[str | Path], out_dir: str | Path | None = None) -> Path:
    """Markdown report of one run, or of several runs of one experiment (seeds): learning curves
    (mean and min-max band across runs) with their theory lines, the greedy policy against
    theory per run, and for the first run action paths, the impulse response (where memory
    allows punishment) and policy maps against the MPE (capacity game). Written to ``out_dir``
    (default: the first run directory) as ``report.md`` with ``figures/``."""
    dirs = [Path(d) for d in (run_dirs if isinstance(run_dirs, (list, tuple)) else [run_dirs])]
    if not dirs:
        raise CheckpointError("run_dir: expected at least one run directory")
    runs = [(d, *_load_run(d)) for d in dirs]
    out_dir = Path(out_dir) if out_dir is not None else dirs[0]
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    title = dirs[0].name if len(dirs) == 1 else f"{len(dirs)} runs of {dirs[0].parent.name}"
    lines = [f"# Run report: {title}", ""]
    for d, _, rows, status in runs:
        if status != "complete":
            lines += [f"**Warning: run {d.name} is incomplete (status {status}).**", ""]
        if not rows:
            lines += [f"No training progress was logged for {d.name} (progress.jsonl missing or empty).", ""]
    first_ev = runs[0][1]["evaluation"]
    lines += _learning_curves(runs, figures, first_ev)
    for d, summary, _, _ in runs:
        lines += _policy_table(d.name if len(runs) > 1 else None, summary["evaluation"])
    lines += _policy_figures(runs[0][1], figures)
    out = out_dir / "report.md"
    atomic_write_text(out, "\n".join(lines))
    return out


def _learning_curves(runs, figures: Path, ev: dict[str, Any]) -> list[str]:
    keys = sorted({k for _, _, rows, _ in runs for r in rows for k in r})

    def curves(key):
        out = []
        for _, _, rows, _ in runs:
            x = np.array([r.get("env_steps", np.nan) for r in rows], float)
            y = np.array([r.get(key, np.nan) if isinstance(r.get(key), (int, float)) else np.nan for r in rows], float)
            out.append((x, y))
        return out

    lines = []
    learning = [k for k in keys if k.endswith("loss") or k in ("episode_return_mean", "exploration")]
    profit_keys = [k for k in keys if k.endswith("/mean_profit")]
    theory = [k for k in keys if k.startswith("eval/")]
    sections = [("Learning curves", learning), ("Equilibrium metrics over training", theory)]
    for heading, group in sections:
        block = []
        for key in group:
            ylabel, refs = _label(key)
            try:
                block.append(
                    line_figure(
                        figures / f"{key.replace('/', '_')}.png",
                        key,
                        "env steps",
                        ylabel,
                        [across_runs(curves(key), key.split("/")[-1])],
                        [Reference(label, y) for label, y in refs] + _market_references(key, ev),
                    )
                )
            except EmptyFigure:
                block.append(f"({key}: no finite values logged)")
        if block:
            lines += [f"## {heading}", "", *block, ""]
    if profit_keys:
        series = [across_runs(curves(k), k.split("/")[0].replace("_", " ")) for k in profit_keys]
        try:
            lines += [
                "## Profits over training",
                "",
                line_figure(
                    figures / "mean_profit.png",
                    "mean profit per period (training play, exploration included)",
                    "env steps",
                    "profit per period",
                    series,
                    _profit_references(ev),
                ),
                "",
            ]
        except EmptyFigure:
            pass
    return lines


def _ccp_table(name: str | None, ev: dict[str, Any]) -> list[str]:
    """Games with private shocks: the learned CCPs against the closest MPE."""
    if "mpe_note" in ev and "dynamic_nash_gap" not in ev:
        return [f"## Learned choice probabilities{'' if name is None else f': {name}'}", "", ev["mpe_note"], ""]
    gap = ev["dynamic_nash_gap"]
    lines = [f"## Learned choice probabilities against the MPE{'' if name is None else f': {name}'}", ""]
    if "mpe_note" in ev:  # a game too large for the joint tables: factored best responses
        lines += [
            ev["mpe_note"] + (" (gap: firm 0; the others equal it by symmetry)" if gap.get("by_symmetry") else ""),
            "",
        ]
    lines += [
        "| measure | value |",
        "|---|---|",
        f"| MPE found | {ev['mpe_equilibria']} (closest: #{ev.get('mpe_closest_equilibrium', '-')}) |",
        f"| largest CCP difference over visited states | {ev.get('mpe_max_ccp_diff', float('nan')):.4f} |",
        f"| ergodic mean CCP difference | {ev.get('mpe_mean_ccp_diff', float('nan')):.4f} |",
        f"| dynamic Nash gap (money; relative) | {gap['dynamic_nash_gap']:.4g}; {gap['relative']:.3g} |",
        f"| learned CCPs | {ev['ccp_estimate']} |",
        "",
    ]
    return lines


def _policy_table(name: str | None, ev: dict[str, Any]) -> list[str]:
    if "ccp_estimate" in ev:
        return _ccp_table(name, ev)
    lines = [f"## Greedy policy against theory{'' if name is None else f': {name}'}", ""]
    lines += [
        "| concept | actions | profits | grid steps away |",
        "|---|---|---|---|",
        f"| learned (long run) | {ev['final_actions']} | {ev['mean_profit']} | |",
    ]
    for c in ev["comparisons"]:
        lines.append(f"| {c['concept']} | {c['actions']} | {c['profits']} | {c['grid_steps']} |")
    lines.append("")
    facts = []
    cycle = ev.get("long_run", {})
    if cycle.get("cycle_length") is not None:
        facts.append(f"limit cycle of {cycle['cycle_length']} period(s), reached after {cycle['periods_to_cycle']}")
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
    return lines + [""]


def _policy_figures(summary: dict[str, Any], figures: Path) -> list[str]:
    checkpoint = summary.get("checkpoint")
    if not (checkpoint and Path(checkpoint).is_dir()):
        return []
    config, _ = experiment_of(checkpoint)
    market = make_market(config["market"])
    ev = summary["evaluation"]
    if market.private_shocks:  # the evaluation already holds the learned CCPs
        return _ccp_figure(ev, market, figures) if "mpe_note" not in ev else []
    policy = load_policy(checkpoint, config)
    start, seed = summary.get("final_state"), config["run"]["seed"]
    path = play(policy, market, 40, seed, start_state=start)
    values = market.action_values(path["actions"])
    periods = np.arange(len(values))
    unit = market.action_label
    lines = [
        "## Greedy play from the state training reached",
        "",
        line_figure(
            figures / "action_paths.png",
            f"greedy {unit}s",
            "period",
            unit,
            [Series(f"firm {i}", periods, values[:, i], steps=True) for i in range(market.n_firms)],
            _action_references(ev),
        ),
        "",
    ]
    if can_punish(market):
        ir = impulse_response(policy, market, horizon=15, seed=seed, start_state=start)
        after = np.array(ir["actions_after"])
        t = np.arange(len(after))
        refs = [
            Reference(f"before the deviation, firm {i}", y, firm=i) for i, y in enumerate(ir["pre_deviation_actions"])
        ]
        lines += [
            "## Impulse response to a one-period deviation",
            "",
            line_figure(
                figures / "impulse_response.png",
                f"firm {ir['deviator']} forced to its static best response at t = 0",
                "periods after the deviation",
                unit,
                [Series(f"firm {i}", t, after[:, i]) for i in range(market.n_firms)],
                refs + _action_references(ev, ("nash",)),
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
    return lines
