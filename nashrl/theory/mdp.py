r"""Finite Markov decision problems: policy values and exact optima (Howard's policy iteration).

For rewards :math:`r_\sigma` and transitions :math:`P_\sigma` of a fixed (possibly mixed)
policy, the value is the solution of the linear system
:math:`V = r_\sigma + \beta P_\sigma V`. The optimal value of the MDP
:math:`(R[s, a], T[s, a, s'])` solves :math:`V(s) = \max_a R(s, a) + \beta \sum_{s'} T(s, a, s') V(s')`;
policy iteration (Howard 1960) reaches it exactly in finitely many improvement steps, which
at :math:`\beta` near 1 is far faster than value iteration's :math:`\beta^k` contraction.
Used for best-response values against fixed rivals (dynamic Nash gaps, MPE checks).
"""

from __future__ import annotations

import numpy as np


def policy_value(rewards: np.ndarray, transitions: np.ndarray, beta: float) -> np.ndarray:
    """``V = (I - beta P)^{-1} r`` for ``rewards [S]`` or ``[S, K]`` and ``transitions [S, S]``."""
    n = transitions.shape[0]
    return np.linalg.solve(np.eye(n) - beta * transitions, rewards)


def optimal_values(
    rewards: np.ndarray, transitions: np.ndarray, beta: float, max_iter: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """(V*, greedy policy) of the MDP ``rewards [S, A]``, ``transitions [S, A, S]`` by policy iteration."""
    states = np.arange(rewards.shape[0])
    policy = rewards.argmax(1)
    values = policy_value(rewards[states, policy], transitions[states, policy], beta)
    for _ in range(max_iter):
        q = rewards + beta * transitions @ values
        best = q.max(1)
        # Keep the current action unless another is strictly better (no cycling on ties).
        improve = best > q[states, policy] + 1e-12 * max(1.0, float(np.abs(best).max()))
        if not improve.any():
            return best, policy
        policy = np.where(improve, q.argmax(1), policy)
        values = policy_value(rewards[states, policy], transitions[states, policy], beta)
    raise RuntimeError(f"policy iteration did not end within {max_iter} improvement steps")
