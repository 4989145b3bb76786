"""Headline table of the Aguirregabiria-Mira Monte Carlo: every cell's estimators side by side.

Reads the ``montecarlo.json`` that ``nashrl montecarlo`` wrote into each cell's folder (default:
``docs/inverse_montecarlo/am/*``) and prints one Markdown row per cell and method: replications
(converged of run), theta_RN's mean and sd, and over the free coefficients the mean absolute
bias and the root mean squared error (the square root of the mean of the MSEs), with the mean
time per estimate. Moments are over the converged replications, as in each cell's own table.

    python benchmarks/inverse_design_table.py [FOLDER ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def rows(folder: Path) -> list[str]:
    data = json.loads((folder / "montecarlo.json").read_text())
    cell = f"theta_RN {data['market']['theta_rn']:g}, M = {data['markets']}"
    out = []
    for method, entry in data["table"].items():
        coefficients = entry["coefficients"]
        if not coefficients:
            out.append(f"| {cell} | {method} | 0 of {entry['replications']} | - | - | - | - |")
            continue
        rn = coefficients.get("theta_rn")
        bias = sum(abs(c["bias"]) for c in coefficients.values()) / len(coefficients)
        rmse = math.sqrt(sum(c["mse"] for c in coefficients.values()) / len(coefficients))
        theta = f"{rn['mean']:.3f} ({rn['sd']:.3f})" if rn else "-"
        seconds = entry["mean_seconds"]
        out.append(
            f"| {cell} | {method} | {entry['converged']} of {entry['replications']} | {theta} | "
            f"{bias:.3f} | {rmse:.3f} | {seconds:.1f} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    args = parser.parse_args()
    folders = args.folders or sorted(p.parent for p in Path("docs/inverse_montecarlo/am").glob("*/montecarlo.json"))
    print("| cell | method | converged | theta_RN mean (sd) | mean abs bias | RMSE | s per estimate |")
    print("|---|---|---:|---|---:|---:|---:|")
    for folder in folders:
        print("\n".join(rows(folder)))


if __name__ == "__main__":
    main()
