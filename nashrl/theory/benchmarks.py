"""Every theory benchmark of a market: ``benchmarks(market)`` is ``market.benchmarks()``.

Each market declares its own benchmarks (closed forms, exact grid equilibria, computed
MPE) in its class, so a plug-in market brings its own or inherits the default, the exact
equilibria of its grid stage game (:func:`nashrl.theory.rows.grid_rows`). Rows are
described in :mod:`nashrl.theory.rows`.
"""

from __future__ import annotations


def benchmarks(market, selection: str = "pareto") -> list[dict]:
    rows = market.benchmarks(selection=selection)
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and {"concept", "actions", "profits"} <= set(r) for r in rows
    ):
        raise TypeError(f"{type(market).__name__}.benchmarks: expected a list of rows with concept, actions, profits")
    return rows
