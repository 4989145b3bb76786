"""A run's first seconds: work moved off the critical path of start-up.

**RLlib's seeding, without the cost torch adds to it.** RLlib seeds every process it builds (the
Algorithm, each env runner, each learner) with
``torch.use_deterministic_algorithms(True)``. In torch 2.13 that function first imports
``torch._inductor.config`` -- the whole of TorchInductor and TorchDynamo, 1.7 s per process on
the project's machine -- only to set a flag for ``torch.compile``, which nashrl does not use.
Inside :func:`eager_deterministic_flag` the call sets the eager flag alone (and Inductor's flag
too when Inductor is already loaded): the same deterministic eager kernels, the run's start-up
seconds shorter.

**Imports in the background.** The first ``torch.optim`` optimizer a process builds imports
TorchDynamo (1.4 s here: optimizers are wrapped in ``torch._disable_dynamo``). The driver builds
its learner's optimizer only after it has waited seconds for the remote env runners to start;
:func:`import_in_background` runs such imports in a thread while the main thread waits.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Iterator

import torch


def _set_flag(mode: bool, *, warn_only: bool = False) -> None:
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = mode
    torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


@contextlib.contextmanager
def eager_deterministic_flag() -> Iterator[None]:
    """Within: ``torch.use_deterministic_algorithms`` sets torch's eager flag without importing Inductor."""
    original = torch.use_deterministic_algorithms
    torch.use_deterministic_algorithms = _set_flag
    try:
        yield
    finally:
        torch.use_deterministic_algorithms = original


def import_in_background(*modules: str) -> threading.Thread:
    """Import ``modules`` in a daemon thread (a later ``import`` of them finds them loaded, or waits
    on the import lock for the thread to finish them)."""

    def run() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # an import error surfaces where the module is used
                importlib.import_module(name)

    thread = threading.Thread(target=run, name="nashrl-import", daemon=True)
    thread.start()
    return thread
