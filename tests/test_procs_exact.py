"""Who a signal reaches, exactly: `procs.same_process`, `send`, `JobProcesses.signal_all`.

Written against the mutation run (`.ci/mutation procs`). Real processes, real
signals: a small process tree stands in for a job (a leader in its own
session; a child in its group; one that called setsid; one orphaned by a
double fork, in the group but no longer a descendant), under a stand-in
supervisor process. Each process notes every SIGUSR1/SIGUSR2 it gets in a
log file. Pending signals are delivered lowest number first, so when a
process notes a SIGUSR2 sent after the act under test, any SIGUSR1 that act
sent it is already noted: "not signalled" is checked without a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gn_jobs_tui.core import procs
from tests.conftest import wait_for

ROLES = ("leader", "child", "escaped", "orphan")

#: argv: subreaper (1/0), log path. The "supervisor" forks the leader (its own session),
#: which waits for a line: "go" forks the tree, anything else exits; the next line exits.
TREE = textwrap.dedent(r"""
    import ctypes, os, signal, sys, time

    subreaper, log = sys.argv[1] == "1", sys.argv[2]
    if subreaper:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)

    def note(text):
        os.write(fd, (text + "\n").encode())

    def become(role):
        for s in (signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(s, lambda n, f: note(f"got {role} {signal.Signals(n).name}"))
        note(f"pid {role} {os.getpid()}")

    def idle(role):
        become(role)
        while True:
            time.sleep(60)

    leader = os.fork()
    if leader == 0:
        os.setsid()
        become("leader")
        if sys.stdin.readline().strip() == "go":
            if os.fork() == 0:
                idle("child")
            if os.fork() == 0:
                os.setsid()
                idle("escaped")
            mid = os.fork()
            if mid == 0:
                if os.fork() == 0:
                    idle("orphan")
                os._exit(0)
            os.waitpid(mid, 0)
            note("tree")
            sys.stdin.readline()
        os._exit(0)
    note(f"pid supervisor {os.getpid()}")
    os.waitpid(leader, 0)
    note("reaped leader")
    while True:
        time.sleep(60)
""")


class Tree:
    """The stand-in supervisor and the job's processes, read from their log."""

    def __init__(self, tmp: Path, subreaper: bool) -> None:
        self.log = tmp / "signals.log"
        self.log.touch()
        self.sup = subprocess.Popen([sys.executable, "-c", TREE, "1" if subreaper else "0",
                                     str(self.log)], stdin=subprocess.PIPE, text=True)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def pids(self) -> dict[str, int]:
        return {w[1]: int(w[2]) for w in (line.split() for line in self.lines()) if w[0] == "pid"}

    def got(self, name: str) -> set[str]:
        return {w[1] for w in (line.split() for line in self.lines())
                if w[0] == "got" and w[2] == name}

    def pid(self, role: str) -> int:
        return wait_for(lambda: self.pids().get(role), what=f"the {role}'s pid")

    def tell(self, line: str) -> None:
        assert self.sup.stdin is not None
        self.sup.stdin.write(line + "\n")
        self.sup.stdin.flush()

    def grow(self) -> dict[str, int]:
        """The leader forks child, escaped and orphan; their pids once all are ready."""
        self.tell("go")
        wait_for(lambda: "tree" in self.lines() and set(ROLES) <= set(self.pids()),
                 what="the job's process tree")
        return self.pids()

    def got_usr1(self, roles: tuple[str, ...]) -> set[str]:
        """Which of `roles` had SIGUSR1 so far (a SIGUSR2 marker sent to each, then awaited)."""
        pids = self.pids()
        for role in roles:
            os.kill(pids[role], signal.SIGUSR2)
        wait_for(lambda: set(roles) <= self.got("SIGUSR2"), what="the SIGUSR2 markers")
        return self.got("SIGUSR1") & set(roles)

    def end(self) -> None:
        for pid in self.pids().values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.sup.kill()
        self.sup.wait()
        if self.sup.stdin is not None:
            self.sup.stdin.close()


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    """A tree whose supervisor is not a subreaper: the orphan leaves its descendants."""
    t = Tree(tmp_path, subreaper=False)
    try:
        yield t
    finally:
        t.end()


def job_of(tree: Tree) -> procs.JobProcesses:
    """The job's processes as the supervisor records them: right after the leader starts."""
    leader = tree.pid("leader")
    return procs.JobProcesses(leader, supervisor_pid=tree.pid("supervisor"))


# -- same_process ------------------------------------------------------------------------

def test_same_process_is_the_live_pid_with_its_start_time(tree: Tree) -> None:
    pid = tree.pid("supervisor")
    started = procs.start_time(pid)
    assert started is not None
    assert procs.same_process(pid, started) is True
    assert procs.same_process(pid, started + 0.04) is True  # within the tolerance
    assert procs.same_process(pid, started - 0.04) is True
    assert procs.same_process(pid, started + 0.06) is False  # another process on that pid
    assert procs.same_process(pid, started - 0.06) is False
    assert procs.same_process(pid, started - 1000) is False


@pytest.mark.parametrize("pid", [None, 0, -1])
def test_same_process_refuses_no_pid(pid: int | None) -> None:
    assert procs.same_process(pid, procs.start_time(os.getpid())) is False


def test_same_process_never_names_init() -> None:
    """pid 1 is alive and its start time is readable, but it is never a job's process."""
    started = procs.start_time(1)
    assert started is not None
    assert procs.same_process(1, started) is False


def test_same_process_needs_a_recorded_start_time() -> None:
    assert procs.same_process(os.getpid(), None) is False


def test_a_zombie_is_not_the_process_and_is_never_signalled() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        started = procs.start_time(child.pid)
        assert started is not None
        wait_for(lambda: (s := procs.stat(child.pid)) and s[0] == "Z", what="a zombie")
        assert procs.same_process(child.pid, started) is False
        assert procs.send(child.pid, started, signal.SIGTERM) is False
    finally:
        child.wait()


def test_a_pid_that_is_gone_is_not_signalled() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = procs.start_time(child.pid)
    assert started is not None
    child.wait()
    assert procs.stat(child.pid) is None or procs.start_time(child.pid) != started
    assert procs.same_process(child.pid, started) is False
    assert procs.send(child.pid, started, signal.SIGTERM) is False


# -- send --------------------------------------------------------------------------------

def test_send_signals_only_the_process_that_started_then(tree: Tree) -> None:
    pid = tree.pid("leader")
    started = procs.start_time(pid)
    assert started is not None
    assert procs.send(pid, started - 1, signal.SIGUSR1) is False  # a reused pid: not ours
    assert tree.got_usr1(("leader",)) == set()
    assert procs.send(pid, started, signal.SIGUSR1) is True
    wait_for(lambda: "leader" in tree.got("SIGUSR1"), what="SIGUSR1 to the leader")


def test_send_reports_a_signal_the_kernel_refused(tree: Tree) -> None:
    pid = tree.pid("leader")
    started = procs.start_time(pid)
    assert started is not None
    assert procs.send(pid, started, 999) is False  # no such signal: EINVAL
    assert procs.same_process(pid, started)  # and it is untouched


# -- signal_all --------------------------------------------------------------------------

def test_signal_all_reaches_the_group_and_every_descendant_and_counts(tree: Tree) -> None:
    job = job_of(tree)
    pids = tree.grow()
    leader = pids["leader"]
    orphan = procs.stat(pids["orphan"])
    assert orphan is not None and orphan[1] != pids["supervisor"] and orphan[2] == leader, \
        "the orphan must be in the job's group but not the supervisor's descendant"
    assert os.getpgid(pids["escaped"]) != leader
    # One group signal (leader, child, orphan) + one each to leader, child, escaped.
    assert job.signal_all(signal.SIGUSR1) == 4
    assert tree.got_usr1(ROLES) == set(ROLES)
    assert pids["orphan"] not in job.known  # it had the signal through the group only


def test_signal_all_without_the_leader_sends_no_group_signal(tree: Tree) -> None:
    job = job_of(tree)
    tree.grow()
    assert job.signal_all(signal.SIGUSR1, include_leader=False) == 2  # child, escaped
    assert tree.got_usr1(ROLES) == {"child", "escaped"}


def test_after_the_leader_is_reaped_its_group_id_is_never_signalled(tree: Tree) -> None:
    """The group id may belong to someone else once its leader is reaped: only processes
    still the ones we saw are signalled, each by itself."""
    job = job_of(tree)
    pids = tree.grow()
    job.refresh()
    assert set(job.known) == {pids["leader"], pids["child"], pids["escaped"]}
    tree.tell("exit")
    wait_for(lambda: "reaped leader" in tree.lines(), what="the leader reaped")
    job.leader_reaped = True
    assert os.getpgid(pids["orphan"]) == pids["leader"]  # the group lives on without it
    assert job.signal_all(signal.SIGUSR1) == 2  # child, escaped; no group signal
    assert tree.got_usr1(("child", "escaped", "orphan")) == {"child", "escaped"}


def test_signal_all_to_a_group_already_empty_is_no_error(tree: Tree) -> None:
    """The leader exited and was reaped before we noted it (the crash path's SIGKILL):
    the group is gone, nothing is signalled and nothing raises."""
    job = job_of(tree)
    tree.tell("exit")
    wait_for(lambda: "reaped leader" in tree.lines(), what="the leader reaped")
    with pytest.raises(ProcessLookupError):
        os.killpg(job.pgid, 0)
    assert job.signal_all(signal.SIGUSR1) == 0


def test_pid_2_is_checked_on_its_merits_in_a_new_pid_namespace() -> None:
    """A supervisor that is the init of its own pid namespace (a container whose entry
    point it is) starts its job as pid 2: only pid 1 is never a job's process."""
    code = textwrap.dedent("""
        import subprocess, sys
        from gn_jobs_tui.core import procs
        job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            print(job.pid, procs.same_process(job.pid, procs.start_time(job.pid)))
        finally:
            job.kill()
            job.wait()
    """)
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                               "-c", code], capture_output=True, text=True, timeout=30,
                              check=False)
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"cannot make a pid namespace here: {done.stderr.strip()}")
    assert (done.returncode, done.stdout.split()) == (0, ["2", "True"]), done.stderr


