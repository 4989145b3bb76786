"""Starting and joining Ray the way nashrl needs it: loopback, no stray files, no orphans.

- A local instance advertises ``127.0.0.1`` (Ray 2.60's gRPC servers still listen on every
  interface; its default token authentication guards them) and starts no dashboard.
- A cluster address (``run.address`` / ``RAY_ADDRESS``) must answer within
  :data:`CONNECT_TIMEOUT_S` seconds, else a one-line error instead of a hang.
- RLlib's ``Algorithm`` (a Tune ``Trainable``) makes an empty ``~/ray_results/<stamp>``
  folder per run; nashrl points it at a temporary folder it removes (:func:`rllib_logdir`).
- A local instance's processes (GCS, raylet and the agents it starts) outlive a driver
  killed with ``kill -9``; a small watchdog process (:mod:`nashrl.watchdog`, Linux) ends
  them when the driver's pipe closes. It runs its file with the standard library only
  (``python -I``): importing the nashrl package would cost it ~5 s of CPU beside the run's
  own start-up.
- Ray starts worker processes (env runners) at niceness 15 (``worker_niceness``), below the
  driver: on a machine where anything else runs at normal priority they get a few percent
  of a core (a Cournot run beside two busy loops on 2 cores trained 25x slower than on a
  quiet machine). A local instance starts its workers at niceness 0 (:data:`LOCAL_RAY`); a
  cluster needs ``RAY_worker_niceness=0`` in the environment of ``ray start`` (cluster.yaml
  sets it), since an unprivileged worker cannot lower its own niceness.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nashrl.markets.validation import ConfigError

CONNECT_TIMEOUT_S = 5.0
_WATCHDOG: dict[str, Any] = {}
#: How nashrl starts a local Ray instance (see the module docstring).
LOCAL_RAY: dict[str, Any] = {
    "include_dashboard": False,
    "log_to_driver": False,
    "_node_ip_address": "127.0.0.1",
    "_system_config": {"worker_niceness": 0},
}


def start_local_ray(**options: Any) -> None:
    """``ray.init`` of a local instance with :data:`LOCAL_RAY` (``options`` added or overriding)."""
    import ray

    ray.init(**{**LOCAL_RAY, **options})


def check_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a ``host:port`` / ``ray://host:port`` address where nothing answers (``auto`` is Ray's)."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"run.address: expected 'auto', 'host:port' or 'ray://host:port', got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(
            f"run.address: nothing answers at {host}:{port} within {timeout:g} s ({err.strerror or err}); "
            "expected a running Ray cluster (ray start --head) or no address for a local instance"
        ) from err


def init_ray(config: dict[str, Any]) -> None:
    """Connect to ``run.address`` / ``RAY_ADDRESS`` if given, else start a local Ray instance."""
    import ray

    if ray.is_initialized():
        return
    address = config["run"].get("address") or os.environ.get("RAY_ADDRESS")
    if address:
        check_address(address)
        ray.init(address=address, log_to_driver=False)
        cpus = ray.cluster_resources().get("CPU", 0)
        if config["run"]["num_env_runners"] > cpus:
            ray.shutdown()
            raise ConfigError(
                f"run.num_env_runners: {config['run']['num_env_runners']} env runners need as many CPUs, the "
                f"cluster at {address} has {cpus:g}; expected at most {cpus:g}"
            )
    else:
        start_local_ray()
        start_watchdog()
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()


def owns_local_instance() -> bool:
    """True when this process started a local Ray instance that its watchdog will end."""
    import ray

    return bool(_WATCHDOG) and ray.is_initialized()


def start_watchdog() -> None:
    """Have a separate process end this driver's local Ray processes if the driver dies (Linux)."""
    if not sys.platform.startswith("linux") or _WATCHDOG:
        return
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).with_name("watchdog.py")), str(read_end), str(os.getpid())],
        pass_fds=(read_end,),
        start_new_session=True,  # not in the driver's process group: survives its killing
        stdin=subprocess.DEVNULL,
    )
    os.close(read_end)
    _WATCHDOG.update(pipe=write_end, process=process)  # the pipe closes when the driver dies


@contextlib.contextmanager
def rllib_logdir() -> Iterator[str]:
    """Point RLlib's per-``Algorithm`` log folder (``~/ray_results/<stamp>``) at a temporary folder."""
    import ray.tune.trainable.trainable as trainable

    folder = tempfile.mkdtemp(prefix="nashrl-rllib-")
    saved = trainable.DEFAULT_STORAGE_PATH
    trainable.DEFAULT_STORAGE_PATH = folder
    try:
        yield folder
    finally:
        trainable.DEFAULT_STORAGE_PATH = saved


def remove_logdir(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
