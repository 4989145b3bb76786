r"""Metrics of play against theory.

- **Profit gain** (Calvano et al. 2020): :math:`\Delta = (\bar\pi - \pi^N) / (\pi^M - \pi^N)`,
  0 at the one-shot Nash profit, 1 at the joint-profit (monopoly) profit.
- **Stage Nash gap** of a pure profile :math:`a` in a stage game :math:`G`: the largest
  gain of one firm from a unilateral deviation,
  :math:`\max_i \max_{a_i'} G_i(a_i', a_{-i}) - G_i(a)`; zero exactly at a pure equilibrium.
- **Grid distance**: how many grid steps each firm's action is from a benchmark action.
"""

from __future__ import annotations

import numpy as np


def profit_gain(profit: np.ndarray | float, nash_profit: np.ndarray | float, monopoly_profit: np.ndarray | float):
    return (np.asarray(profit) - np.asarray(nash_profit)) / (np.asarray(monopoly_profit) - np.asarray(nash_profit))


def stage_nash_gap(table: np.ndarray, profile: np.ndarray) -> tuple[float, np.ndarray]:
    """(gap, per-firm gains) of the pure ``profile`` in the stage game ``table [N, A_1..A_N]``."""
    profile = tuple(int(a) for a in profile)
    gains = []
    for i in range(table.shape[0]):
        deviations = table[i][profile[:i] + (slice(None),) + profile[i + 1 :]]
        gains.append(float(deviations.max() - table[i][profile]))
    gains = np.maximum(np.array(gains), 0.0)
    return float(gains.max()), gains


def grid_steps(grid: np.ndarray, action_index: int, value: float) -> int:
    """Grid steps between action ``action_index`` and the grid point nearest to ``value``."""
    return abs(int(action_index) - int(np.argmin(np.abs(np.asarray(grid) - value))))