def test_a_job_we_may_not_signal_is_no_error(tmp_path: Path) -> None:
    """Every process of the job runs as another user (a job that ran `sudo ...`):
    the group signal and each descendant's are refused, nothing raises, none counted."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a process as another user")
    log = tmp_path / "signals.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    pid = os.fork()
    if pid == 0:  # the job: its own session, as nobody; never returns into pytest
        try:
            os.setsid()
            os.setgid(65534)
            os.setuid(65534)
            for s in (signal.SIGUSR1, signal.SIGUSR2):
                signal.signal(s, lambda n, f: os.write(fd, f"{signal.Signals(n).name}\n".encode()))
            os.write(fd, b"ready\n")
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(fd)
    try:
        wait_for(lambda: "ready" in log.read_text(), what="the job as nobody")
        job = procs.JobProcesses(pid)
        os.seteuid(65533)  # neither root nor the job's user: no right to signal it
        try:
            allowed = True
            try:
                os.kill(pid, 0)
            except PermissionError:
                allowed = False
            sent = job.signal_all(signal.SIGUSR1)
        finally:
            os.seteuid(0)
        if allowed:
            pytest.skip("dropping root here keeps the right to signal (securebits?)")
        assert sent == 0
        os.kill(pid, signal.SIGUSR2)
        wait_for(lambda: "SIGUSR2" in log.read_text(), what="the SIGUSR2 marker")
        assert "SIGUSR1" not in log.read_text()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
