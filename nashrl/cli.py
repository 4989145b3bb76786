"""The ``nashrl`` command: theory, train, tune, evaluate, report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nashrl.checkpoints import CheckpointError
from nashrl.equilibrium.selection import SELECTIONS
from nashrl.files import json_default
from nashrl.markets.validation import ConfigError
from nashrl.train import TrainingError


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def print_mpe_ccp(rows: list[dict[str, Any]]) -> None:
    """Games with private shocks: every MPE found, its statistics and its CCPs."""
    if rows and rows[0]["concept"] == "mpe_not_found":
        print("WARNING: no MPE found from any starting point (see --json for the attempts)")
        return
    for r in rows:
        st = r["statistics"]
        stable = {True: "stable", False: "unstable", None: "stability not computed"}[r["stable_under_iteration"]]
        print(
            f"\nMPE {r['equilibrium'] + 1} of {r['n_equilibria']} found: max |P - Psi(P)| = "
            f"{r['fixed_point_residual']:.1e}, {stable} under best-response iteration"
            + (f" (spectral radius {r['spectral_radius']:.3f})" if r["spectral_radius"] is not None else "")
        )
        print(
            f"  active firms: mean {st['mean_active']:.4f}, sd {st['sd_active']:.4f}, AR(1) "
            f"{_num(st['ar1_active'])}; entries {st['mean_entries']:.4f}, exits {st['mean_exits']:.4f} per "
            f"market-period; excess turnover {st['excess_turnover']:.4f}; corr(entries, exits) "
            f"{_num(st['corr_entries_exits'])}"
        )
        print(f"  probability of being active by firm: {_fmt(st['prob_active'])}")
        print(f"  ergodic mean value by firm: {_fmt(r['profits'])}")
        labels = r["state_labels"]
        shown = r["states"][:16]
        print(f"  CCPs of being active (first {len(shown)} of {len(r['states'])} states; --json for all):")
        print(
            f"    {' '.join(f'{lab:>14}' for lab in labels)}  "
            + " ".join(f"firm {i}" for i in range(len(r["ccp_active"])))
        )
        for k, state in enumerate(shown):
            probs = " ".join(f"{r['ccp_active'][i][k]:6.4f}" for i in range(len(r["ccp_active"])))
            print(f"    {' '.join(f'{x:>14}' for x in state)}  {probs}")


def _num(x) -> str:
    return "undefined" if x is None else f"{x:.4f}"


def print_theory(rows: list[dict[str, Any]]) -> None:
    if rows and rows[0]["concept"] in ("mpe_not_found",) or (rows and "ccp_active" in rows[0]):
        print_mpe_ccp(rows)
        return
    unverified = [r for r in rows if r.get("converged") is False]
    if unverified:
        r = unverified[0]
        print(
            f"WARNING: the MPE computation did not converge ({r['method']}); the rows marked mpe_not_converged are "
            f"an approximation whose best-response gain is {r['best_response_gain']:.3g}"
        )
    elif any("best_response_gain" in r for r in rows):
        r = next(r for r in rows if "best_response_gain" in r)
        print(f"MPE by {r['method']}, verified: best-response gain {r['best_response_gain']:.3g}")
    print(f"{'concept':<22} {'state':<24} {'actions':<28} profits")
    for row in rows:
        state = "" if row["state"] is None else str(row["state"])
        print(f"{row['concept']:<22} {state:<24} {_fmt(row['actions']):<28} {_fmt(row['profits'])}")
        if row.get("pure_equilibria") and len(row["pure_equilibria"]) > 1:
            print(f"{'':<47}all pure grid equilibria: " + ", ".join(_fmt(p) for p in row["pure_equilibria"]))


def cmd_theory(args) -> int:
    from nashrl.config import load_config
    from nashrl.markets import make_market
    from nashrl.theory.benchmarks import benchmarks

    config = load_config(args.config, args.set)
    market = make_market(config["market"])
    if args.selection == "strict" and not market.has_payoff_table:  # (solved by best replies: no joint game)
        print(
            f"error: --selection: 'strict' needs the joint stage game, which market {market.market_type!r} with "
            f"{market.n_firms} firms is solved without; expected pareto, utilitarian, egalitarian or first",
            file=sys.stderr,
        )
        return 2
    rows = benchmarks(market, selection=args.selection)
    if args.json:
        json.dump({"market": config["market"], "benchmarks": rows}, sys.stdout, indent=2, default=json_default)
        print()
    else:
        print(f"market: {market.market_type} ({market.n_firms} firms)")
        print_theory(rows)
    return 0


def print_ccp_summary(ev: dict[str, Any]) -> None:
    """Games with private shocks: learned choice probabilities against the closest MPE."""
    if "mpe_note" in ev:
        print(f"learned choice probabilities: {ev['mpe_note']}")
        if "dynamic_nash_gap" not in ev:
            return
    gap = ev["dynamic_nash_gap"]
    print(f"learned choice probabilities ({ev['ccp_estimate']}) vs {ev['mpe_equilibria']} MPE found:")
    if "mpe_max_ccp_diff" in ev:
        print(
            f"  closest MPE #{ev['mpe_closest_equilibrium']}: max |CCP difference| {ev['mpe_max_ccp_diff']:.4f} over "
            f"{ev['mpe_visited_states']} visited states, ergodic mean {ev['mpe_mean_ccp_diff']:.4f}"
        )
    print(
        f"  dynamic Nash gap (exact best response to rivals' CCPs) {gap['dynamic_nash_gap']:.4g}, relative "
        f"{gap['relative']:.3g}, ergodic-weighted relative {gap['ergodic_relative']:.3g}"
        + (" (firm 0; the others equal it by symmetry)" if gap.get("by_symmetry") else "")
    )


def print_policy_summary(ev: dict[str, Any]) -> None:
    """The greedy policy's outcome next to every benchmark (train and evaluate print this)."""
    if "ccp_estimate" in ev:
        print_ccp_summary(ev)
        return
    if ev.get("stage_nash_gap") is not None:
        gap = f"stage Nash gap {ev['stage_nash_gap']:.4g}"
    else:  # dynamic market: one-period profits are not the equilibrium's stage game
        gap = f"one-step deviation gain (value sense) {ev.get('one_step_deviation_gain', float('nan')):.4g}"
    print(f"greedy joint policy: actions {_fmt(ev['final_actions'])}, mean profits {_fmt(ev['mean_profit'])}, {gap}")
    for c in ev["comparisons"]:
        print(
            f"  vs {c['concept']:<22} actions {_fmt(c['actions'])}  profits {_fmt(c['profits'])}  "
            f"grid steps away {c['grid_steps']}"
        )
    for c in ev.get("state_comparisons", []):
        print(f"  at {c['state']}: {c['concept']} {_fmt(c['benchmark_actions'])}, learned {_fmt(c['policy_actions'])}")
    following = ev.get("state_following")  # (summaries written before 2026-12-05 lack it)
    if following is not None:
        slope = "-" if following["slope"] is None else f"{following['slope']:.2f}"
        print(
            f"  across the {following['states']} states: slope of the policy on the state's Nash {slope} (1: follows"
            f" it, 0: ignores the state); the Nash moves {following['nash_range_steps']} grid steps; the best"
            f" state-independent action is {following['best_constant_steps']} step(s) from it in the worst state"
        )
    if ev.get("profit_gain") is not None:
        per_firm = ", ".join("-" if d is None else f"{d:.3f}" for d in ev.get("profit_gain_per_firm", []))
        print(
            f"  profit gain Delta = {ev['profit_gain']:.3f} on firm-average profits "
            f"(0 = Nash, 1 = joint-profit); per firm ({per_firm})"
        )
    elif "profit_gain_note" in ev:
        print(f"  profit gain Delta {ev['profit_gain_note']}")
    if "dynamic_nash_gap" in ev:
        gap = ev["dynamic_nash_gap"]
        print(
            f"  dynamic Nash gap (best response to rivals' policy) {gap['dynamic_nash_gap']:.4g}, "
            f"relative {gap['relative']:.3g}"
        )
    if "mpe_max_investment_gap" in ev:
        from nashrl.analysis.evaluation import NEAR_MPE

        flag = "" if ev.get("mpe_converged", True) else " (WARNING: that MPE did not converge: approximate benchmark)"
        near = ev.get("mpe_ergodic_share_near")  # (summaries written before 2026-12-05 lack it)
        print(
            f"  investment vs MPE: max gap {ev['mpe_max_investment_gap']:.3g}, mean {ev['mpe_mean_investment_gap']:.3g}"
            f", equal to the MPE in {ev['mpe_ergodic_share_equal']:.1%} of states (ergodic weights)"
            + (f", within {NEAR_MPE:.1%} of value of the MPE's choice in {near:.1%}" if near is not None else "")
            + f"; MPE best-response gain {ev.get('mpe_best_response_gain', 0.0):.3g}{flag}"
        )


