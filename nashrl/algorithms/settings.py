"""Checks shared by the algorithms' settings (type-safe: a string or a bool is never a number)."""

from __future__ import annotations

import math
from typing import Any

from nashrl.markets.validation import is_int, is_real

MAX_LAYERS, MAX_WIDTH = 16, 8192


def schedule_ok(value: Any, low: float = 0.0, high: float = math.inf) -> bool:
    """A finite number in ``[low, high]``, or ``[[step, value], ...]`` with increasing
    integer steps >= 0 and values in ``[low, high]``."""
    if is_real(value):
        return low <= value <= high
    if isinstance(value, (list, tuple)) and value:
        return all(
            isinstance(p, (list, tuple))
            and len(p) == 2
            and is_real(p[0])
            and p[0] >= 0
            and is_real(p[1])
            and low <= p[1] <= high
            for p in value
        ) and all(a[0] < b[0] for a, b in zip(value, value[1:]))
    return False


def hiddens_ok(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) <= MAX_LAYERS and all(is_int(h, 1, MAX_WIDTH) for h in value)
