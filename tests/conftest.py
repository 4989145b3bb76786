"""One local Ray instance for the whole test session (started only by tests that ask for it)."""

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


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
