"""Greedy play of a trained joint policy in its market, compared with every theory benchmark."""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.analysis.best_response import dynamic_nash_gap
from nashrl.analysis.metrics import grid_steps, profit_gain, profit_gain_per_firm, stage_nash_gap
from nashrl.theory.benchmarks import benchmarks

COLLUSIVE = ("cartel", "joint_profit")


def play(policy, market, steps: int, seed: int = 0, forced: dict[int, np.ndarray] | None = None) -> dict[str, Any]:
    """Greedy play for ``steps`` periods; ``forced[t]`` overrides the joint action at period t."""
    rng = np.random.default_rng(seed)
    state = market.initial_state(rng)
    actions, profits, states = [], [], []
    for t in range(steps):
        obs = market.observe(state).astype(np.float32)
        joint = np.asarray(policy.act(obs, state), dtype=np.int64)
        if forced and t in forced:
            joint = np.asarray(forced[t], dtype=np.int64)
        states.append(np.asarray(state).copy())
        actions.append(joint)
        profits.append(market.stage_profits(state, joint[None])[0])
        state = market.transition(state, joint, rng)
    return {"states": states, "actions": np.array(actions), "profits": np.array(profits)}


def summarize(policy, market, steps: int = 50, seed: int = 0) -> dict[str, Any]:
    """Final greedy actions and profits next to each benchmark, with grid distances, Delta and Nash gap."""
    path = play(policy, market, steps, seed)
    tail = max(1, steps // 2)
    if market.sequential:
        # A period is two steps (leader, then follower); the outcome is what each mover chose.
        last = sequential_outcome(policy, market)
        values = market.action_values(last)
        mean_profit = path["profits"][-2 * tail :].sum(0) / tail
        gap, gains = stage_nash_gap(market.payoff_table(np.array([1, last[0]])), last)
    else:
        last = path["actions"][-1]
        values = market.action_values(last)
        mean_profit = path["profits"][-tail:].mean(0)
        gap, gains = stage_nash_gap(market.payoff_table(path["states"][-1]), last)
    summary: dict[str, Any] = {
        "market": market.market_type,
        "final_actions": values.tolist(),
        "final_action_indices": last.tolist(),
        "mean_profit": mean_profit.tolist(),
        "stage_nash_gap": gap,
        "stage_deviation_gains": gains.tolist(),
        "comparisons": [],
    }
    rows = benchmarks(market)
    static = [r for r in rows if r["state"] is None]
    if market.sequential:  # the stage gap is the follower's (the leader's move is already sunk)
        summary["stage_nash_gap"], summary["stage_deviation_gains"] = float(gains[1]), [0.0, float(gains[1])]
    for row in static:
        steps_away = [grid_steps(g, a, x) for g, a, x in zip(market.grids, last, row["actions"])]
        summary["comparisons"].append(
            {
                "concept": row["concept"],
                "actions": row["actions"],
                "profits": row["profits"],
                "grid_steps": steps_away,
                "max_grid_steps": max(steps_away),
            }
        )
    nash = next((r for r in static if r["concept"] == "nash"), None)
    collusive = next((r for r in static if r["concept"] in COLLUSIVE), None)
    if nash and collusive:
        summary["profit_gain"] = profit_gain(mean_profit, nash["profits"], collusive["profits"])
        summary["profit_gain_per_firm"] = profit_gain_per_firm(mean_profit, nash["profits"], collusive["profits"])
        if summary["profit_gain"] is None:
            summary["profit_gain_note"] = "undefined: the joint-profit and Nash average profits coincide"
    state_rows = [r for r in rows if "state_vector" in r and r["concept"] in ("nash", "grid_nash")]
    if state_rows:
        summary["state_comparisons"] = _state_comparisons(policy, market, state_rows)
    if market.market_type == "capacity":
        summary.update(_mpe_summary(policy, market, rows))
    dynamic = dynamic_nash_gap(policy, market)
    if dynamic is not None:
        summary["dynamic_nash_gap"] = dynamic
    if not market.stage_game_is_benchmark:
        # One-period profits are not the MPE's stage game here: no stage gap, the value-sense one instead.
        summary["stage_nash_gap"] = None
        summary.pop("stage_deviation_gains")
        if dynamic is not None:
            summary["one_step_deviation_gain"] = dynamic["one_step_deviation_gain"]
    return summary


def _state_comparisons(policy, market, rows) -> list[dict[str, Any]]:
    """The greedy action at each benchmark's state against that benchmark (state-dependent markets)."""
    out = []
    for row in rows:
        state = np.asarray(row["state_vector"])
        joint = np.asarray(policy.act(market.observe(state).astype(np.float32), state))
        steps_away = [grid_steps(g, a, x) for g, a, x in zip(market.grids, joint, row["actions"])]
        out.append(
            {
                "concept": row["concept"],
                "state": row["state"],
                "benchmark_actions": row["actions"],
                "policy_actions": market.action_values(joint).tolist(),
                "grid_steps": steps_away,
                "max_grid_steps": max(steps_away),
            }
        )
    return out


def sequential_outcome(policy, market) -> np.ndarray:
    """Stackelberg: the leader's greedy quantity and the follower's greedy response to it."""
    lead_state = np.array([0, 0])
    leader = int(policy.act(market.observe(lead_state).astype(np.float32), lead_state)[0])
    follow_state = np.array([1, leader])
    follower = int(policy.act(market.observe(follow_state).astype(np.float32), follow_state)[1])
    return np.array([leader, follower])


def _mpe_summary(policy, market, rows) -> dict[str, Any]:
    """Capacity game: the policy's investment in every state against the MPE's expected investment."""
    gaps = []
    for row in rows:
        state = np.array(row["state"])
        joint = policy.act(market.observe(state).astype(np.float32), state)
        gaps.append(np.abs(market.action_values(joint) - np.array(row["actions"])).max())
    return {
        "mpe_max_investment_gap": float(np.max(gaps)),
        "mpe_mean_investment_gap": float(np.mean(gaps)),
        "mpe_converged": bool(rows[0]["converged"]),
        "mpe_method": rows[0]["method"],
        "mpe_best_response_gain": float(rows[0]["best_response_gain"]),
    }


def scalar_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of a summary worth logging over training (``eval/...``)."""
    out = {}
    if summary.get("stage_nash_gap") is not None:
        out["eval/stage_nash_gap"] = float(summary["stage_nash_gap"])
    if "one_step_deviation_gain" in summary:
        out["eval/one_step_deviation_gain"] = float(summary["one_step_deviation_gain"])
    nash = next((c for c in summary["comparisons"] if c["concept"] in ("nash", "grid_subgame_perfect")), None)
    if nash is not None:
        out["eval/max_grid_steps_to_nash"] = float(nash["max_grid_steps"])
    if summary.get("profit_gain") is not None:
        out["eval/profit_gain"] = float(summary["profit_gain"])
    if "state_comparisons" in summary:
        out["eval/mean_grid_steps_to_state_nash"] = float(
            np.mean([c["max_grid_steps"] for c in summary["state_comparisons"]])
        )
    if "dynamic_nash_gap" in summary:
        out["eval/dynamic_nash_gap"] = float(summary["dynamic_nash_gap"]["dynamic_nash_gap"])
    if "mpe_mean_investment_gap" in summary:
        out["eval/mpe_mean_investment_gap"] = float(summary["mpe_mean_investment_gap"])
    return out
