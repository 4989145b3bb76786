r"""Metrics of play against theory.

- **Profit gain** (Calvano et al. 2020, eq. 6): :math:`\Delta = (\bar\pi - \bar\pi^N) / (\bar\pi^M - \bar\pi^N)`
  on profits *averaged over firms* (:math:`\bar\pi = \frac1N \sum_i \pi_i`), 0 at the
  one-shot Nash profit, 1 at the joint-profit (monopoly) profit. It is defined wherever
  :math:`\bar\pi^M \ne \bar\pi^N`; where they coincide (e.g. a market in which Nash is
  already joint-profit maximising) it is reported as undefined (None), never 0/0. With
  asymmetric firms a firm's joint-profit profit can be *below* its Nash profit (the
  cartel shuts a high-cost firm down), so per-firm ratios
  :math:`(\pi_i - \pi_i^N)/(\pi_i^M - \pi_i^N)` are secondary (None where the firm's own
  denominator is 0).
- **Stage Nash gap** of a pure profile :math:`a` in a stage game :math:`G`: the largest
  gain of one firm from a unilateral deviation,
  :math:`\max_i \max_{a_i'} G_i(a_i', a_{-i}) - G_i(a)`; zero exactly at a pure equilibrium.
- **Grid distance**: how many grid steps each firm's action is from a benchmark action.
"""

from __future__ import annotations

import numpy as np

_DEFINED = 1e-12


def profit_gain(profit, nash_profit, monopoly_profit) -> float | None:
    r"""Calvano's :math:`\Delta` on firm-average profits; None where joint profit equals Nash profit."""
    nash, monopoly = float(np.mean(nash_profit)), float(np.mean(monopoly_profit))
    if abs(monopoly - nash) <= _DEFINED * max(1.0, abs(nash)):
        return None
    return (float(np.mean(profit)) - nash) / (monopoly - nash)


def profit_gain_per_firm(profit, nash_profit, monopoly_profit) -> list[float | None]:
    """Per-firm ratios (secondary; None where a firm's joint-profit and Nash profits coincide)."""
    profit, nash, monopoly = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(x, float)) for x in (profit, nash_profit, monopoly_profit))
    )
    out: list[float | None] = []
    for p, n, m in zip(profit, nash, monopoly):
        out.append(None if abs(m - n) <= _DEFINED * max(1.0, abs(n)) else float((p - n) / (m - n)))
    return out


def stage_nash_gap(table: np.ndarray, profile: np.ndarray) -> tuple[float, np.ndarray]:
    """(gap, per-firm gains) of the pure ``profile`` in the stage game ``table [N, A_1..A_N]``."""
    profile = tuple(int(a) for a in profile)
    width = max(table.shape[1:])
    deviations = np.full((table.shape[0], width), -np.inf)
    for i in range(table.shape[0]):
        row = table[i][profile[:i] + (slice(None),) + profile[i + 1 :]]
        deviations[i, : len(row)] = row
    return deviation_gap(deviations, profile)


def deviation_gap(deviations: np.ndarray, profile) -> tuple[float, np.ndarray]:
    """(gap, per-firm gains) of the pure ``profile`` from each firm's deviation payoffs
    ``[N, max A_i]`` (``market.deviation_payoffs``: ``-inf`` past a firm's actions)."""
    profile = np.asarray(profile, dtype=np.int64)
    own = deviations[np.arange(len(profile)), profile]
    gains = np.maximum(deviations.max(1) - own, 0.0)
    return float(gains.max()), gains


def nearest_index(grid: np.ndarray, value: float) -> int:
    """Index of the grid point nearest to ``value``."""
    return int(np.argmin(np.abs(np.asarray(grid) - value)))


def grid_steps(grid: np.ndarray, action_index: int, value: float) -> int:
    """Grid steps between action ``action_index`` and the grid point nearest to ``value``."""
    return abs(int(action_index) - nearest_index(grid, value))
