"""How sharply the capacity game's MPE determines each firm's investment (not a test).

For every state the MPE's *margin* for firm i is the payoff, in the MPE's own stage game, of its
equilibrium investment minus that of its best other investment (rivals at their MPE play). A
learner must resolve Q to that precision to reproduce the MPE's choice there. Prints the ergodic
mass of states whose smallest margin (over firms) is below each threshold, firm by firm, and the
most visited near-indifferent states:

    python benchmarks/capacity_margins.py configs/capacity_3firm.yaml
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a capacity market config")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.001, 0.01, 0.05, 0.1, 0.2, 0.5])
    args = parser.parse_args()

    from nashrl.config import load_config
    from nashrl.markets import make_market
    from nashrl.theory.capacity import own_action_payoffs, solve_mpe

    market = make_market(load_config(args.config)["market"])
    mpe = solve_mpe(market)
    weights = mpe.ergodic(market)
    payoffs = own_action_payoffs(market, mpe.values, mpe.strategies)
    margins = np.stack([np.sort(p, axis=1)[:, -1] - np.sort(p, axis=1)[:, -2] for p in payoffs], axis=1)
    scale = np.abs(mpe.values).mean()
    print(f"MPE: {mpe.method}, converged {mpe.converged}; mean |value| {scale:.2f}; {len(weights)} states")
    print("| margin below (money) | relative to the mean abs value | ergodic mass, any firm | by firm |")
    print("|---:|---:|---:|---|")
    for t in args.thresholds:
        by_firm = ", ".join(f"{weights[margins[:, i] < t].sum():.3f}" for i in range(margins.shape[1]))
        print(f"| {t:g} | {t / scale:.1e} | {weights[margins.min(1) < t].sum():.3f} | {by_firm} |")
    print("\nmost visited states with a margin below 0.01: state, ergodic weight, MPE investments, margins")
    shown = 0
    for k in np.argsort(-weights):
        if margins[k].min() < 0.01 and shown < 8:
            invest = [float(market.grids[i][s.argmax()]) for i, s in enumerate(row[k] for row in mpe.strategies)]
            print(market.state_list[k], f"{weights[k]:.4f}", invest, np.round(margins[k], 5).tolist())
            shown += 1


if __name__ == "__main__":
    main()