def print_summary(summary: dict[str, Any]) -> None:
    fm = summary["final_metrics"]
    print(f"\nrun: {summary['run_dir']}\ncheckpoint: {summary['checkpoint']}")
    print(
        f"env steps: {int(fm.get('env_steps', 0))}, iterations: {int(fm.get('iteration', 0))}, "
        f"wall time: {summary['wall_time_s']:.1f} s"
    )
    print_policy_summary(summary["evaluation"])


def cmd_train(args) -> int:
    from nashrl.config import load_config
    from nashrl.train import run_training

    config = load_config(args.config, args.set)
    summary = run_training(config, resume=args.resume, quiet=args.quiet)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        print_summary(summary)
    return 0


def cmd_tune(args) -> int:
    from nashrl.config import load_config
    from nashrl.tune import run_tune

    config = load_config(args.config, args.set)
    if "tune" not in config:
        raise ConfigError("tune: the config has no tune section (num_samples, search_space, ...)")
    result = run_tune(config)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_evaluate(args) -> int:
    from nashrl.analysis.report import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, steps=args.steps)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=float)
        print()
    else:
        from nashrl.analysis.report import print_evaluation

        print_evaluation(result)
    return 0


def cmd_simulate(args) -> int:
    import time

    from nashrl.config import load_config
    from nashrl.markets import make_market
    from nashrl.panels import panel_metadata, policy_for_panel, simulate, write_panel

    config = load_config(args.config, args.set)
    market = make_market(config["market"])
    if not market.private_shocks:
        raise ConfigError(f"market.type: simulate needs a game with private shocks, got {market.market_type!r}")
    start = time.perf_counter()
    ccp, policy = policy_for_panel(market, args.policy, config["market"])
    panel = simulate(
        market,
        ccp,
        args.markets,
        args.periods,
        seed=args.seed,
        profits=args.profits,
        initial=args.initial,
        burn_in=args.burn_in,
    )
    meta = panel_metadata(
        market,
        config["market"],
        policy,
        seed=args.seed,
        markets=args.markets,
        periods=args.periods,
        initial=args.initial,
        burn_in=args.burn_in,
    )
    path = write_panel(panel, args.out, meta)
    print(
        f"{len(panel):,} rows ({args.markets} markets x {args.periods} periods x {market.n_firms} firms) -> {path} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_estimate(args) -> int:
    from nashrl.config import load_config
    from nashrl.inverse import DeepSettings, InverseModel, bootstrap, estimate
    from nashrl.panels import read_panel

    config = load_config(args.config, args.set)
    model = InverseModel.from_market_config(config["market"], _fixes(args.fix))
    deep_settings = DeepSettings.from_mapping(_key_values(args.deep, "--deep")) if args.deep else None
    result = estimate(model, args.panel, method=args.method, first_stage=args.first_stage, deep_settings=deep_settings)
    if args.bootstrap:  # the replications in parallel over Ray (local instance, or RAY_ADDRESS's cluster)
        from nashrl.ray_session import init_ray

        panel, _ = read_panel(args.panel, model.market)
        init_ray(config)
        result = bootstrap(
            result,
            model,
            panel,
            args.bootstrap,
            seed=args.seed,
            first_stage=args.first_stage,
            parallel=True,
            deep_settings=deep_settings,
        )
    if args.csv:
        from pathlib import Path

        from nashrl.files import atomic_write

        if not Path(args.csv).parent.is_dir():
            raise ConfigError(f"--csv: no folder {str(Path(args.csv).parent)!r}")
        with atomic_write(args.csv) as handle:
            result.table().to_csv(handle)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=json_default)
        print()
    else:
        print(result.summary())
    return 0 if result.converged else 3


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{flag} {item}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _fixes(items: list[str]) -> dict[str, float]:
    fix = {}
    for name, value in _key_values(items, "--fix").items():
        try:
            fix[name] = float(value)
        except ValueError as err:
            raise ConfigError(f"--fix {name}: expected a number, got {value!r}") from err
    return fix


