"""One local Ray instance for the whole test session (started only by tests that ask for it)."""

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
# One torch and numba thread in the test process and (OMP_NUM_THREADS) the CLI processes tests
# start: the suite's work is many small tensors, so a second thread buys nothing on a quiet
# machine (tests/test_theory, test_logit, test_equilibrium, test_aggregative_logit: 98 s with 2
# threads, 101 s with 1, 2 cores) and costs much on a shared one (beside two busy processes:
# 280 s with 2 threads, 165 s with 1). Runs built by tests set their own budget (nashrl.threads).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from nashrl.threads import set_thread_budget  # noqa: E402  (after the variables above)

set_thread_budget(1)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from nashrl.markets import register_rllib_envs
    from nashrl.ray_session import start_local_ray

    if not ray.is_initialized():  # as nashrl starts a local instance (workers at niceness 0)
        start_local_ray(num_cpus=2, configure_logging=False)
    register_rllib_envs()
    yield ray
    ray.shutdown()
