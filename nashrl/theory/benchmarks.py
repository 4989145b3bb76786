"""Every theory benchmark of a market, as rows ``{concept, state, actions, profits, ...}``.

``benchmarks(market)`` is what ``nashrl theory CONFIG.yaml`` prints and what trained
policies are compared with. Actions are economic values (quantities, prices,
investments) per firm; profits are per-period, per firm (for the MPE: discounted values).
"""

from __future__ import annotations

import numpy as np

from nashrl.markets import (
    CapacityMarket,
    CournotMarket,
    DemandShockMarket,
    LinearBertrandMarket,
    LogitBertrandMarket,
    MarketEnv,
    SegmentsMarket,
    StackelbergMarket,
)
from nashrl.theory import cournot, linear_bertrand, segments, stackelberg
from nashrl.theory.capacity import solve_mpe
from nashrl.theory.grid import grid_equilibria, grid_subgame_perfect


def _row(concept: str, actions, profits, state=None, state_vector=None, **extra) -> dict:
    row = {"concept": concept, "state": state, "actions": [float(x) for x in actions]}
    if state_vector is not None:  # the market state the row is about (for evaluating a policy there)
        row["state_vector"] = np.asarray(state_vector).tolist()
    row["profits"] = [float(x) for x in profits]
    row.update(extra)
    return row


def _grid_row(market: MarketEnv, state: np.ndarray, label=None, selection: str = "pareto") -> dict:
    eq = grid_equilibria(market, state, selection)
    return _row(
        "grid_nash",
        eq["selected_actions"],
        eq["selected_profits"],
        label,
        state if label is not None else None,
        pure_equilibria=eq["pure_profiles"],
        selected_is_pure=eq["selected_is_pure"],
        selection=selection,
    )


def _static_rows(market, nash_actions, collusive_actions, collusive_name: str, state=None, label=None) -> list[dict]:
    profit = market.price_or_quantity_profits
    state = market.representative_states()[0] if state is None else state
    return [
        _row("nash", nash_actions, profit(np.asarray(nash_actions)), label),
        _row(collusive_name, collusive_actions, profit(np.asarray(collusive_actions)), label),
        _grid_row(market, state, label),
    ]


def benchmarks(market: MarketEnv, selection: str = "pareto") -> list[dict]:
    if isinstance(market, DemandShockMarket):
        rows = []
        for k, state in enumerate(market.representative_states()):
            a = market.a_levels[k]
            label = f"a={a:g}"
            q_n, q_m = cournot.nash(a, market.b, market.costs), cournot.cartel(a, market.b, market.costs)
            rows.append(_row("nash", q_n, cournot.profits(a, market.b, market.costs, q_n), label, state))
            rows.append(_row("cartel", q_m, cournot.profits(a, market.b, market.costs, q_m), label, state))
            rows.append(_grid_row(market, state, label, selection))
        return rows
    if isinstance(market, CournotMarket):
        return _static_rows(
            market,
            cournot.nash(market.a, market.b, market.costs),
            cournot.cartel(market.a, market.b, market.costs),
            "cartel",
        )
    if isinstance(market, LinearBertrandMarket):
        return _static_rows(
            market,
            linear_bertrand.nash(market.a, market.gamma, market.costs),
            linear_bertrand.joint_profit(market.a, market.costs),
            "joint_profit",
        )
    if isinstance(market, LogitBertrandMarket):
        return _static_rows(market, market.p_nash, market.p_monopoly, "joint_profit")
    if isinstance(market, SegmentsMarket):
        state = market.representative_states()[0]
        w = market.weights(state)
        p_n = segments.nash(market.a, market.a0s, market.mus, w, market.costs)
        label = "equal segment weights"
        return [
            _row("nash", p_n, market.stage_profits_at_prices(state, p_n), label, state),
            _grid_row(market, state, label, selection),
        ]
    if isinstance(market, StackelbergMarket):
        a, b, (c_l, c_f) = market.a, market.b, market.costs
        q_s = stackelberg.subgame_perfect(a, b, c_l, c_f)
        q_c = cournot.nash(a, b, market.costs)
        grid = grid_subgame_perfect(market)
        return [
            _row(
                "subgame_perfect",
                q_s,
                cournot.profits(a, b, market.costs, q_s),
                outcome=stackelberg.outcome_kind(a, b, c_l, c_f),
            ),
            _row("cournot_nash", q_c, cournot.profits(a, b, market.costs, q_c)),
            _row("grid_subgame_perfect", grid["actions"], grid["profits"]),
        ]
    if isinstance(market, CapacityMarket):
        mpe = solve_mpe(market, selection=selection)
        invest = mpe.expected_investment(market.grids[0])
        # A profile that is not verified as an MPE is never labelled "mpe".
        concept = "mpe" if mpe.converged else "mpe_not_converged"
        return [
            _row(
                concept,
                x,
                vals,
                [int(k) for k in s],
                s,
                converged=bool(mpe.converged),
                method=mpe.method,
                best_response_gain=float(mpe.best_response_gain),
                stage_gap=float(gap),
            )
            for s, x, vals, gap in zip(mpe.states, invest, mpe.values, mpe.stage_gap)
        ]
    raise TypeError(f"no theory benchmark for market type {type(market).__name__}")
