"""Time to equilibrium on the static duopolies (not a test).

    python benchmarks/convergence.py [--seeds 5] [--algorithms nash_q independent_dqn dqn tabular_nash_q tabular_q]

For each config (Cournot and Singh-Vives duopolies with the Nash action on the grid,
``memory: 0``) and algorithm, trains ``--seeds`` seeds with the config's settings
(baselines get settings matched to it by ``baseline_settings``, same env-step budget) and checks the greedy joint
policy every ``--eval-every`` env steps. Reports: seeds that end within one grid step of
Nash (every firm), and env steps / wall time at which the policy got there for good
(within one step at every later check). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np

from nashrl.algorithms.registry import baseline_settings, build_trainer
from nashrl.analysis.metrics import grid_steps
from nashrl.config import load_config, validate
from nashrl.markets import make_market
from nashrl.ray_session import start_local_ray
from nashrl.theory.benchmarks import benchmarks


def distance_to_nash(trainer, market, nash_actions) -> int:
    state = market.initial_state(np.random.default_rng(0))
    joint = trainer.policy().act(market.observe(state).astype(np.float32), state)
    return max(grid_steps(g, a, x) for g, a, x in zip(market.grids, joint, nash_actions))


def run_one(config: dict, eval_every: int) -> dict:
    market = make_market(config["market"])
    nash = next(r for r in benchmarks(market) if r["concept"] == "nash")["actions"]
    trainer = build_trainer(config)
    budget = config["run"]["stop"]["env_steps"]
    checks, started, next_eval = [], time.time(), eval_every
    try:
        while True:
            metrics = trainer.train()
            steps = metrics["env_steps"]
            if steps >= next_eval or steps >= budget:
                checks.append((steps, time.time() - started, distance_to_nash(trainer, market, nash)))
                next_eval = steps + eval_every
            if steps >= budget:
                break
    finally:
        trainer.stop()
    reached = None
    for i, (steps, wall, _) in enumerate(checks):
        if all(d <= 1 for _, _, d in checks[i:]):
            reached = (steps, wall)
            break
    return {
        "final_distance": checks[-1][2],
        "reached_steps": reached and reached[0],
        "reached_wall_s": reached and reached[1],
        "total_wall_s": checks[-1][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--configs", nargs="+", default=["configs/cournot_duopoly.yaml", "configs/singh_vives_duopoly.yaml"]
    )
    parser.add_argument(
        "--algorithms", nargs="+", default=["nash_q", "independent_dqn", "dqn", "tabular_nash_q", "tabular_q"]
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()

    start_local_ray()
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()
    results = []
    for path in args.configs:
        base = load_config(path)
        for algo in args.algorithms:
            for seed in range(args.seeds):
                config = copy.deepcopy(base)
                config["algorithm"] = baseline_settings(algo, base["algorithm"], base["run"])
                config["run"]["seed"] = seed
                config["run"]["progress"] = False
                config = validate(config)
                res = run_one(config, args.eval_every)
                res.update({"config": base["name"], "algorithm": algo, "seed": seed})
                print(json.dumps(res), flush=True)
                results.append(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(
        "\n| market | algorithm | seeds within 1 grid step at the end | env steps to get there (median, max) "
        "| wall time to get there (median s) | final grid distance per seed |"
    )
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["config"] for r in results):
        for algo in args.algorithms:
            rows = [r for r in results if r["config"] == name and r["algorithm"] == algo]
            ok = [r for r in rows if r["final_distance"] <= 1 and r["reached_steps"] is not None]
            steps = [r["reached_steps"] for r in ok]
            walls = [r["reached_wall_s"] for r in ok]
            step_txt = f"{statistics.median(steps):,.0f}, {max(steps):,.0f}" if steps else "-"
            wall_txt = f"{statistics.median(walls):.3g}" if walls else "-"
            dists = ", ".join(str(r["final_distance"]) for r in rows)
            print(f"| {name} | {algo} | {len(ok)}/{len(rows)} | {step_txt} | {wall_txt} | {dists} |")


if __name__ == "__main__":
    main()
