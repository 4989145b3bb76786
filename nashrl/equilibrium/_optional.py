"""The compiled (numba) kernels are optional: each caller falls back to its torch path without them."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType


@functools.cache  # (an import per call costs about a microsecond, on the solver's per-call path)
def compiled(name: str) -> ModuleType | None:
    """The kernel module ``nashrl.equilibrium.<name>`` (e.g. ``"_bimatrix_numba"``), or None when
    numba is not installed."""
    try:
        return importlib.import_module(f"nashrl.equilibrium.{name}")
    except ImportError:
        return None
