"""Benchmark rows ``{concept, state, actions, profits, ...}``: what every market's
``benchmarks()`` returns, ``nashrl theory`` prints and evaluation compares a policy with.

Actions are economic values (quantities, prices, investments) per firm; profits are
per-period, per firm (for an MPE: discounted values). ``state`` is a label (None for the
market's one static stage game), ``state_vector`` the market state the row is about.
"""

from __future__ import annotations

import numpy as np

from nashrl.theory.grid import grid_equilibria


def row(concept: str, actions, profits, state=None, state_vector=None, **extra) -> dict:
    out = {"concept": concept, "state": state, "actions": [float(x) for x in actions]}
    if state_vector is not None:  # the market state the row is about (for evaluating a policy there)
        out["state_vector"] = np.asarray(state_vector).tolist()
    out["profits"] = [float(x) for x in profits]
    out.update(extra)
    return out


def grid_row(market, state: np.ndarray, label=None, selection: str = "pareto") -> dict:
    """The selected exact equilibrium of the grid stage game at ``state`` (all pure ones listed)."""
    eq = grid_equilibria(market, state, selection)
    return row(
        "grid_nash",
        eq["selected_actions"],
        eq["selected_profits"],
        label,
        state if label is not None else None,
        pure_equilibria=eq["pure_profiles"],
        selected_is_pure=eq["selected_is_pure"],
        selection=selection,
    )


def static_rows(market, nash_actions, collusive_actions, collusive_name: str, selection: str = "pareto") -> list[dict]:
    """Closed-form Nash and collusive rows plus the grid's exact equilibrium, for a static market."""
    profit = market.price_or_quantity_profits
    state = market.representative_states()[0]
    return [
        row("nash", nash_actions, profit(np.asarray(nash_actions))),
        row(collusive_name, collusive_actions, profit(np.asarray(collusive_actions))),
        grid_row(market, state, None, selection),
    ]


#: The default benchmark of a market with states looks at this many of them at most.
MAX_DEFAULT_STATES = 64


def grid_rows(market, selection: str = "pareto") -> list[dict]:
    """Default benchmarks: the exact equilibria of the grid stage game at each representative
    state (one static row when the market has a single state)."""
    states = market.representative_states()
    if len(states) == 1:
        return [grid_row(market, states[0], None, selection)]
    return [grid_row(market, s, str(np.asarray(s).tolist()), selection) for s in states[:MAX_DEFAULT_STATES]]
