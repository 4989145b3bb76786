"""Logit (quantal-response) equilibria: the compiled path against the torch path, same games (not a test).

    python benchmarks/logit_solver.py [--threads 1]

For each family (512 random 5x5 bimatrix games with payoffs uniform on [0, 1); 512 random
5-player 2-action games with N(0, 1) payoffs, the shape of entry_exit's stage games) and each
sigma, prints the wall time of ``logit_equilibrium(backend="torch")`` and
``logit_equilibrium(backend="numba")`` (best of 3 after a warm-up, one process, ``--threads``
torch and numba threads), their ratio, the games each leaves unsolved (residual > 1e-10) and the
largest difference between the two on games both solve (the same principal branch).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nashrl.equilibrium.logit import logit_equilibrium


def best_time(fn, repeats: int = 3) -> tuple[float, object]:
    fn()  # warm-up (compilation)
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)
    families = {
        "random 5x5": torch.as_tensor(rng.uniform(size=(512, 2, 5, 5))),
        "5 players x 2 actions": torch.as_tensor(rng.normal(size=(512, 5, 2, 2, 2, 2, 2))),
    }
    print(f"threads: {args.threads}")
    print(
        f"{'family':<24}{'sigma':>7}{'torch s':>10}{'numba s':>10}{'speed-up':>10}{'unsolved t/n':>14}{'max diff':>11}"
    )
    for name, games in families.items():
        for sigma in (1.0, 0.3, 0.1, 0.03):
            t_torch, (s_t, r_t) = best_time(lambda g=games, s=sigma: logit_equilibrium(g, s, backend="torch"))
            t_numba, (s_n, r_n) = best_time(lambda g=games, s=sigma: logit_equilibrium(g, s, backend="numba"))
            both = (r_t <= 1e-10) & (r_n <= 1e-10)
            diff = max(float((a - b)[both].abs().max()) if both.any() else 0.0 for a, b in zip(s_t, s_n))
            unsolved = f"{int((r_t > 1e-10).sum())}/{int((r_n > 1e-10).sum())}"
            speed = f"{t_torch / t_numba:.1f}x"
            print(f"{name:<24}{sigma:>7}{t_torch:>10.3f}{t_numba:>10.3f}{speed:>10}{unsolved:>14}{diff:>11.1e}")


if __name__ == "__main__":
    main()
