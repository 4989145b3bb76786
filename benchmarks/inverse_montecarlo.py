"""Monte Carlo of the inverse estimators on Aguirregabiria and Mira's design (not a test).

    python benchmarks/inverse_montecarlo.py [--replications 50] [--markets 1600] [--theta-rn 1.0 2.5 4.0]
        [--methods two_step npl mle] [--out docs/inverse_montecarlo.md]

Per cell (theta_EC = 1, theta_RN as given, M markets, T = 1 period drawn from the MPE's ergodic
distribution, all 8 coefficients free): R panels simulated with seeds 0..R-1, each estimated by
every method in this process (one after the other; the Ray-parallel ``nashrl montecarlo`` is not
built yet). For each coefficient and method: mean estimate, bias, sd, MSE (= bias^2 + sd^2 with
the population sd), over the replications that converged; the number that did not converge
(their estimates are left out of the moments) and the mean wall time per estimate.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nashrl.files import atomic_write_text
from nashrl.inverse import estimate
from nashrl.markets import make_market
from nashrl.panels import simulate
from nashrl.theory.ccp import cached_mpe


def run_cell(theta_rn: float, markets: int, replications: int, methods: list[str]) -> list[str]:
    config = {"type": "entry_exit", "theta_rn": theta_rn, "theta_ec": 1.0}
    market = make_market(config)
    truth = market.coefficients()
    eq = cached_mpe(market)["equilibria"][0]
    draws = {m: [] for m in methods}
    failed = dict.fromkeys(methods, 0)
    seconds = {m: [] for m in methods}
    for r in range(replications):
        panel = simulate(market, eq.ccp, markets=markets, periods=1, seed=r)
        for method in methods:
            start = time.perf_counter()
            try:
                result = estimate(config, panel, method=method)
                ok = result.converged
            except Exception:  # noqa: BLE001  (a failed replication is counted, not fatal)
                ok = False
            seconds[method].append(time.perf_counter() - start)
            if ok:
                draws[method].append(result.params.to_numpy())
            else:
                failed[method] += 1
    lines = [
        f"### theta_RN = {theta_rn}, {markets} markets, {replications} replications "
        f"(MPE stable under iteration: {eq.stable})",
        "",
        "| coefficient | truth | " + " | ".join(f"{m} mean | {m} bias | {m} sd | {m} MSE" for m in methods) + " |",
        "|---|---|" + "---|---|---|---|" * len(methods),
    ]
    for k, name in enumerate(truth):
        cells = []
        for m in methods:
            x = np.array(draws[m])[:, k] if draws[m] else np.array([np.nan])
            bias, sd = x.mean() - truth[name], x.std()
            cells += [f"{x.mean():.3f}", f"{bias:+.3f}", f"{sd:.3f}", f"{bias**2 + sd**2:.4f}"]
        lines.append(f"| {name} | {truth[name]:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| method | converged | not converged | mean seconds per estimate |",
        "|---|---|---|---|",
        *[f"| {m} | {len(draws[m])} | {failed[m]} | {np.mean(seconds[m]):.2f} |" for m in methods],
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--markets", type=int, default=1600)
    parser.add_argument("--theta-rn", type=float, nargs="+", default=[1.0, 2.5, 4.0])
    parser.add_argument("--methods", nargs="+", default=["two_step", "npl", "mle"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = ["# Inverse estimators on Aguirregabiria and Mira's design (benchmarks/inverse_montecarlo.py)", ""]
    for theta_rn in args.theta_rn:
        lines += run_cell(theta_rn, args.markets, args.replications, args.methods)
        print("\n".join(lines), flush=True)
    if args.out:
        atomic_write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