def cmd_montecarlo(args) -> int:
    from nashrl.config import load_config
    from nashrl.inverse.montecarlo import run_montecarlo

    config = load_config(args.config, args.set)
    path = run_montecarlo(
        config,
        args.replications,
        args.markets,
        args.out,
        periods=args.periods,
        methods=args.methods,
        fix=_fixes(args.fix),
        resume=args.resume,
        workers=args.workers,
        tabulate=args.tabulate,
    )
    print(path.read_text())
    print(f"written to {path}")
    return 0


def cmd_report(args) -> int:
    from nashrl.analysis.report import write_report

    path = write_report(args.run_dir, out_dir=args.out)
    print(f"report written to {path}")
    return 0


def cmd_suite(args) -> int:
    from nashrl.experiments import run_suite

    path = run_suite(args.suite, only=args.only, resume=args.resume)
    print(f"results written to {path}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nashrl", description="Deep Nash Q-learning in oligopoly markets on RLlib")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("config", help="experiment YAML (market, algorithm, run, tune)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value, e.g. --set algorithm.lr=0.01 (repeatable)",
        )

    p = sub.add_parser("theory", help="print the theory benchmarks of the config's market")
    with_config(p)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--selection", default="pareto", choices=SELECTIONS, help="equilibrium selection for grid equilibria"
    )
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser("simulate", help="simulate a panel of play in a game with private shocks")
    with_config(p)
    p.add_argument("--markets", type=_positive_int, required=True, help="number of markets M")
    p.add_argument("--periods", type=_positive_int, required=True, help="periods per market T")
    p.add_argument("--policy", default="mpe", help="mpe (the first MPE found), mpe:<k>, or a checkpoint directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profits", action="store_true", help="add each firm's realised profit (shock included)")
    p.add_argument("--initial", default="ergodic", choices=("ergodic", "market"), help="initial states")
    p.add_argument("--burn-in", type=int, default=0, metavar="K", help="periods played before the first recorded")
    p.add_argument("--out", required=True, help="PANEL.parquet or PANEL.csv")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("estimate", help="estimate the profit coefficients from a panel of play (inverse)")
    with_config(p)
    p.add_argument("panel", help="PANEL.parquet or PANEL.csv (the schema of nashrl simulate)")
    p.add_argument("--method", default="npl", choices=("two_step", "npl", "mle", "deep"))
    p.add_argument("--deep", action="append", default=[], metavar="KEY=VALUE", help="a deep-estimator setting")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="fix a coefficient (repeatable)")
    p.add_argument("--first-stage", default="auto", choices=("auto", "frequency", "logit"), help="first-stage CCPs")
    p.add_argument("--bootstrap", type=_positive_int, default=None, metavar="B", help="bootstrap SEs, B replications")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", help="also write the coefficient table to this CSV file")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("montecarlo", help="Monte Carlo of the inverse estimators over Ray (simulate + estimate)")
    with_config(p)
    p.add_argument("--replications", type=_positive_int, required=True)
    p.add_argument("--markets", type=_positive_int, required=True)
    p.add_argument("--periods", type=_positive_int, default=1)
    p.add_argument("--methods", nargs="+", default=None, help="default: every method that applies to the game")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--out", required=True, help="folder for replications.jsonl, montecarlo.md and .json")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the replications already in --out (same design), run the missing seeds and methods",
    )
    p.add_argument("--workers", type=_positive_int, default=None, help="replications in flight (default: all CPUs)")
    p.add_argument(
        "--tabulate", action="store_true", help="run nothing: report the replications logged in --out (same design)"
    )
    p.set_defaults(func=cmd_montecarlo)

    p = sub.add_parser("train", help="train, checkpoint and compare the greedy policy with theory")
    with_config(p)
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint directory")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("tune", help="Ray Tune search over the config's tune.search_space")
    with_config(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("evaluate", help="greedy policy of a checkpoint against theory")
    p.add_argument("checkpoint")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="periods simulated in random markets (default: the run's evaluation_steps)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("suite", help="run an experiment suite and write its result tables")
    p.add_argument("suite", help="suite YAML, e.g. configs/experiments/suite.yaml")
    p.add_argument("--only", nargs="+", help="run only these experiments (by name)")
    p.add_argument("--resume", action="store_true", help="keep the runs in the raw output and run the rest")
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser("report", help="Markdown report with figures of a run, or of several runs (seeds)")
    p.add_argument("run_dir", nargs="+", help="run directories; several: curves as mean and band across them")
    p.add_argument("--out", help="folder for report.md and figures/ (default: the first run directory)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, TrainingError) as err:
        print(f"nashrl: error: {err}", file=sys.stderr)
        return 2


def console_main() -> None:
    """The ``nashrl`` command: :func:`main`, then exit. When this process started a local Ray
    instance, it leaves at once (``os._exit``, every output already written and flushed) and its
    watchdog ends the instance's processes in the background (:mod:`nashrl.watchdog`), instead of
    ``ray.shutdown()`` and the interpreter's teardown keeping the command ~3 s past its results."""
    import os

    from nashrl.ray_session import owns_local_instance

    code = main()
    if owns_local_instance():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
