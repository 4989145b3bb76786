r"""Mixed Nash equilibria of N-player games by the logit homotopy (:mod:`._homotopy_numba`).

:func:`logit_homotopy` follows, for every game of a batch, the principal branch of logit
(quantal-response) equilibria from uniform play as :math:`\lambda \to \infty` (McKelvey and
Palfrey 1995; the path formulation of Turocy 2005) by arc-length continuation, and polishes its
limit into an exact equilibrium by Newton's method on the limit's support with an active set. For
generic games the branch converges to one Nash equilibrium, the *logit solution*: a selection by
the tracing procedure, not a search over all equilibria. Where a branch ends without an accepted
equilibrium (it passed close to a singular point), the tracing restarts from seeded random
interior priors; games left after that are reported with ``gap = inf`` for the caller's fallback.

It is the compiled counterpart, for any number of players, of Gambit's ``logit_solve``; its cost
grows with the number of joint profiles (a path step costs about three Newton iterations, each a
Jacobian of ``2 N`` passes over the payoff tensors).
"""

from __future__ import annotations

import numpy as np
import torch

LAMBDA_MAX = 1e8  # in the solver's units (payoffs scaled to at most 1 in absolute value)
MAX_STEPS = 5_000  # path steps per tracing attempt


def logit_homotopy(games: torch.Tensor, tol: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``games`` ``[B, N, A_1, ..., A_N]`` (normalised: ``max |G| <= 1``): per player ``[B, A_i]``
    strategies and ``[B]`` Nash gaps, ``inf`` where no equilibrium within ``tol`` was found (the
    strategies are then the branch's last point). Runs on the CPU (numba, over its threads)."""
    from nashrl.equilibrium._homotopy_numba import trace_batch

    b, n = games.shape[:2]
    sizes = np.array(games.shape[2:], dtype=np.int64)
    flat = np.ascontiguousarray(games.detach().to("cpu", torch.float64).reshape(b, n, -1).numpy())
    x, gaps, _ = trace_batch(flat, sizes, float(tol), LAMBDA_MAX, MAX_STEPS)
    device = games.device
    strategies = [torch.from_numpy(x[:, i, : sizes[i]].copy()).to(device, games.dtype) for i in range(n)]
    return strategies, torch.from_numpy(gaps).to(device, games.dtype)
