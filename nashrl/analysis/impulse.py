r"""Impulse response to a forced one-period deviation (Calvano et al. 2020, Fig. 4).

After ``warmup`` periods of greedy play, firm ``deviator`` is forced for one period to
play its static best response to the rivals' current actions; afterwards everybody plays
the learned policy again. Reported: the path of actions and profits around the
deviation, the rivals' action change in the period after it, whether the deviation paid
(deviator's discounted profit over the horizon against not deviating), and how many
periods play takes to return to the pre-deviation actions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.analysis.evaluation import long_run, play


def static_best_response(market, state: np.ndarray, joint: np.ndarray, firm: int) -> int:
    return int(np.argmax(market.deviation_payoffs(state, joint)[firm]))


def impulse_response(
    policy,
    market,
    *,
    warmup: int | None = None,
    horizon: int = 15,
    deviator: int = 0,
    seed: int = 0,
    discount: float | None = None,
    start_state=None,
) -> dict[str, Any]:
    """The deviation happens on the long-run outcome: in deterministic markets after
    ``warmup`` = periods to reach the limit cycle from ``start_state`` plus one full cycle
    (so the pre-deviation period is on the cycle, as in Calvano et al.); else after
    ``warmup`` periods (default 50)."""
    discount = market.discount if discount is None else discount
    if warmup is None:
        if market.deterministic:
            outcome = long_run(policy, market, seed=seed, start_state=start_state)
            warmup = outcome["periods_to_cycle"] + outcome["cycle_length"]
        else:
            warmup = 50
    warmup = max(int(warmup), 1)
    steps = warmup + horizon + 1
    baseline = play(policy, market, steps, seed, start_state=start_state)
    forced_joint = baseline["actions"][warmup].copy()
    forced_joint[deviator] = static_best_response(market, baseline["states"][warmup], forced_joint, deviator)
    shocked = play(policy, market, steps, seed, forced={warmup: forced_joint}, start_state=start_state)
    pre = baseline["actions"][warmup - 1]
    after = shocked["actions"][warmup:]
    values = market.action_values(after)
    pre_values = market.action_values(pre)
    rivals = [i for i in range(market.n_firms) if i != deviator]
    rival_change = (values[1, rivals] - pre_values[rivals]) / np.where(pre_values[rivals] == 0, 1, pre_values[rivals])
    back = next((t for t in range(1, len(after)) if np.array_equal(after[t], pre)), None)
    weights = discount ** np.arange(horizon + 1)
    gain = float(weights @ (shocked["profits"][warmup:, deviator] - baseline["profits"][warmup:, deviator]))
    return {
        "deviator": deviator,
        "warmup": warmup,
        "pre_deviation_actions": pre_values.tolist(),
        "deviation_action": float(market.grids[deviator][forced_joint[deviator]]),
        "actions_after": values.tolist(),
        "profits_after": shocked["profits"][warmup:].tolist(),
        "rival_relative_change_next_period": rival_change.tolist(),
        "periods_to_return": back,
        "deviation_discounted_gain": gain,
        "deviation_profitable": gain > 1e-12,
    }
