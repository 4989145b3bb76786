"""N-player stage games: nashrl.equilibrium.solve against pygambit's N-player methods, same games (not a test).

    python benchmarks/solver_n_player.py [--families ...] [--searches auto support] [--gambit-sample 8]
        [--timeout 10] [--json OUT]

Families (seeded; the batch size is in the name's table below): random games with payoffs
uniform on [0, 1) for N = 3, 4, 5 and 5-13 actions, and Cournot- and logit-Bertrand-shaped
games, nashrl's own markets with N firms as a learned Q stage game would hold them (profits plus a
continuation constant per firm and 1% noise; qualities / demand and costs drawn per game).

nashrl runs at one thread on the whole batch (pure equilibria by the mask, the others by the
3-player closed form, the logit homotopy, the residual descent: see nashrl.equilibrium.solve);
the table gives games/s over the batch and milliseconds per game over its games *without* a pure
equilibrium (solved alone, the cost that matters), the unsolved count (Nash gap > 1e-6 in the
solver's units) and the largest gap. pygambit gets a sample of ``--gambit-sample`` of the games
without a pure equilibrium, each call in a forked process killed after ``--timeout`` s (a C++
call cannot be interrupted otherwise): gnm, ipa, simpdiv, liap (from the centroid), logit, and
enumpoly (stop after the first equilibrium; only games of at most 125 profiles). "failed" = timed
out, no equilibrium returned, or its Nash gap above 1e-6 of the payoff range; "same equilibrium"
= within 1e-3 of nashrl's (for logit_solve: whether both traced the principal logit branch to the
same limit). The per-game speed-up is pygambit's median over nashrl's median, each on games
without a pure equilibrium (pygambit's timed-out calls count at the time limit). nashrl runs with
each of ``--searches`` (``search_mixed``: ``auto``, the logit homotopy, and ``support``, the
Porter-Nudelman-Shoham enumeration) in the same run; "same equilibrium" compares with the first.
A pygambit time is measured inside its process around the solving call alone (building the game
from the arrays and forking the process excluded; a timed-out call counts at the limit): forking a
process that has torch and numba loaded takes 15-35 ms here, more than most pygambit calls.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time

import numpy as np
import torch

from nashrl.equilibrium import nash_gap, pure_equilibrium_mask, solve
from nashrl.threads import set_thread_budget

TOL = 1e-6
#: name -> (kind, players, actions, batch)
FAMILIES = {
    "random 3p 5x5x5": ("random", 3, 5, 512),
    "random 3p 9x9x9": ("random", 3, 9, 128),
    "random 3p 13x13x13": ("random", 3, 13, 32),
    "random 4p 5^4": ("random", 4, 5, 128),
    "random 4p 9^4": ("random", 4, 9, 16),
    "random 5p 5^5": ("random", 5, 5, 64),
    "random 5p 7^5": ("random", 5, 7, 16),
    "cournot 3p 13": ("cournot", 3, 13, 256),
    "cournot 4p 13": ("cournot", 4, 13, 64),
    "cournot 5p 7": ("cournot", 5, 7, 64),
    "logit 3p 15": ("logit", 3, 15, 128),
    "logit 4p 9": ("logit", 4, 9, 64),
    "logit 5p 7": ("logit", 5, 7, 64),
}


def make_family(name: str, rng: np.random.Generator) -> np.ndarray:
    from nashrl.markets.cournot import CournotMarket
    from nashrl.markets.logit_bertrand import LogitBertrandMarket

    kind, n, actions, batch = FAMILIES[name]
    if kind == "random":
        return rng.uniform(0, 1, size=(batch, n, *([actions] * n)))
    tables = []
    for _ in range(batch):
        if kind == "cournot":
            grid = {"low": 0.0, "high": float(rng.uniform(4, 6)), "size": actions}
            market = CournotMarket(
                n_firms=n, a=float(rng.uniform(8, 12)), costs=rng.uniform(0.5, 2, n).tolist(), quantities=grid, memory=0
            )
            constant = 100.0
        else:
            market = LogitBertrandMarket(n_firms=n, a=rng.uniform(1.8, 2.2, n).tolist(), m=actions, memory=0)
            constant = 5.0
        table = market.payoff_table(market.initial_state(rng))
        scale = np.abs(table).max()
        shift = rng.uniform(0, constant, size=(n,) + (1,) * n)
        tables.append(table + shift + rng.normal(0, 0.01 * scale, size=table.shape))
    return np.stack(tables)


def bench_nashrl(games: np.ndarray, search: str = "auto") -> tuple[dict, list[np.ndarray]]:
    """The table row, and nashrl's strategies on the games without a pure equilibrium."""
    set_thread_budget(1)
    tensor = torch.as_tensor(games)
    pure = pure_equilibrium_mask(tensor).flatten(1).any(1)
    solve(tensor[:2], search_mixed=search)  # compile / load the kernels
    start = time.perf_counter()
    sol = solve(tensor, search_mixed=search)
    elapsed = time.perf_counter() - start
    mixed_strategies = [s[~pure].numpy() for s in sol.strategies]
    mixed = tensor[~pure]
    per_game = []
    for g in mixed[: min(len(mixed), 32)]:  # games without a pure equilibrium, one call each
        start = time.perf_counter()
        solve(g[None], search_mixed=search)
        per_game.append(time.perf_counter() - start)
    scale = tensor.flatten(1).abs().amax(1).clamp_min(1.0)
    return {
        "search": search,
        "games": len(games),
        "with_pure": int(pure.sum()),
        "games_per_s": len(games) / elapsed,
        "ms_per_game_without_pure": 1e3 * statistics.median(per_game) if per_game else None,
        "ms_per_game_without_pure_max": 1e3 * max(per_game) if per_game else None,
        "unsolved": int((~sol.solved).sum()),
        "max_gap": float((sol.nash_gap / scale).max()),
    }, mixed_strategies


