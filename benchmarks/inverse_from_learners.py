"""Inverse estimation from learners' play against the same from the exact MPE (not a test).

    python benchmarks/inverse_from_learners.py CHECKPOINT [--config configs/entry_exit.yaml]
        [--replications 8] [--markets 6400] [--methods two_step npl mle deep] [--json OUT]

For r = 0..R-1, simulates one panel of M markets x 1 period (ergodic initial states, seed
1000 + r) from the computed MPE and one from the trained Deep Nash-Q checkpoint (its learned
CCPs; soft Nash-Q on a game with private shocks), estimates every panel with two_step, npl, mle
and deep (or ``--methods``), and prints the mean (sd) of each coefficient over the replications that converged, against
the market's true coefficients.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nashrl.config import load_config
from nashrl.inverse import METHODS, estimate
from nashrl.markets import make_market


def study(config: str, checkpoint: str, replications: int, markets: int, folder: Path, methods) -> list[dict]:
    market = load_config(config)["market"]
    rows = []
    for source, policy in (("mpe", "mpe"), ("learners", checkpoint)):
        for r in range(replications):
            panel = folder / f"{source}_{r}.parquet"
            command = [sys.executable, "-m", "nashrl.cli", "simulate", config, "--markets", str(markets)]
            command += ["--periods", "1", "--policy", policy, "--seed", str(1000 + r), "--out", str(panel)]
            subprocess.run(command, check=True, capture_output=True)
            for method in methods:
                start = time.perf_counter()
                result = estimate(market, str(panel), method=method)
                rows.append(
                    {
                        "source": source,
                        "replication": r,
                        "method": method,
                        "params": {k: float(v) for k, v in result.params.items()},
                        "converged": bool(result.converged),
                        "seconds": time.perf_counter() - start,
                    }
                )
    return rows


def table(rows: list[dict], truth: dict[str, float], methods) -> str:
    names = list(truth)
    lines = [
        "| data | method | converged | " + " | ".join(names) + " | mean abs error of the mean |",
        "|---|---|---|" + "---|" * (len(names) + 1),
        "| truth | | | " + " | ".join(f"{truth[n]:.3f}" for n in names) + " | |",
    ]
    for source in ("mpe", "learners"):
        for method in methods:
            runs = [r for r in rows if r["source"] == source and r["method"] == method]
            done = [r for r in runs if r["converged"]]
            if not done:
                lines.append(f"| {source} | {method} | 0 / {len(runs)} | " + " | ".join("-" for _ in names) + " | - |")
                continue
            est = np.array([[r["params"][n] for n in names] for r in done])
            mean = est.mean(0)
            sd = est.std(0, ddof=1) if len(est) > 1 else np.zeros(len(names))
            error = float(np.mean(np.abs(mean - np.array([truth[n] for n in names]))))
            cells = " | ".join(f"{m:.3f} ({s:.3f})" for m, s in zip(mean, sd))
            lines.append(f"| {source} | {method} | {len(done)} / {len(runs)} | {cells} | {error:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--config", default="configs/entry_exit.yaml")
    parser.add_argument("--replications", type=int, default=8)
    parser.add_argument("--markets", type=int, default=6400)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = study(args.config, args.checkpoint, args.replications, args.markets, Path(folder), args.methods)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows, make_market(load_config(args.config)["market"]).coefficients(), args.methods))


if __name__ == "__main__":
    main()
