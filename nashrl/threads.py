"""Thread budget per process: env runners, the learner (driver) and the solver share the cores.

Without it, the first call of the solver's numba ``prange`` kernel starts an OpenMP pool
over every core in *each* process and torch follows it (``torch.get_num_threads()`` goes
from Ray's 1 to the core count); OpenMP then spin-waits inside every small matmul, and
on a shared machine a batch-4 forward of an env runner took 6.7 ms instead of 29 us.

- :func:`configure_environment` (run on ``import nashrl``, before numba or torch start any
  pool) selects numba's ``workqueue`` threading layer, which does not spin and does not
  touch OpenMP; local Ray workers inherit it from the driver.
- :func:`set_thread_budget` fixes torch's and numba's thread counts of a process. nashrl calls
  it in every env runner (``num_cpus_per_env_runner``, 1 by default) and in the process that
  runs the algorithm and its learner (``num_cpus_for_main_process``; the CLI sets it to
  ``run.learner_threads``, by default the cores left after the env runners).
"""

from __future__ import annotations

import os


def configure_environment() -> None:
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


def set_thread_budget(threads: int) -> None:
    import numba
    import torch

    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def thread_counts() -> dict[str, object]:
    """This process's torch and numba thread counts and numba's threading layer."""
    import numba
    import torch

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel function has run yet
        layer = None
    return {"torch": torch.get_num_threads(), "numba": numba.get_num_threads(), "numba_layer": layer}


def default_learner_threads(num_env_runners: int) -> int:
    """The cores a local run leaves to its learner after one per env runner."""
    return max(1, (os.cpu_count() or 1) - num_env_runners)
