r"""Exploitability of a learned policy in a dynamic market, by best-response computation.

For markets with a finite, known state process (the capacity game; demand shocks with
``memory: 0``), fix the rivals' greedy policy :math:`\sigma_{-i}` and solve firm
:math:`i`'s Markov decision problem exactly:

.. math::

    V^{BR}_i(s) = \max_{a_i} \Big[\pi_i(s, a_i, \sigma_{-i}(s)) +
    \beta \sum_{s'} P(s' \mid s, a_i, \sigma_{-i}(s))\, V^{BR}_i(s')\Big],

and compare with the value of following :math:`\sigma_i`,
:math:`V^{\sigma}_i = (I - \beta P_\sigma)^{-1} \pi_\sigma`. The dynamic Nash gap is
:math:`\max_i \max_s \big(V^{BR}_i(s) - V^{\sigma}_i(s)\big)`, zero exactly when the
learned policy is a Markov perfect equilibrium. The *one-step deviation gain*
:math:`\max_i \max_s \max_{a_i} \big[\pi_i + \beta P V^\sigma_i\big] - V^\sigma_i(s)` (deviate
once, then follow :math:`\sigma`) is zero at the same profiles (one-shot deviation
principle) and is what replaces the one-period stage Nash gap in dynamic markets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.theory.mdp import optimal_values, policy_value


def dynamic_nash_gap(policy, market, discount: float | None = None) -> dict[str, Any] | None:
    model = market.finite_model()
    if model is None:
        return None
    beta = market.discount if discount is None else discount
    states, transition = model
    n_states = len(states)
    played = [np.asarray(policy.act(market.observe(s).astype(np.float32), s)) for s in states]
    p_sigma = np.stack([transition(k, played[k]) for k in range(n_states)])
    r_sigma = np.stack([market.stage_profits(states[k], played[k][None])[0] for k in range(n_states)])
    v_sigma = policy_value(r_sigma, p_sigma, beta)  # [S, N]
    gaps, one_step = [], []
    for i in range(market.n_firms):
        n_own = market.action_sizes[i]
        rewards = np.zeros((n_states, n_own))
        trans = np.zeros((n_states, n_own, n_states))
        for k in range(n_states):
            for a in range(n_own):
                joint = played[k].copy()
                joint[i] = a
                rewards[k, a] = market.stage_profits(states[k], joint[None])[0][i]
                trans[k, a] = transition(k, joint)
        one_step.append(float(np.max((rewards + beta * trans @ v_sigma[:, i]).max(1) - v_sigma[:, i])))
        v, _ = optimal_values(rewards, trans, beta)
        gaps.append(float(np.max(v - v_sigma[:, i])))
    scale = float(np.abs(v_sigma).mean()) or 1.0
    return {
        "dynamic_nash_gap": max(gaps),
        "per_firm": gaps,
        "relative": max(gaps) / scale,
        "one_step_deviation_gain": max(one_step),
    }
