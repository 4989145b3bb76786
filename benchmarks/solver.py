"""Solver throughput: nashrl.equilibrium.solve against nashpy and QuantEcon (not a test).

    python benchmarks/solver.py [--batch 4096] [--device cpu]

For B random games (payoffs uniform on [0, 1)) of 5x5, 15x15 and 3-player 5x5x5, prints
games/s, games failing (not converged or Nash gap > 1e-6), and the ratio of nashrl to
each reference. Slow references run on a sample of the batch and are scaled to games/s.
References: nashpy Lemke-Howson and support enumeration; QuantEcon's lemke_howson per
call; QuantEcon's Lemke-Howson kernels run in one numba-jitted loop over the batch.
"""

from __future__ import annotations

import argparse
import signal
import time
import warnings

import numpy as np
import torch

from nashrl.equilibrium import nash_gap, solve

TOL = 1e-6
REPEATS = 5  # batched solvers: best wall time of this many runs after a warm-up


def gaps(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    game = torch.as_tensor(np.stack([a, b], 1))
    return nash_gap(game, [torch.as_tensor(x), torch.as_tensor(y)]).numpy()


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout


def per_game_reference(name, solve_one, a, b, sample, seconds_per_game=2.0):
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
    return {"name": name, "games_per_s": n / elapsed, "failed": int((~good).sum()), "of": n}


def quantecon_references(a, b, sample):
    try:
        from numba import njit
        from quantecon.game_theory import NormalFormGame, lemke_howson
        from quantecon.game_theory.lemke_howson import _get_mixed_actions, _initialize_tableaux, _lemke_howson_tbl
    except ImportError:
        return []

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

    g, m, n = a.shape
    xs, ys, conv = np.zeros((g, m)), np.zeros((g, n)), np.zeros(g, dtype=np.bool_)
    batch(a[:2], b[:2], xs[:2], ys[:2], conv[:2])  # compile
    elapsed = float("inf")
    for _ in range(REPEATS):  # best of REPEATS, as for nashrl
        start = time.perf_counter()
        batch(a, b, xs, ys, conv)
        elapsed = min(elapsed, time.perf_counter() - start)
    good = conv & (gaps(a, b, xs, ys) <= TOL)
    jitted = {
        "name": "QuantEcon LH kernels, one jitted loop",
        "games_per_s": g / elapsed,
        "failed": int((~good).sum()),
        "of": g,
    }

    def qe_one(a1, b1):
        return lemke_howson(NormalFormGame(np.stack([a1, b1], -1)))

    qe_one(a[0], b[0])
    return [per_game_reference("QuantEcon lemke_howson per call", qe_one, a, b, sample), jitted]


def nashpy_references(a, b, sample):
    import nashpy

    def lh(a1, b1):
        return nashpy.Game(a1, b1).lemke_howson(initial_dropped_label=0)

    def se(a1, b1):
        return next(nashpy.Game(a1, b1).support_enumeration())

    rows = [per_game_reference("nashpy Lemke-Howson", lh, a, b, sample)]
    if a.shape[1] <= 6:
        rows.append(per_game_reference("nashpy support enumeration", se, a, b, max(20, sample // 20)))
    return rows


def bench_nashrl(payoffs: torch.Tensor):
    solve(payoffs)  # warm-up (numba compile, allocator, thread pool)
    best, sol = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        sol = solve(payoffs)
        best = min(best, time.perf_counter() - start)
    failed = int((~sol.solved).sum())
    return {
        "name": "nashrl solve (pure mask + " + ("LH)" if payoffs.shape[1] == 2 else "small supports + descent)"),
        "games_per_s": len(payoffs) / best,
        "failed": failed,
        "of": len(payoffs),
        "max_gap": float(sol.nash_gap.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--sample", type=int, default=300, help="games given to per-game references")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, B={args.batch}\n")
    for shape in [(5, 5), (15, 15), (5, 5, 5)]:
        games = rng.uniform(0, 1, size=(args.batch, len(shape), *shape))
        ours = bench_nashrl(torch.as_tensor(games, device=args.device))
        rows = [ours]
        if len(shape) == 2:
            a, b = games[:, 0], games[:, 1]
            rows += quantecon_references(a, b, args.sample) + nashpy_references(a, b, args.sample)
        print(f"### {'x'.join(map(str, shape))} games")
        print("| solver | games/s | failed | nashrl speed-up |")
        print("|---|---:|---:|---:|")
        for row in rows:
            ratio = ours["games_per_s"] / row["games_per_s"]
            print(f"| {row['name']} | {row['games_per_s']:,.0f} | {row['failed']} of {row['of']} | {ratio:,.1f}x |")
        print(f"\nnashrl max Nash gap: {ours['max_gap']:.2e}\n")


if __name__ == "__main__":
    main()
