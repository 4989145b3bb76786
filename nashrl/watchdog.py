"""``python -I watchdog.py FD DRIVER_PID``: end a dead driver's local Ray processes (Linux).

Standard library only: it runs as a file, without importing the nashrl package.

Started by :func:`nashrl.ray_session.start_watchdog` right after ``ray.init``. It blocks
reading the pipe ``FD`` whose only writer is the driver; when the driver exits (normally or
killed), the read returns. Then every process descended from the driver, found through
``/proc`` (GCS, raylet, the dashboard and runtime-env agents, workers), gets SIGTERM and,
two seconds later, SIGKILL. The ``nashrl`` command leaves this teardown to the watchdog on
purpose once its results are written (:func:`nashrl.cli.console_main`); a program that calls
``ray.shutdown()`` has ended them already and leaves nothing to do.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def processes() -> dict[int, tuple[int, int]]:
    """``{pid: (parent pid, start time)}`` of every process, from ``/proc/<pid>/stat``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), int(fields[19]))  # ppid, starttime (clock ticks)
    return out


def parents() -> dict[int, int]:
    return {pid: info[0] for pid, info in processes().items()}


def descendants(root: int, tree: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in tree.items():
        children.setdefault(parent, []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def main(fd: int, driver: int) -> None:
    tracked: dict[int, int] = {}  # pid -> start time (a reused pid is not the same process)
    os.set_blocking(fd, False)
    while True:  # until the driver's end of the pipe closes: record its descendants as they start
        try:
            if os.read(fd, 1) == b"":
                break
        except BlockingIOError:
            pass
        table = processes()
        tree = {pid: info[0] for pid, info in table.items()}
        tracked.update({pid: table[pid][1] for pid in descendants(driver, tree)})
        time.sleep(0.5)
    # Orphans are re-parented to init: also follow the recorded processes' own descendants.
    table = processes()
    tree = {pid: info[0] for pid, info in table.items()}
    victims = {pid for pid, start in tracked.items() if pid in table and table[pid][1] == start}
    for pid in list(victims):
        victims.update(descendants(pid, tree))
    victims.discard(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(2.0)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
