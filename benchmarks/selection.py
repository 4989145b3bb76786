"""How often equilibrium selection misses a better equilibrium, per search setting (not a test).

    python benchmarks/selection.py [--games 2000] [--seed 12345]

For random two-player games with small integer payoffs (so that several equilibria are
common) of sizes 3x3 to 6x6, selects with ``pareto`` and ``utilitarian`` under each
``search_mixed`` setting of :func:`nashrl.equilibrium.solve` and counts the games in which
the selected equilibrium is worse than one found by support enumeration (``"all"``):
Pareto-dominated by it (``pareto``), or of lower total payoff (``utilitarian``). Also
prints the time of each batched solve on this machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nashrl.equilibrium import solve

SIZES = ((3, 5), (4, 5), (5, 9), (6, 9))  # (actions, payoffs drawn from 0..high-1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| games | selection | search | worse than 'all' | solve time (s) |")
    print("|---|---|---|---:|---:|")
    for m, high in SIZES:
        games = torch.as_tensor(rng.integers(0, high, size=(args.games, 2, m, m)).astype(float))
        for selection in ("pareto", "utilitarian"):
            found = {}
            for search in ("auto", "always", "labels", "all"):
                start = time.perf_counter()
                values = solve(games, selection=selection, search_mixed=search).values.numpy()
                found[search] = (values, time.perf_counter() - start)
            exact = found["all"][0]
            for search, (values, seconds) in found.items():
                if selection == "pareto":
                    worse = (exact >= values - 1e-9).all(1) & (exact > values + 1e-9).any(1)
                else:
                    worse = exact.sum(1) > values.sum(1) + 1e-9
                share = f"{int(worse.sum())} of {args.games} ({worse.mean():.1%})"
                print(f"| {m}x{m} | {selection} | {search} | {share} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
