"""Solver throughput: nashrl.equilibrium.solve against QuantEcon and nashpy, like with like (not a test).

    python benchmarks/solver.py [--batch 4096] [--repeats 7] [--families ...] [--json OUT]

Two-player families (B games each, seeded):

- ``random 5x5``, ``random 15x15``: payoffs uniform on [0, 1);
- ``no pure 5x5``, ``no pure 15x15``: the same draws, kept only when the game has no pure
  equilibrium (every solver must pivot);
- ``cournot 13x13``: nashrl's Cournot duopoly (a ~ U(8, 12), costs ~ U(0.5, 2) per firm, the
  market's 13-point grid) as a learned Q stage game would be: its profits plus a continuation
  constant per firm (~ U(0, 100)) and noise N(0, (0.01 max profit)^2);
- ``calvano 15x15``: nashrl's logit Bertrand duopoly (qualities a_i ~ U(1.8, 2.2), Calvano's
  15-price grid) likewise (constants ~ U(0, 5), noise 1% of the largest profit).

Every batched solver runs ``--repeats`` times after a warm-up on the full batch; the tables give
the median games/s with [min, max]. nashrl runs at one thread (``torch`` and ``numba`` threads
1) and then at every core; QuantEcon's Lemke-Howson kernels run in one numba-jitted loop over
the batch (single-threaded by construction, as in REFERENCE.md). Ratios are nashrl's median over
the reference's median. "failed" = not converged or Nash gap > 1e-6. Per-call references
(QuantEcon ``lemke_howson`` one call per game, nashpy) run on a sample of ``--sample`` games of the
random families only, at one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
import warnings

import numpy as np
import torch

from nashrl.equilibrium import nash_gap, pure_equilibrium_mask, solve
from nashrl.threads import set_thread_budget

TOL = 1e-6
FAMILIES = ("random 5x5", "random 15x15", "no pure 5x5", "no pure 15x15", "cournot 13x13", "calvano 15x15")


# ----- games -----
def _uniform(rng, batch, size, no_pure):
    out = []
    while sum(len(g) for g in out) < batch:
        games = rng.uniform(0, 1, size=(batch, 2, size, size))
        if no_pure:
            games = games[~pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1).numpy()]
        out.append(games)
    return np.concatenate(out)[:batch]


def _learned_q_like(rng, batch, tables, constant):
    """Market stage games as a learned Q would hold them: profits + a constant per firm + 1% noise."""
    base = np.stack(tables)[rng.integers(len(tables), size=batch)]
    scale = np.abs(base).reshape(batch, -1).max(1).reshape(batch, 1, 1, 1)
    shift = rng.uniform(0, constant, size=(batch, 2, 1, 1))
    return base + shift + rng.normal(0, 0.01, size=base.shape) * scale


def make_family(name: str, batch: int, rng: np.random.Generator) -> np.ndarray:
    from nashrl.markets.cournot import CournotMarket
    from nashrl.markets.logit_bertrand import LogitBertrandMarket

    if name.startswith(("random", "no pure")):
        return _uniform(rng, batch, int(name.split("x")[-1]), name.startswith("no pure"))
    if name.startswith("cournot"):
        markets = [
            CournotMarket(a=float(rng.uniform(8, 12)), costs=rng.uniform(0.5, 2, 2).tolist(), memory=0)
            for _ in range(64)
        ]
        return _learned_q_like(rng, batch, [m.payoff_table(m.initial_state(rng)) for m in markets], 100.0)
    if name.startswith("calvano"):
        markets = [LogitBertrandMarket(a=rng.uniform(1.8, 2.2, 2).tolist(), memory=0) for _ in range(64)]
        return _learned_q_like(rng, batch, [m.payoff_table(m.initial_state(rng)) for m in markets], 5.0)
    raise ValueError(f"--families: unknown family {name!r}, expected some of {FAMILIES}")


# ----- timing -----
def timed(fn, repeats: int) -> tuple[list[float], object]:
    out = fn()  # warm-up: compilation, allocator, thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def rate(count: int, times: list[float]) -> dict:
    rates = [count / t for t in times]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def gaps(a, b, x, y) -> np.ndarray:
    return nash_gap(torch.as_tensor(np.stack([a, b], 1)), [torch.as_tensor(x), torch.as_tensor(y)]).numpy()


def bench_nashrl(games: np.ndarray, repeats: int, threads: int) -> dict:
    set_thread_budget(threads)
    tensor = torch.as_tensor(games)
    times, sol = timed(lambda: solve(tensor), repeats)
    return {
        "solver": f"nashrl solve, {threads} thread{'s' * (threads > 1)}",
        "games_per_s": rate(len(games), times),
        "failed": int((~sol.solved).sum()),
        "of": len(games),
        "max_gap": float(sol.nash_gap.max()),
    }


def bench_quantecon_loop(games: np.ndarray, repeats: int) -> dict | None:
    try:
        from numba import njit
        from quantecon.game_theory.lemke_howson import _get_mixed_actions, _initialize_tableaux, _lemke_howson_tbl
    except ImportError:
        return None

    @njit(cache=True)
    def batch(a, b, xs, ys, converged):
        g_total, m, n = a.shape
        for g in range(g_total):
            tableaux = (np.empty((n, m + n + 1)), np.empty((m, m + n + 1)))
            bases = (np.empty(n, dtype=np.int64), np.empty(m, dtype=np.int64))
            _initialize_tableaux((a[g].copy(), b[g].T.copy()), tableaux, bases)
            ok, _ = _lemke_howson_tbl(tableaux, bases, 0, 10**6)
            x, y = _get_mixed_actions(tableaux, bases)
            xs[g], ys[g], converged[g] = x, y, ok

    a, b = np.ascontiguousarray(games[:, 0]), np.ascontiguousarray(games[:, 1])
    g, m, n = a.shape
    xs, ys, conv = np.zeros((g, m)), np.zeros((g, n)), np.zeros(g, dtype=np.bool_)
    times, _ = timed(lambda: batch(a, b, xs, ys, conv), repeats)
    good = conv & (gaps(a, b, xs, ys) <= TOL)
    return {
        "solver": "QuantEcon LH kernels, one jitted loop (1 thread)",
        "games_per_s": rate(g, times),
        "failed": int((~good).sum()),
        "of": g,
    }


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout


def per_game_reference(name, solve_one, a, b, sample, seconds_per_game=2.0) -> dict:
    """Run ``solve_one`` on up to ``sample`` games; a game over its time limit counts as failed."""
    signal.signal(signal.SIGALRM, _alarm)
    n = min(sample, len(a))
    xs, ys, ok = [], [], []
    start = time.perf_counter()
    for i in range(n):
        signal.setitimer(signal.ITIMER_REAL, seconds_per_game)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x, y = solve_one(a[i], b[i])
            x, y = np.asarray(x, float), np.asarray(y, float)
            shaped = x.shape == (a.shape[1],) and y.shape == (a.shape[2],)
            if not shaped:
                x, y = np.full(a.shape[1], np.nan), np.full(a.shape[2], np.nan)
            ok.append(shaped and bool(np.all(np.isfinite(x)) and np.all(np.isfinite(y))))
        except (_Timeout, ValueError, IndexError, StopIteration):
            x, y = np.full(a.shape[1], np.nan), np.full(a.shape[2], np.nan)
            ok.append(False)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        xs.append(x)
        ys.append(y)
    elapsed = time.perf_counter() - start
    ok = np.array(ok)
    x, y = np.array(xs), np.array(ys)
    good = ok.copy()
    good[ok] = gaps(a[:n][ok], b[:n][ok], x[ok], y[ok]) <= TOL
    per_s = n / elapsed
    return {
        "solver": name,
        "games_per_s": {"median": per_s, "min": per_s, "max": per_s},
        "failed": int((~good).sum()),
        "of": n,
    }


def per_call_references(games: np.ndarray, sample: int) -> list[dict]:
    import nashpy

    a, b = games[:, 0], games[:, 1]
    rows = []
    try:
        from quantecon.game_theory import NormalFormGame, lemke_howson

        def qe_one(a1, b1):
            return lemke_howson(NormalFormGame(np.stack([a1, b1], -1)))

        qe_one(a[0], b[0])
        rows.append(per_game_reference("QuantEcon lemke_howson, one call per game", qe_one, a, b, sample))
    except ImportError:
        pass
    rows.append(
        per_game_reference(
            "nashpy Lemke-Howson",
            lambda a1, b1: nashpy.Game(a1, b1).lemke_howson(initial_dropped_label=0),
            a,
            b,
            sample,
        )
    )
    if a.shape[1] <= 6:
        rows.append(
            per_game_reference(
                "nashpy support enumeration",
                lambda a1, b1: next(nashpy.Game(a1, b1).support_enumeration()),
                a,
                b,
                max(20, sample // 20),
            )
        )
    return rows


def run_family(name: str, args, rng) -> dict:
    games = make_family(name, args.batch, rng)
    pure_share = float(pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1).double().mean())
    cores = os.cpu_count() or 1
    rows = [bench_nashrl(games, args.repeats, 1)]
    if cores > 1:
        rows.append(bench_nashrl(games, args.repeats, cores))
    set_thread_budget(1)
    reference = bench_quantecon_loop(games, args.repeats)
    if reference is not None:
        rows.append(reference)
    if name.startswith("random") and args.sample > 0:
        rows += per_call_references(games, args.sample)
    return {"family": name, "games": len(games), "with_pure_equilibrium": pure_share, "rows": rows}


def print_family(result: dict) -> None:
    rows = result["rows"]
    reference = next((r for r in rows if r["solver"].startswith("QuantEcon LH kernels")), None)
    print(
        f"### {result['family']} ({result['games']} games, "
        f"{100 * result['with_pure_equilibrium']:.0f}% with a pure equilibrium)"
    )
    print("| solver | games/s, median [min, max] | failed | nashrl 1 thread / this | nashrl all cores / this |")
    print("|---|---:|---:|---:|---:|")
    ours = [r for r in rows if r["solver"].startswith("nashrl")]
    for row in rows:
        med = row["games_per_s"]
        ratios = " | ".join(f"{o['games_per_s']['median'] / med['median']:,.2f}x" for o in ours)
        if len(ours) == 1:
            ratios += " | -"
        spread = f"{med['median']:,.0f} [{med['min']:,.0f}, {med['max']:,.0f}]"
        print(f"| {row['solver']} | {spread} | {row['failed']} of {row['of']} | {ratios} |")
    if reference is not None:
        ratio = ours[0]["games_per_s"]["median"] / reference["games_per_s"]["median"]
        print(f"\nnashrl at one thread / QuantEcon's jitted loop: {ratio:.2f}x")
    print(f"nashrl largest Nash gap: {ours[0]['max_gap']:.1e}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sample", type=int, default=300, help="games given to the per-call references")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, B={args.batch}, {args.repeats} repeats\n")
    results = []
    for i, name in enumerate(args.families):
        result = run_family(name, args, np.random.default_rng([args.seed, i]))
        print_family(result)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
