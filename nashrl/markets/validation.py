"""Checks of market parameters: every error names the field and what was expected."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """A configuration value is missing or impossible; the message names the field."""


#: Size caps, checked before anything is enumerated: the stage game has this many joint
#: actions at most (every joint action is enumerated for payoff tables and Nash-Q's head),
#: an action grid this many points.
MAX_JOINT_ACTIONS = 2_000_000
MAX_GRID_POINTS = 10_000


def joint_actions(sizes: list[int] | tuple[int, ...], field: str = "market") -> int:
    """The number of joint actions, refused above :data:`MAX_JOINT_ACTIONS` (computed, not enumerated)."""
    total = math.prod(int(n) for n in sizes)
    if total > MAX_JOINT_ACTIONS:
        raise ConfigError(
            f"{field}: {len(sizes)} firms with {list(sizes)[:4]}{'...' if len(sizes) > 4 else ''} actions give "
            f"{float(total):.3g} joint actions; expected at most {MAX_JOINT_ACTIONS:,} (every joint action is "
            "enumerated): use fewer firms or coarser grids"
        )
    return total


MAX_FIRMS = 64


def n_firms(value: Any, field: str = "market.n_firms") -> int:
    n = integer(value, field, minimum=2)
    if n > MAX_FIRMS:
        raise ConfigError(f"{field}: expected at most {MAX_FIRMS} firms, got {n}")
    return n


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{field}: expected true or false, got {value!r}")
    return value


def is_real(value: Any) -> bool:
    """A finite int or float (not a bool, not a string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(
    value: Any, field: str, *, positive: bool = False, nonneg: bool = False, below: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"{field}: expected a finite number, got {value!r}")
    value = float(value)
    if positive and value <= 0:
        raise ConfigError(f"{field}: expected a positive number, got {value}")
    if nonneg and value < 0:
        raise ConfigError(f"{field}: expected a number >= 0, got {value}")
    if below is not None and value >= below:
        raise ConfigError(f"{field}: expected a number below {below}, got {value}")
    return value


def integer(value: Any, field: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def per_firm(value: Any, n_firms: int, field: str, **checks: Any) -> np.ndarray:
    """A scalar (same for every firm) or a list of exactly ``n_firms`` numbers."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != n_firms:
            raise ConfigError(f"{field}: expected {n_firms} values (one per firm), got {len(value)}")
        return np.array([number(v, f"{field}[{i}]", **checks) for i, v in enumerate(value)])
    return np.full(n_firms, number(value, field, **checks))


def grid(spec: Any, field: str) -> np.ndarray:
    """An action grid: a list of increasing numbers, or ``{low, high, size}`` (evenly spaced)."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "size"}
        if unknown or not {"low", "high", "size"} <= set(spec):
            raise ConfigError(f"{field}: expected keys low, high, size, got {sorted(spec)}")
        low, high = number(spec["low"], f"{field}.low"), number(spec["high"], f"{field}.high")
        size = integer(spec["size"], f"{field}.size")
        if size > MAX_GRID_POINTS:
            raise ConfigError(f"{field}.size: expected at most {MAX_GRID_POINTS:,} points, got {size:,}")
        if size > 1 and high <= low:
            raise ConfigError(f"{field}: expected high > low, got low={low}, high={high}")
        return np.linspace(low, high, size)
    if isinstance(spec, (list, tuple, np.ndarray)):
        if len(spec) == 0:
            raise ConfigError(f"{field}: expected a non-empty grid, got an empty list")
        if len(spec) > MAX_GRID_POINTS:
            raise ConfigError(f"{field}: expected at most {MAX_GRID_POINTS:,} points, got {len(spec):,}")
        values = np.array([number(v, f"{field}[{i}]") for i, v in enumerate(spec)])
        if np.any(np.diff(values) <= 0):
            raise ConfigError(f"{field}: expected strictly increasing values, got {values.tolist()}")
        return values
    raise ConfigError(f"{field}: expected a list of numbers or {{low, high, size}}, got {spec!r}")


def only_known(params: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; expected some of {sorted(known)}")
