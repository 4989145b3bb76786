"""Greedy play of a trained joint policy in its market, compared with every theory benchmark."""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.analysis.best_response import dynamic_nash_gap
from nashrl.analysis.metrics import (
    deviation_gap,
    grid_steps,
    nearest_index,
    profit_gain,
    profit_gain_per_firm,
    stage_nash_gap,
)
from nashrl.theory.benchmarks import benchmarks

COLLUSIVE = ("cartel", "joint_profit")


#: Deterministic markets: greedy play is iterated this many periods at most to find its cycle.
MAX_CYCLE_SEARCH = 100_000
#: A learned investment is "near" the MPE where its stage loss is at most this share of the mean |value|.
NEAR_MPE = 1e-3


def as_state(market, state) -> np.ndarray:
    """A market state from a list (as stored in JSON), checked against the market's state shape."""
    template = market.initial_state(np.random.default_rng(0))
    array = np.asarray(state, dtype=template.dtype)
    if array.size == template.size:  # JSON keeps no shape for empty states (memory 0)
        array = array.reshape(template.shape)
    if array.shape != template.shape:
        raise ValueError(f"start_state: expected shape {template.shape} for {market.market_type}, got {array.shape}")
    return array


def play(
    policy,
    market,
    steps: int,
    seed: int = 0,
    forced: dict[int, np.ndarray] | None = None,
    start_state=None,
) -> dict[str, Any]:
    """Greedy play for ``steps`` periods from ``start_state`` (default: drawn with ``seed``);
    ``forced[t]`` overrides the joint action at period t."""
    rng = np.random.default_rng(seed)
    state = market.initial_state(rng) if start_state is None else as_state(market, start_state)
    states, actions, profits = [], [], []
    for _, (s, joint, profit) in zip(range(steps), greedy_steps(policy, market, state, rng, forced)):
        states.append(s)
        actions.append(joint)
        profits.append(profit)
    return {"states": states, "actions": np.array(actions), "profits": np.array(profits)}


def greedy_steps(policy, market, state, rng, forced: dict[int, np.ndarray] | None = None):
    """Yield ``(state, joint action, profits)`` of greedy play period by period, without end;
    ``forced[t]`` overrides the joint action at period t."""
    t = 0
    while True:
        joint = np.asarray(policy.act(market.observe(state).astype(np.float32), state), dtype=np.int64)
        if forced and t in forced:
            joint = np.asarray(forced[t], dtype=np.int64)
        yield np.asarray(state).copy(), joint, market.stage_profits(state, joint[None])[0]
        state = market.transition(state, joint, rng)
        t += 1


