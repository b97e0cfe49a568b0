"""Processes a run started and left behind, found by a mark in their environment.

The suite (tests/conftest.py) and the benchmarks (benchmarks/common.py) both
fail when a server, supervisor or job they started outlives them: one search,
one way to end what is left.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil


def marked(name: str) -> list[psutil.Process]:
    """Live processes whose environment carries `name` with our value, but not us."""
    mark, me, found = os.environ[name], os.getpid(), []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != me and proc.environ().get(name) == mark and \
                    proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def end_leftovers(name: str, grace: float = 20.0) -> list[str]:
    """Wait up to `grace` s (supervisors finish their last writes), then kill what is left;
    returns each killed process as `pid: command`."""
    return end_found(lambda: marked(name), grace, 0.2)


def end_found(find: Callable[[], list[psutil.Process]], grace: float,
              every: float) -> list[str]:
    """Ask `find` every `every` s until it finds nothing or `grace` s pass, then kill what it
    finds (also `.ci/mutation`'s sweep, which finds servers by their directory too)."""
    deadline = time.monotonic() + grace
    left = find()
    while left and time.monotonic() < deadline:
        time.sleep(every)
        left = find()
    ended = []
    for proc in left:
        try:
            ended.append(f"{proc.pid}: {' '.join(proc.cmdline())[:120]}")
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return ended
