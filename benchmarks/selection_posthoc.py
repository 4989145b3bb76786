"""Post-hoc equilibrium selection on trained Deep Nash-Q policies (not a test).

    python benchmarks/selection_posthoc.py RUN_DIR [RUN_DIR ...]

For each run (a folder with summary.json, whose checkpoint holds a joint-head Nash-Q module of a
two-firm market with state benchmarks, e.g. logit_segments), the greedy policy is re-played at the
evaluation's states with the learned stage game's equilibrium chosen by other rules than the one
it was trained with, and scored as the evaluation scores it (worst grid steps to the state's Nash
over the ``nash`` and ``grid_nash`` rows, largest one-period deviation gain relative to mean
profit):

- the solver's rules (``pareto``, as trained; ``first``, the lowest-index pure equilibrium);
- ``strict``: among the learned game's pure equilibria, the one with the largest *strictness
  margin* :math:`\\min_i [Q_i(a) - \\max_{a_i' \\ne a_i} Q_i(a_i', a_{-i})]`, the payoff perturbation it
  survives (a mixed equilibrium has margin 0; where there is no pure one the solver's choice).
  Harsanyi and Selten's (1988) risk dominance compares the product of these deviation losses in
  2x2 games.

It also counts the states where the trained rule's price is two or more grid steps from the
state's grid Nash, and on which side. Only the evaluation's choice changes here: the policies
were trained with Pareto-selected targets.
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
from nashrl.equilibrium import pure_equilibrium_mask, solve
from nashrl.markets import make_market


def strictness(q: torch.Tensor, profile: tuple[int, ...]) -> float:
    """``min_i`` of firm i's loss from its best unilateral deviation at the pure ``profile`` of ``q [N, A...]``."""
    margins = []
    for i in range(q.shape[0]):
        own = q[(i, *profile[:i], slice(None), *profile[i + 1 :])]
        others = torch.cat([own[: profile[i]], own[profile[i] + 1 :]])
        margins.append(float(own[profile[i]] - others.max()))
    return min(margins)


class Reselected:
    """The module's greedy joint action with the learned stage game's equilibrium chosen by ``rule``."""

    def __init__(self, module, rule: str):
        self.module, self.rule = module, rule

    def act(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.module.policy_q_values(torch.as_tensor(obs, dtype=torch.float32)[None]).double()
        if self.rule == "strict":
            pure = [tuple(p) for p in torch.nonzero(pure_equilibrium_mask(q)[0]).tolist()]
            if pure:
                return np.array(max(pure, key=lambda p: strictness(q[0], p)))  # (ties: the first)
            rule = "pareto"
        else:
            rule = self.rule
        return np.array([int(s[0].argmax()) for s in solve(q, selection=rule).strategies])


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
