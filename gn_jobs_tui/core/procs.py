"""Process identity and signalling that never hits the wrong process.

Pids are reused, so a pid alone is never signalled: the start time recorded
beside it must match the live process. psutil's Process objects check their
own identity again before each signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import psutil

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
START_TIME_TOLERANCE = 0.05


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphaned descendants of our job re-parent to us, so we can still find them."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """preexec_fn for the job: the kernel SIGKILLs it if its supervisor dies."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def same_process(pid: int | None, started: float | None) -> bool:
    """True only if `pid` is alive and started when we recorded it."""
    if not pid or pid <= 1 or started is None:
        return False
    actual = start_time(pid)
    return actual is not None and abs(actual - started) <= START_TIME_TOLERANCE


def descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


class JobProcesses:
    """The job's process group plus every descendant we have seen."""

    def __init__(self, leader_pid: int, supervisor: psutil.Process) -> None:
        self.leader_pid = leader_pid
        self.pgid = leader_pid  # the job runs in its own session/group
        self.supervisor = supervisor
        self.known: dict[int, psutil.Process] = {}
        self.refresh()

    def refresh(self) -> None:
        for proc in descendants(self.supervisor):
            key = proc.pid
            if key not in self.known:
                self.known[key] = proc

    def alive(self) -> list[psutil.Process]:
        out = []
        for proc in self.known.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def signal_all(self, sig: int) -> int:
        """Signal the group and every known descendant; returns how many."""
        self.refresh()
        sent = 0
        try:
            os.killpg(self.pgid, sig)
            sent += 1
        except (ProcessLookupError, PermissionError):
            pass  # the group is empty already; descendants are handled below
        for proc in self.alive():
            try:
                proc.send_signal(sig)  # psutil re-checks identity (pid reuse)
                sent += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return sent

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            self.reap()
            time.sleep(0.05)
        return not self.alive()

    def reap(self) -> None:
        """Collect zombies adopted as subreaper (never the leader: Popen owns it)."""
        for pid, proc in list(self.known.items()):
            if pid == self.leader_pid:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(pid, os.WNOHANG)
            except (psutil.NoSuchProcess, ChildProcessError, psutil.AccessDenied):
                continue
