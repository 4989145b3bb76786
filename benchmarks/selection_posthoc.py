"""Post-hoc equilibrium selection on trained Deep Nash-Q policies (not a test).

    python benchmarks/selection_posthoc.py RUN_DIR [RUN_DIR ...]

For each run (a folder with summary.json, whose checkpoint holds a joint-head Nash-Q module of a
two-firm market with state benchmarks, e.g. logit_segments), the greedy policy is re-played at the
evaluation's states with the learned stage game's equilibrium chosen by other rules than the one
it was trained with, and scored as the evaluation scores it (worst grid steps to the state's Nash
over the ``nash`` and ``grid_nash`` rows, largest one-period deviation gain relative to mean
profit):

- ``pareto`` (as trained), ``first`` (the lowest-index pure equilibrium: the lowest prices) and
  ``strict`` (the largest strictness margin, the smallest loss from a unilateral deviation:
  :func:`nashrl.equilibrium.pure.strictness_margins`), as :func:`nashrl.equilibrium.solve`
  selects them.

It also counts, for each rule, the firms whose price is two or more grid steps from the state's
grid Nash, and on which side. Only the evaluation's choice changes: the networks are those trained
(with the run's own rule in their targets and exploration).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from nashrl.analysis.evaluation import _state_comparisons, benchmarks, state_stage_gap
from nashrl.analysis.report import load_policy
from nashrl.checkpoints import experiment_of
from nashrl.equilibrium import solve
from nashrl.markets import make_market


class Reselected:
    """The module's greedy joint action with the learned stage game's equilibrium chosen by ``rule``."""

    def __init__(self, module, rule: str):
        self.module, self.rule = module, rule

    def act(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.module.policy_q_values(torch.as_tensor(obs, dtype=torch.float32)[None]).double()
        return np.array([int(s[0].argmax()) for s in solve(q, selection=self.rule).strategies])


def score(policy, market, rows) -> dict:
    comparisons = _state_comparisons(policy, market, rows)
    worst = max(c["max_grid_steps"] for c in comparisons)
    return {"worst_steps": worst, "gain": state_stage_gap(comparisons)["relative"], "comparisons": comparisons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (with summary.json)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = []
    far = "firms 2+ steps from the grid Nash: above / below"
    print(f"| run | rule | worst state, grid steps | deviation gain | both targets | {far} |")
    print("|---|---|---:|---:|---|---|")
    for run in args.runs:
        checkpoint = json.loads(Path(run, "summary.json").read_text())["checkpoint"]
        config, _ = experiment_of(checkpoint)
        module = load_policy(checkpoint, config).module
        market = make_market(config["market"])
        rows = [r for r in benchmarks(market) if "state_vector" in r and r["concept"] in ("nash", "grid_nash")]
        for rule in ("pareto", "first", "strict"):
            out = score(Reselected(module, rule), market, rows)
            far = [  # (policy, benchmark) of each firm two or more grid steps from the state's grid Nash
                (p, b)
                for c in out["comparisons"]
                if c["concept"] == "grid_nash"
                for p, b, steps in zip(c["policy_actions"], c["benchmark_actions"], c["grid_steps"])
                if steps >= 2
            ]
            above, below = sum(p > b for p, b in far), sum(p < b for p, b in far)
            met = out["worst_steps"] <= 1 and out["gain"] <= 0.01
            print(
                f"| {Path(run).name} | {rule} | {out['worst_steps']} | {100 * out['gain']:.2f}% | "
                f"{'yes' if met else 'no'} | {above} / {below} |",
                flush=True,
            )
            results.append({"run": run, "rule": rule, "worst_steps": out["worst_steps"], "gain": out["gain"]})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
