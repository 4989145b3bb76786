"""Per-game times of ``nashrl.equilibrium.solve`` on N-player games without a pure equilibrium,
one game per call, one thread, on games saved to a file, so that two versions of nashrl are timed
on the same games (not a test):

    python benchmarks/solver_per_game.py --save-games games.npz            # this checkout makes them
    python benchmarks/solver_per_game.py --games games.npz --label now
    python benchmarks/solver_per_game.py --save-games all.npz --per-family 1000 --families "random 3p 5x5x5"
    python benchmarks/solver_per_game.py --games all.npz --batched   # one call on the whole family
    python benchmarks/solver_per_game.py --games games.npz --search support   # search_mixed="support"
    git worktree add /tmp/before b92ec3e
    (cd /tmp/before && PYTHONPATH=. python /path/to/benchmarks/solver_per_game.py --games games.npz --label before)

Timing needs only ``nashrl.equilibrium`` of the version on ``sys.path``; making the games uses the
families of ``benchmarks/solver_n_player.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def save_games(path: str, per_family: int, only: list[str] | None = None) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from solver_n_player import FAMILIES, make_family

    from nashrl.equilibrium import pure_equilibrium_mask

    out = {}
    for k, name in enumerate(FAMILIES):  # k as in solver_n_player.py run on every family
        if only and name not in only:
            continue
        games = make_family(name, np.random.default_rng([0, k]))
        pure = pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1).numpy()
        if (~pure).any():
            out[name] = games[~pure][:per_family]
    np.savez(path, **out)
    print(f"saved {sum(len(v) for v in out.values())} games of {len(out)} families to {path}")


def _per_call(solve, games, cap_s: float) -> dict:
    """Median seconds of ``solve`` on one game per call (the families' games in order, up to ``cap_s``)."""
    times, unsolved, start = [], 0, time.perf_counter()
    for game in games:
        begin = time.perf_counter()
        sol = solve(game[None])
        times.append(time.perf_counter() - begin)
        unsolved += int((~sol.solved).sum())
        if time.perf_counter() - start > cap_s:
            break
    return {"games": len(times), "median_s": statistics.median(times), "unsolved": unsolved}


def _one_call(solve, games) -> dict:
    """Seconds per game of ``solve`` on all the games in one call (the batched convention)."""
    begin = time.perf_counter()
    sol = solve(games)
    elapsed = time.perf_counter() - begin
    return {"games": len(games), "per_game_s": elapsed / len(games), "unsolved": int((~sol.solved).sum())}


def time_games(path: str, label: str, cap_s: float, batched: bool = False, search: str | None = None) -> dict:
    import functools

    import numba
    import torch

    from nashrl.equilibrium import solve

    if search is not None:  # a version before search_mixed="support" is timed without --search
        solve = functools.partial(solve, search_mixed=search)

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    results = {}
    with np.load(path) as data:
        for name in data.files:
            games = torch.as_tensor(data[name])
            solve(games[:1])  # compile / load the kernels
            results[name] = _one_call(solve, games) if batched else _per_call(solve, games, cap_s)
            print(label, name, json.dumps(results[name]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save-games", help="make the games (families of solver_n_player.py) and save them here")
    parser.add_argument("--per-family", type=int, default=5, help="games without a pure equilibrium per family")
    parser.add_argument("--families", nargs="+", help="only these families (default: all)")
    parser.add_argument("--games", help="time solve on the games saved in this file")
    parser.add_argument("--label", default="nashrl")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per family (the rest of it is skipped)")
    parser.add_argument("--batched", action="store_true", help="time one call per family on all its saved games")
    parser.add_argument("--search", help="solve's search_mixed (default: solve's own default), e.g. support")
    parser.add_argument("--json", help="also write the times here")
    args = parser.parse_args()
    if args.save_games:
        save_games(args.save_games, args.per_family, args.families)
    if args.games:
        results = time_games(args.games, args.label, args.cap, args.batched, args.search)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
