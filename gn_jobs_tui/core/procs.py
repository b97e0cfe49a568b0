"""Process identity and signalling that never hits the wrong process (Linux, from /proc).

Pids are reused, so a pid alone is never signalled: the start time recorded
beside it must match the live process. A signal goes through a pidfd opened
before the start time is checked, so the process checked is the one signalled.
Start times are the same numbers psutil's `create_time()` gives (boot time
plus the start tick), read from /proc directly: the supervisor, one per
running job, does not pay for importing psutil.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

TYPE_CHECKING = False  # one supervisor per running job: no run-time `typing`
if TYPE_CHECKING:
    from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
START_TIME_TOLERANCE = 0.05
_TICKS = os.sysconf("SC_CLK_TCK")
_BOOT: list[float] = []


def _libc(name: str) -> Callable[..., int] | None:
    """A libc function taking and returning C ints, through `_ctypes`, the C half of ctypes:
    the `ctypes` package defines its whole type hierarchy on import (0.2 MB more RSS in every
    supervisor) for a few int calls. Falls back on `ctypes` where `_ctypes` lacks these
    private calls; None where libc has no such function."""
    try:
        import _ctypes

        address = _ctypes.dlsym(_ctypes.dlopen(None), name)
        call = _ctypes.call_function
    except (ImportError, AttributeError, OSError):
        try:
            import ctypes

            return getattr(ctypes.CDLL(None, use_errno=True), name)
        except (ImportError, AttributeError, OSError):
            return None
    return lambda *args: call(address, args)


#: Found on import, not on first use: `die_with_parent` runs in a forked child (preexec_fn),
#: where importing is unsafe if the parent had other threads.
_PRCTL = _libc("prctl")
_MALLOC_TRIM = _libc("malloc_trim")  # glibc's; other libcs may lack it


def _prctl(option: int, value: int) -> bool:
    return _PRCTL is not None and _PRCTL(option, value, 0, 0, 0) == 0


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the kernel (glibc `malloc_trim(0)`). Starting up
    frees more than it keeps (compiling modules when no bytecode is cached, imports), and
    freed heap stays in RSS otherwise: one supervisor runs per job. True if any was released."""
    return _MALLOC_TRIM is not None and _MALLOC_TRIM(0) == 1


def become_subreaper() -> bool:
    """Orphaned descendants of our job re-parent to us, so we can still find them."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """preexec_fn for the job: the kernel SIGKILLs it if its supervisor dies."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def boot_time() -> float:
    if not _BOOT:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime"):
                    _BOOT.append(float(line.split()[1]))
                    break
            else:
                _BOOT.append(0.0)
    return _BOOT[0]


def stat(pid: int) -> tuple[str, int, int, float] | None:
    """(state letter, parent pid, process group, start time) of a live or zombie pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or ')': split after the last one.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return (fields[0].decode(), int(fields[1]), int(fields[2]),
                boot_time() + int(fields[19]) / _TICKS)
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> float | None:
    found = stat(pid)
    return found[3] if found else None


def same_process(pid: int | None, started: float | None) -> bool:
    """True only if `pid` is alive (not a zombie) and started when we recorded it."""
    if not pid or pid <= 1 or started is None:
        return False
    found = stat(pid)
    return found is not None and found[0] != "Z" and abs(found[3] - started) <= START_TIME_TOLERANCE


def send(pid: int, started: float, sig: int) -> bool:
    """Signal `pid` only if it is still the process that started at `started`."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False  # gone already
    try:
        if not same_process(pid, started):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def children_of() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process we can see."""
    out: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = stat(int(name))
            if found is not None:
                out.setdefault(found[1], []).append(int(name))
    return out


def descendants(root: int, skip: frozenset[int] = frozenset()) -> list[int]:
    """Every descendant of `root`, leaving out the subtrees of the pids in `skip`."""
    tree = children_of()
    out: list[int] = []
    todo = [c for c in tree.get(root, []) if c not in skip]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(c for c in tree.get(pid, []) if c not in skip)
    return out


class JobProcesses:
    """The job's process group plus every descendant we have seen, each with its start time."""

    def __init__(self, leader_pid: int, supervisor_pid: int | None = None) -> None:
        self.leader_pid = leader_pid
        self.pgid = leader_pid  # the job runs in its own session/group
        self.supervisor_pid = supervisor_pid or os.getpid()
        # Children the supervisor had before the job (a test running it in-process) are not the job's.
        self.foreign = frozenset(descendants(self.supervisor_pid)) - {leader_pid}
        self.known: dict[int, float] = {}
        self.leader_reaped = False
        self.refresh()

    def refresh(self) -> None:
        for pid in descendants(self.supervisor_pid, self.foreign):
            started = start_time(pid)
            if started is not None and abs(self.known.get(pid, started) - started) <= START_TIME_TOLERANCE:
                self.known.setdefault(pid, started)
            elif started is not None:
                self.known[pid] = started  # a reused pid: the new process is the descendant now

    def alive(self, include_leader: bool = True) -> list[int]:
        return [pid for pid, started in self.known.items()
                if (include_leader or pid != self.leader_pid) and same_process(pid, started)]

    def signal_all(self, sig: int, include_leader: bool = True) -> int:
        """Signal the group (while its leader is unreaped, so the group id is still ours)
        and every known descendant that is still the process we saw; returns how many."""
        self.refresh()
        sent = 0
        if not self.leader_reaped and include_leader:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # an empty group
                os.killpg(self.pgid, sig)
                sent += 1
        for pid in self.alive(include_leader):
            sent += send(pid, self.known[pid], sig)
        return sent

    def wait_gone(self, timeout: float, include_leader: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reap()
            if not self.alive(include_leader):
                return True
            time.sleep(0.05)
        return not self.alive(include_leader)

    def reap(self) -> None:
        """Collect zombies adopted as subreaper (never the leader: Popen owns it)."""
        for pid, started in list(self.known.items()):
            if pid == self.leader_pid:
                continue
            found = stat(pid)
            if found is None:
                del self.known[pid]
            elif found[0] == "Z" and abs(found[3] - started) <= START_TIME_TOLERANCE:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue  # not our child (its parent reaps it)