def long_run(policy, market, steps: int = 50, seed: int = 0, start_state=None) -> dict[str, Any]:
    """Where greedy play settles, the outcome every long-run metric (Delta, gaps) is measured on.

    Deterministic markets (Calvano et al. 2020, section IV): iterate the greedy joint policy
    from ``start_state`` (the state reached at the end of training when known) until a state
    repeats; the outcome is the limit cycle, ``periods_to_cycle`` periods in, of
    ``cycle_length`` periods; profits are averaged over the cycle. Markets with a random
    state process have no cycle: ``steps`` periods are simulated with ``seed`` and averaged
    over the last half. The same arguments give the same outcome, bit for bit.
    """
    rng = np.random.default_rng(seed)
    start = market.initial_state(rng) if start_state is None else as_state(market, start_state)
    if not market.deterministic:
        path = play(policy, market, steps, seed, start_state=start)
        tail = max(1, steps // 2)
        return {
            "start_state": np.asarray(start).tolist(),
            "periods_to_cycle": None,
            "cycle_length": None,
            "states": path["states"][-tail:],
            "actions": path["actions"][-tail:],
            "profits": path["profits"][-tail:],
        }
    seen: dict[bytes, int] = {}
    states, actions, profits = [], [], []
    for t, (state, joint, profit) in zip(range(MAX_CYCLE_SEARCH), greedy_steps(policy, market, start, rng)):
        key = state.tobytes()
        if key in seen:
            break
        seen[key] = t
        states.append(state)
        actions.append(joint)
        profits.append(profit)
    else:
        raise RuntimeError(f"greedy play found no cycle within {MAX_CYCLE_SEARCH} periods")
    first = seen[key]
    return {
        "start_state": np.asarray(start).tolist(),
        "periods_to_cycle": first,
        "cycle_length": len(states) - first,
        "states": states[first:],
        "actions": np.array(actions[first:]),
        "profits": np.array(profits[first:]),
    }


def summarize(policy, market, steps: int = 50, seed: int = 0, start_state=None) -> dict[str, Any]:
    """Long-run greedy outcome (:func:`long_run`) next to each benchmark: grid distances, Delta, Nash gaps.
    Games with private shocks are compared in choice probabilities (:mod:`~nashrl.analysis.ccp_eval`)."""
    if market.private_shocks:
        from nashrl.analysis.ccp_eval import ccp_summary

        return ccp_summary(policy, market, seed=seed)
    outcome = long_run(policy, market, steps, seed, start_state)
    if market.sequential:
        # A period is two steps (leader, then follower); the outcome is what each mover chose.
        last = sequential_outcome(policy, market)
        values = market.action_values(last)
        periods = max(len(outcome["profits"]) / 2, 1)
        mean_profit = outcome["profits"].sum(0) / periods
        gap, gains = stage_nash_gap(market.payoff_table(np.array([1, last[0]])), last)
    else:
        first = 0 if market.deterministic else -1  # on the cycle / the last period simulated
        last = outcome["actions"][first]
        values = market.action_values(last)
        mean_profit = outcome["profits"].mean(0)
        gap, gains = deviation_gap(market.deviation_payoffs(outcome["states"][first], last), last)
    summary: dict[str, Any] = {
        "market": market.market_type,
        "final_actions": values.tolist(),
        "final_action_indices": last.tolist(),
        "mean_profit": mean_profit.tolist(),
        "stage_nash_gap": gap,
        "stage_deviation_gains": gains.tolist(),
        "comparisons": [],
        "long_run": {
            "start_state": outcome["start_state"],
            "periods_to_cycle": outcome["periods_to_cycle"],
            "cycle_length": outcome["cycle_length"],
            "cycle_actions": market.action_values(outcome["actions"][:20]).tolist() if market.deterministic else None,
        },
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
        summary["state_stage_gap"] = state_stage_gap(summary["state_comparisons"])
        following = state_following(market, summary["state_comparisons"])
        if following is not None:
            summary["state_following"] = following
    mpe_rows = [r for r in rows if r["concept"] in ("mpe", "mpe_not_converged")]
    if mpe_rows:
        summary.update(_mpe_summary(policy, market, mpe_rows))
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
    """The greedy action at each benchmark's state against that benchmark (state-dependent markets).
    The policy acts, and its profits and deviation gains are computed, once per state (a state
    usually has several benchmark rows)."""
    played: dict[tuple, dict[str, Any]] = {}
    out = []
    for row in rows:
        state = np.asarray(row["state_vector"])
        key = tuple(state.ravel().tolist())
        if key not in played:
            joint = np.asarray(policy.act(market.observe(state).astype(np.float32), state))
            played[key] = {
                "joint": joint,
                "policy_actions": market.action_values(joint).tolist(),
                "policy_profits": market.stage_profits(state, joint[None])[0].tolist(),
                "deviation_gains": deviation_gap(market.deviation_payoffs(state, joint), joint)[1].tolist(),
            }
        at = played[key]
        steps_away = [grid_steps(g, a, x) for g, a, x in zip(market.grids, at["joint"], row["actions"])]
        out.append(
            {
                "concept": row["concept"],
                "state": row["state"],
                "benchmark_actions": row["actions"],
                "policy_actions": at["policy_actions"],
                "grid_steps": steps_away,
                "max_grid_steps": max(steps_away),
                "policy_profits": at["policy_profits"],
                "deviation_gains": at["deviation_gains"],
            }
        )
    return out


def state_stage_gap(comparisons: list[dict[str, Any]]) -> dict[str, float]:
    r"""The largest one-period gain :math:`g_i(s)` of a unilateral deviation from the greedy
    policy over the evaluated states and firms, and that gain relative to the mean
    :math:`|\pi_i(s)|` of the policy's profits there (each state counted once).

    Where actions do not move the state (exogenous shocks, ``memory: 0``) a firm's best
    response is myopic, so :math:`V^{BR}_i(s) - V_i(s) \le \max_s g / (1-\beta)` while the
    mean of :math:`V_i` over the stationary distribution is :math:`E[\pi_i] / (1-\beta)`: with
    states drawn from that distribution, ``relative`` bounds the dynamic Nash gap of
    :func:`~nashrl.analysis.best_response.dynamic_nash_gap` (over the evaluated states only).
    ``relative`` is None where the policy earns nothing at every evaluated state."""
    per_state = {}
    for c in comparisons:
        per_state.setdefault(str(c["state"]), c)
    gains = np.array([c["deviation_gains"] for c in per_state.values()])
    profits = np.abs([c["policy_profits"] for c in per_state.values()])
    scale = float(profits.mean())
    relative = float(gains.max()) / scale if scale > 0 else None
    return {"max_gain": float(gains.max()), "relative": relative, "states": len(per_state)}


def state_following(market, comparisons: list[dict[str, Any]]) -> dict[str, Any] | None:
    r"""Does the greedy policy move with the state's Nash equilibrium, and how much is there to follow?

    - ``slope``: the least-squares slope of the policy's actions on the state's Nash actions across
      the evaluated states, firm by firm centred, pooled over firms: 1 where the policy moves one
      for one with the Nash (up to the grid), 0 where it ignores the state (a pass-through
      coefficient); None where the Nash does not move.
    - ``nash_range_steps``: how far the Nash moves across the states, in grid steps (largest over
      firms, between the grid points nearest to it).
    - ``best_constant_steps``: the worst state's grid steps to the Nash of the best *state-independent*
      action, largest over firms. Where it is at most 1, "within one grid step of the state's Nash in
      every state" is met without following the state at all, so that figure alone does not show
      that a policy learned the state's effect; ``slope`` does.

    None without "nash" rows (closed-form equilibria at the states)."""
    rows = list({str(c["state"]): c for c in comparisons if c["concept"] == "nash"}.values())
    if len(rows) < 2:
        return None
    nash = np.array([c["benchmark_actions"] for c in rows], dtype=float)  # [S, N]
    played = np.array([c["policy_actions"] for c in rows], dtype=float)
    x, y = nash - nash.mean(0), played - played.mean(0)
    spread = float((x * x).sum())
    nearest = [[nearest_index(g, v) for v in nash[:, i]] for i, g in enumerate(market.grids)]
    best_constant = max(
        min(max(grid_steps(g, a, v) for v in nash[:, i]) for a in range(len(g))) for i, g in enumerate(market.grids)
    )
    return {
        "slope": float((x * y).sum() / spread) if spread > 0 else None,
        "nash_range_steps": max(max(k) - min(k) for k in nearest),
        "best_constant_steps": int(best_constant),
        "states": len(rows),
    }


def sequential_outcome(policy, market) -> np.ndarray:
    """Stackelberg: the leader's greedy quantity and the follower's greedy response to it."""
    lead_state = np.array([0, 0])
    leader = int(policy.act(market.observe(lead_state).astype(np.float32), lead_state)[0])
    follow_state = np.array([1, leader])
    follower = int(policy.act(market.observe(follow_state).astype(np.float32), follow_state)[1])
    return np.array([leader, follower])


def _mpe_summary(policy, market, rows) -> dict[str, Any]:
    r"""Capacity game: the policy's investment in every state against the MPE's expected investment,
    and the share of states (weighted by the MPE's ergodic distribution) where every firm's
    learned investment is one the MPE plays there (its support: the action itself where the MPE
    is pure); ``mpe_ergodic_share_by_firm`` is that share firm by firm.

    Where the MPE barely prefers its investment (a margin of 1e-5 of the value in the 3-firm
    game's most visited states) equality is ill-conditioned, so two numbers say how much a
    difference matters, in the MPE's own stage games: a learned investment's *stage loss*
    :math:`\max_a U_i(s, a, \sigma_{-i}) - U_i(s, a^{learned}_i, \sigma_{-i})` relative to the
    mean :math:`|V|` of the MPE; ``mpe_ergodic_stage_loss`` its ergodic mean (largest over firms),
    ``mpe_ergodic_share_near`` the ergodic share of states where every firm's loss is at most
    :data:`NEAR_MPE`. Neither replaces the share equal to the MPE."""
    from nashrl.theory.capacity import stationary_distribution

    scale = max(float(np.mean([np.abs(row["profits"]).mean() for row in rows])), 1e-12)
    gaps, equal, weights, losses = [], [], [], []
    played = np.zeros((len(market.state_list), *market.action_sizes))  # the greedy policy, one-hot rows
    invested = np.zeros((len(market.state_list), market.n_firms))
    for row in rows:
        state = np.array(row["state_vector"])
        joint = policy.act(market.observe(state).astype(np.float32), state)
        k = int(market.state_index(state))
        played[(k, *joint)] = 1.0
        invested[k] = invest = market.action_values(joint)
        gaps.append(np.abs(invest - np.array(row["actions"])).max())
        equal.append([any(np.isclose(x, y) for y in support) for x, support in zip(invest, row["support"])])
        weights.append(row["ergodic_weight"])
        losses.append(max(max(pay) - pay[a] for pay, a in zip(row["stage_payoffs"], joint)) / scale)
    equal_arr, w = np.array(equal, dtype=float), np.array(weights)
    # Each firm's long-run mean investment under the learned policy's own stationary distribution
    # (over- or under-investment against the MPE's, which weighs the MPE's rows by its own).
    learned = stationary_distribution(market, played) @ invested
    mpe = w @ np.array([row["actions"] for row in rows]) / w.sum()
    return {
        "ergodic_investment": learned.tolist(),
        "mpe_ergodic_investment": mpe.tolist(),
        "mpe_max_investment_gap": float(np.max(gaps)),
        "mpe_mean_investment_gap": float(np.mean(gaps)),
        "mpe_ergodic_share_equal": float(w @ equal_arr.min(1) / w.sum()),
        "mpe_ergodic_share_by_firm": (w @ equal_arr / w.sum()).tolist(),
        "mpe_ergodic_stage_loss": float(w @ np.array(losses) / w.sum()),
        "mpe_ergodic_share_near": float(w @ (np.array(losses) <= NEAR_MPE) / w.sum()),
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
        out["eval/max_grid_steps_to_state_nash"] = float(max(c["max_grid_steps"] for c in summary["state_comparisons"]))
        if summary["state_stage_gap"]["relative"] is not None:
            out["eval/state_stage_gap_relative"] = float(summary["state_stage_gap"]["relative"])
    following = summary.get("state_following")
    if following is not None and following["slope"] is not None:
        out["eval/state_following_slope"] = float(following["slope"])
    if "dynamic_nash_gap" in summary:
        out["eval/dynamic_nash_gap"] = float(summary["dynamic_nash_gap"]["dynamic_nash_gap"])
        out["eval/dynamic_nash_gap_relative"] = float(summary["dynamic_nash_gap"]["relative"])
    if "mpe_max_ccp_diff" in summary:
        out["eval/mpe_max_ccp_diff"] = float(summary["mpe_max_ccp_diff"])
        out["eval/mpe_mean_ccp_diff"] = float(summary["mpe_mean_ccp_diff"])
    for key in ("active_firms", "entries"):
        if f"ergodic_{key}" in summary:
            out[f"eval/ergodic_{key}"] = float(summary[f"ergodic_{key}"])
    if "mpe_mean_investment_gap" in summary:
        out["eval/mpe_mean_investment_gap"] = float(summary["mpe_mean_investment_gap"])
        out["eval/mpe_ergodic_share_equal"] = float(summary["mpe_ergodic_share_equal"])
        out["eval/mpe_ergodic_share_near"] = float(summary["mpe_ergodic_share_near"])
        out["eval/mpe_ergodic_stage_loss"] = float(summary["mpe_ergodic_stage_loss"])
        out["eval/ergodic_investment"] = float(np.mean(summary["ergodic_investment"]))
    return out
