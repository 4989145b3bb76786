"""What the full-state MPE of entry and exit costs as firms are added, and where that puts 12 firms.

`nashrl theory` (nashrl/theory/ccp.py) works on the full public state, S = 5 * 2^N states and
J = 2^N joint actions: each evaluation of the equilibrium map Psi solves the S x S linear system of
the values and contracts an S x J x N table. This script, for exchangeable firms (one fixed cost
-1.7, theta_RN 1, the 12-firm config's market with fewer firms), measures on this machine:

- the seconds of one Psi evaluation at the symmetric MPE, N = 3..MAX_PSI;
- best-response iteration P <- Psi(P) from uniform play: Psi evaluations and seconds to the
  fixed point (residual <= 1e-10), N = 3..MAX_ITER;
- `solve_mpe` with its defaults (every start, iteration and Newton: what `nashrl theory` runs),
  N = 3..MAX_SOLVE;
- memory of the largest tables (profits S x J x N, transition S x S) per N, in float64;

and extrapolates Psi's seconds to N = 10..12 with the growth factor per added firm of the last two
measured sizes (the linear solve's S^3 grows 8x per firm, the tables 4x), times the iteration count
of the largest measured size (counts grow with N here, so this is a lower bound).

    python benchmarks/entry_exit_scaling.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import nashrl.markets.private_shocks as private_shocks
from nashrl.markets import make_market
from nashrl.theory.ccp import CCPGame, iterate, solve_mpe
from nashrl.theory.symmetric_entry import full_ccp, symmetric_mpe

MAX_PSI, MAX_ITER, MAX_SOLVE = 10, 8, 6


def market(n: int):
    return make_market({"type": "entry_exit", "n_firms": n, "theta_fc": -1.7, "theta_rn": 1.0})


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    private_shocks.MAX_THEORY_ENTRIES = 10**9  # measure past the limit `nashrl theory` enforces
    rows = []
    for n in range(3, MAX_PSI + 1):
        m = market(n)
        s, j = m.n_states, 2**n
        start = time.perf_counter()
        game = CCPGame.of(m)
        build = time.perf_counter() - start
        p = torch.as_tensor(full_ccp(m, symmetric_mpe(m)))
        game.psi(p)  # warm
        reps = max(1, int(2 // max(1e-3, build)))
        start = time.perf_counter()
        for _ in range(min(reps, 5)):
            residual = float((game.psi(p) - p).abs().max())
        psi = (time.perf_counter() - start) / min(reps, 5)
        row = {
            "n_firms": n,
            "states": s,
            "joint_actions": j,
            "profit_table_gb": s * j * n * 8 / 1e9,
            "transition_gb": s * s * 8 / 1e9,
            "psi_seconds": psi,
            "symmetric_mpe_residual_full_state": residual,
        }
        if n <= MAX_ITER:
            uniform = torch.full_like(p, 0.5)
            start = time.perf_counter()
            ccp, iters = iterate(game, uniform, 5000)
            row["iteration_seconds"] = time.perf_counter() - start
            row["iteration_psi_evaluations"] = int(iters)
            row["iteration_residual"] = game.residual(ccp)
        if n <= MAX_SOLVE:
            row["nashrl_theory_seconds"] = solve_mpe(m)["seconds"]
        rows.append(row)
        print(json.dumps(row))
    last, before = rows[-1], rows[-2]
    factor = last["psi_seconds"] / before["psi_seconds"]
    counted = next(r for r in reversed(rows) if "iteration_psi_evaluations" in r)
    extrapolated = []
    for n in range(MAX_PSI + 1, 13):
        psi = last["psi_seconds"] * factor ** (n - MAX_PSI)
        extrapolated.append(
            {
                "n_firms": n,
                "psi_seconds": psi,
                "iteration_seconds_lower_bound": psi * counted["iteration_psi_evaluations"],
                "profit_table_gb": 5 * 4**n * n * 8 / 1e9,
                "transition_gb": (5 * 2**n) ** 2 * 8 / 1e9,
            }
        )
    out = {"measured": rows, "growth_per_firm": factor, "extrapolated": extrapolated, "threads": 1}
    for row in extrapolated:
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
