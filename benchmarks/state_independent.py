"""How far a state-independent policy gets in a market compared state by state with the static Nash
(not a test): every firm charging the same grid action in every evaluated state
(``market.benchmark_states()``), its worst-state grid steps to the state's Nash and its largest
one-period deviation gain relative to its mean profit, the numbers of the targets "within one grid
step of the state's Nash" and "deviation gain at most 1%":

    python benchmarks/state_independent.py configs/logit_segments.yaml

Where a constant meets both, those targets alone do not show that a policy follows the state
(``eval/state_following_slope`` does).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a market config whose benchmark rows hold per-state Nash equilibria")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, as nashrl train --set")
    args = parser.parse_args()

    from nashrl.analysis.metrics import deviation_gap, grid_steps
    from nashrl.config import load_config
    from nashrl.markets import make_market

    market = make_market(load_config(args.config, args.set)["market"])
    rows = [r for r in market.benchmarks() if r["concept"] == "nash" and "state_vector" in r]
    if not rows:
        raise SystemExit(f"{args.config}: the market has no per-state Nash rows to compare with")
    sizes = market.action_sizes
    print(f"{market.market_type}: {len(rows)} states; every firm at one grid action in every state")
    print(
        "| action | worst grid steps to the state's Nash | largest deviation gain / mean profit | grid equilibrium at |"
    )
    print("|---:|---:|---:|---:|")
    for a in range(min(sizes)):
        joint = np.full(market.n_firms, a)
        steps, gains, profits = [], [], []
        for row in rows:
            state = np.asarray(row["state_vector"])
            steps.append(max(grid_steps(g, a, x) for g, x in zip(market.grids, row["actions"])))
            gains.append(max(deviation_gap(market.deviation_payoffs(state, joint), joint)[1]))
            profits.append(np.abs(market.stage_profits(state, joint[None])[0]).mean())
        value = market.action_values(joint)[0]
        equilibria = sum(g <= 1e-12 for g in gains)
        scale = float(np.mean(profits))
        gain = f"{max(gains) / scale:.2%}" if scale > 0 else "- (no profit)"
        print(f"| {value:.4g} | {max(steps)} | {gain} | {equilibria} of {len(rows)} |")


if __name__ == "__main__":
    main()