def _gambit_worker(method: str, arrays: list[np.ndarray], out) -> None:
    import pygambit as gbt

    game = gbt.Game.from_arrays(*arrays)
    start = time.perf_counter()
    if method == "gnm":
        result = gbt.nash.gnm_solve(game)
    elif method == "ipa":
        result = gbt.nash.ipa_solve(game)
    elif method == "simpdiv":
        result = gbt.nash.simpdiv_solve(game.mixed_strategy_profile(rational=True))
    elif method == "liap":
        result = gbt.nash.liap_solve(game.mixed_strategy_profile())
    elif method == "logit":
        result = gbt.nash.logit_solve(game, use_strategic=True)
    else:
        result = gbt.nash.enumpoly_solve(game, use_strategic=True, stop_after=1)
    elapsed = time.perf_counter() - start
    if not result.equilibria:
        out.put((elapsed, None))
        return
    profile = result.equilibria[0]
    out.put((elapsed, [[float(profile[s]) for s in player.strategies] for player in game.players]))


def gambit_row(method: str, games: np.ndarray, timeout: float, ours: list[np.ndarray]) -> dict:
    """``ours``: nashrl's strategies on the same games; ``same`` counts gambit's equilibrium equal to
    nashrl's (max |p - p'| < 1e-3): for logit_solve, the same selection by the logit tracing."""
    times, failed, same = [], 0, 0
    context = multiprocessing.get_context("fork")
    for game in games:
        queue = context.Queue()
        arrays = [np.ascontiguousarray(game[i]) for i in range(game.shape[0])]
        process = context.Process(target=_gambit_worker, args=(method, arrays, queue))
        process.start()
        try:
            elapsed, strategies = queue.get(timeout=timeout)
        except Exception:  # noqa: BLE001 (queue.Empty: the call ran past its time)
            strategies = None
            elapsed = timeout
            process.kill()
        process.join()
        times.append(elapsed)
        if strategies is None:
            failed += 1
            continue
        profile = [torch.as_tensor(np.asarray(s, float))[None] for s in strategies]
        span = float(game.max() - game.min()) or 1.0
        if float(nash_gap(torch.as_tensor(game[None]), profile)[0]) > TOL * span:
            failed += 1
        k = len(times) - 1
        same += max(float(np.abs(np.asarray(s, float) - o[k]).max()) for s, o in zip(strategies, ours)) < 1e-3
    return {
        "method": method,
        "ms_per_game": 1e3 * statistics.median(times),
        "failed": failed,
        "of": len(games),
        "same_as_nashrl": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--searches", nargs="+", default=["auto", "support"], choices=["auto", "support"])
    parser.add_argument("--gambit-sample", type=int, default=8, help="games without a pure equilibrium per method")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per pygambit call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    try:
        import pygambit  # noqa: F401

        methods = ["gnm", "ipa", "simpdiv", "liap", "logit", "enumpoly"]
    except ImportError:
        methods = []
        print("pygambit not installed (pip install pygambit): nashrl only\n")
    results = []
    for k, name in enumerate(args.families):
        games = make_family(name, np.random.default_rng([args.seed, k]))
        runs = [bench_nashrl(games, search) for search in args.searches]
        ours, mixed_strategies = runs[0]
        without = games[~pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1).numpy()]
        sample = without[: args.gambit_sample]
        rows = []
        for method in methods:
            if method == "enumpoly" and np.prod(games.shape[2:]) > 125:
                continue
            if len(sample):
                rows.append(gambit_row(method, sample, args.timeout, mixed_strategies))
        result = {"family": name, "nashrl": ours, "nashrl_searches": [row for row, _ in runs], "gambit": rows}
        results.append(result)
        print(f"### {name}: {ours['games']} games, {ours['with_pure']} with a pure equilibrium")
        for row, _ in runs:
            mixed_ms = row["ms_per_game_without_pure"]
            print(
                f"- nashrl, search {row['search']}: {row['games_per_s']:,.0f} games/s over the batch, "
                + (
                    f"{mixed_ms:.2f} ms per game without (max {row['ms_per_game_without_pure_max']:.2f}), "
                    if mixed_ms
                    else ""
                )
                + f"unsolved {row['unsolved']}, largest gap {row['max_gap']:.1e}"
            )
        if rows:
            speedups = " | ".join(f"speed-up of nashrl {row['search']}" for row, _ in runs)
            same = f"same equilibrium as nashrl {args.searches[0]}"
            print(f"| pygambit | ms per game (median) | failed | {same} | {speedups} |")
            print("|---|---:|---:|---:|" + "---:|" * len(runs))
            for row in rows:
                base = [r["ms_per_game_without_pure"] for r, _ in runs]
                ratios = " | ".join(f"{row['ms_per_game'] / ms:,.0f}x" if ms else "-" for ms in base)
                print(
                    f"| {row['method']} | {row['ms_per_game']:,.1f} | {row['failed']} of {row['of']} | "
                    f"{row['same_as_nashrl']} of {row['of']} | {ratios} |"
                )
        print(flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
