"""Host and process faults: kills racing exits, hung hosts, daemons, escaped descendants,
SIGTERM to a supervisor. Real supervisors, real jobs, real signals."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import psutil
import pytest

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch, start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from tests.conftest import HEARTBEAT, wait_for
from tests.helpers import python, run_command


def final(store: Store, job_id: str, timeout: float = 30.0):
    return wait_for(lambda: (j := store.get_job(job_id)) and j.status in
                    ("completed", "failed", "killed") and j, timeout=timeout,
                    what=f"job {job_id} to finish")


def running(store: Store, job_id: str):
    return wait_for(lambda: (j := store.get_job(job_id)) and j.status == "running" and j.pid and
                    j.extra.get("supervisor_pid") and j, what=f"job {job_id} running")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def printed(store: Store, job_id: str) -> list[dict]:
    out = []
    for _, fields in store.r.xrange(store.keys.output(job_id)):
        line = fields.get(b"line", b"").decode()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_kill_racing_exit_is_never_killed_with_exit_code_0(store: Store, config: Config) -> None:
    """50 jobs exit 0 by themselves 1 s after starting; a kill for each arrives within
    +-0.15 s of that moment."""
    tries = 50
    ids = [run_command(store, config, python("import time\ntime.sleep(1.0)")) for _ in range(tries)]

    def race(job_id: str) -> None:
        job = wait_for(lambda: (j := store.get_job(job_id)) and j.started and j, timeout=60,
                       what="started")
        time.sleep(max(0.0, job.started + 1.0 + random.uniform(-0.15, 0.15) - time.time()))
        control.kill(store, job_id)

    threads = [threading.Thread(target=race, args=(j,)) for j in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job_id in ids:
        final(store, job_id)
        sup = int(store.get_job(job_id).extra["supervisor_pid"])
        wait_for(lambda s=sup: gone(s), what="supervisor done")  # its last word written
    outcomes = [store.get_job(j) for j in ids]
    for job in outcomes:
        if job.status == "killed":
            assert job.exit_code in (128 + signal.SIGTERM, 128 + signal.SIGKILL), job
            assert job.message.startswith("killed (SIG")
        else:
            assert job.status == "completed" and job.exit_code == 0, job
            if job.kill_requested:  # recorded before the end: the late kill is noted, not hidden
                assert job.extra.get("kill_note"), job
    counts = {s: sum(j.status == s for j in outcomes) for s in ("killed", "completed")}
    counts["completed with a late kill noted"] = sum(bool(j.extra.get("kill_note")) for j in outcomes)
    print(f"kill racing exit, {tries} tries: {counts}")


@pytest.mark.parametrize("retried", [True, False], ids=["retried", "not-retried"])
def test_paused_host_never_runs_two_copies(store: Store, config: Config, retried: bool) -> None:
    """SIGSTOP the supervisor and its job (a hung host); judged lost, maybe retried; SIGCONT."""
    job_id = launch(store, config, "sleep", {"seconds": "30"}, user="ops")
    job = running(store, job_id)
    sup, pgid = int(job.extra["supervisor_pid"]), job.pid
    os.kill(sup, signal.SIGSTOP)
    os.killpg(pgid, signal.SIGSTOP)
    try:
        wait_for(lambda: store.get_job(job_id).effective_status == "lost", timeout=10, what="lost")
        assert store.mark_lost(job_id)
        new_id = control.retry(store, config, job_id).job_id if retried else None
        if new_id:
            running(store, new_id)
    finally:
        os.killpg(pgid, signal.SIGCONT)
        os.kill(sup, signal.SIGCONT)
    resumed = time.monotonic()
    if not retried:
        back = wait_for(lambda: (j := store.get_job(job_id)).status == "running" and
                        j.effective_status == "running" and j, timeout=5 * HEARTBEAT,
                        what="back to running")
        assert psutil.Process(job.pid).is_running() and back.pid == job.pid
        control.kill(store, job_id)
        assert final(store, job_id).status == "killed"
        return
    statuses = set()
    while not gone(job.pid):
        statuses.add(store.get_job(job_id).status)
        assert time.monotonic() - resumed < 4 * HEARTBEAT + 2, "the old copy still runs"
        time.sleep(0.02)
    ended_in = time.monotonic() - resumed
    wait_for(lambda: store.get_job(job_id).extra.get("superseded_by") == new_id,
             what="superseded_by on the old job")
    wait_for(lambda: gone(sup), what="old supervisor to exit")
    old = store.get_job(job_id)
    statuses.add(old.status)
    assert "running" not in statuses and old.effective_status == "lost"
    # Its hash is fenced off; its log says what happened to it, and by which retry.
    from gn_jobs_tui.core.env import state_dir

    log = (state_dir() / "logs" / f"supervisor-{job_id}.log").read_text()
    assert f"this copy stopped; superseded by {new_id}" in log, log[-2000:]
    assert not store.r.exists(store.keys.heartbeat(job_id))
    assert store.r.zscore(store.keys.heartbeats, job_id) is None
    new = store.get_job(new_id)
    assert new.effective_status == "running" and psutil.Process(new.pid).is_running()
    print(f"old copy ended {ended_in:.2f} s after the host resumed (heartbeat {HEARTBEAT} s)")
    control.kill(store, new_id)
    final(store, new_id)


def test_double_forked_daemon_is_ended_and_counted(store: Store, config: Config) -> None:
    code = """
        import json, os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                print(json.dumps({"daemon": os.getpid()}), flush=True)
                time.sleep(60)  # keeps the job's stdout open, as careless daemons do
            os._exit(0)
        time.sleep(0.3)
        print("leader done", flush=True)
    """
    job_id = run_command(store, config, python(code))
    job = final(store, job_id)
    (daemon,) = [d["daemon"] for d in printed(store, job_id)]
    assert job.status == "completed" and job.exit_code == 0
    assert job.extra.get("descendants_ended") == "1"
    wait_for(lambda: gone(daemon), timeout=5, what="the daemon to be gone")
    from rich.console import Console

    from gn_jobs_tui.processors import for_type

    console = Console(width=100, record=True)
    console.print(for_type(job.job_type).fields_table(job, time.time()))
    assert "1 leftover processes ended" in console.export_text()


def test_kill_reaches_a_descendant_that_left_the_process_group(store: Store,
                                                               config: Config) -> None:
    """The leader ignores SIGTERM; its child called setsid. The child must get our SIGTERM
    directly (killpg alone never reaches it) before the grace period ends."""
    code = """
        import json, os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import json, os, signal, time\\nos.setsid()\\n"
            "signal.signal(signal.SIGTERM, signal.SIG_DFL)\\n"  # SIG_IGN is inherited
            "print(json.dumps({'child': os.getpid(), 'pgid': os.getpgid(0)}), flush=True)\\n"
            "time.sleep(60)"])
        print(json.dumps({"leader": os.getpid(), "pgid": os.getpgid(0)}), flush=True)
        time.sleep(60)
    """
    fields = job_fields(new_job_id(), "custom", "tester", python(code), {})
    job_id = start_job(store, config, fields, env_extra={"GN_JOBS_KILL_GRACE": "5"})
    info = wait_for(lambda: len(p := printed(store, job_id)) == 2 and
                    {k: v for d in p for k, v in d.items()}, what="both processes")
    leader, child = info["leader"], info["child"]
    assert os.getpgid(child) != os.getpgid(leader)  # it left the job's process group
    control.kill(store, job_id)
    killed_at = time.monotonic()
    wait_for(lambda: gone(child), timeout=4, what="the setsid child to get SIGTERM")
    assert not gone(leader) and time.monotonic() - killed_at < 4  # before any SIGKILL
    job = final(store, job_id)
    assert job.status == "killed" and job.exit_code == 128 + signal.SIGKILL
    assert gone(leader)


def test_sigterm_to_a_supervisor_kills_and_records_its_job(store: Store, config: Config) -> None:
    job_id = run_command(store, config, python("import time\nprint('up', flush=True)\n"
                                               "time.sleep(60)"))
    job = running(store, job_id)
    sup = int(job.extra["supervisor_pid"])
    os.kill(sup, signal.SIGTERM)
    done = final(store, job_id, timeout=10)
    assert done.status == "killed" and done.exit_code == 128 + signal.SIGTERM
    assert "its supervisor was stopped" in done.message
    wait_for(lambda: gone(sup) and gone(job.pid), timeout=5, what="supervisor and job gone")
    assert not store.r.exists(store.keys.heartbeat(job_id))
    assert store.r.zscore(store.keys.status_index("killed"), job_id) is not None
    assert store.r.zscore(store.keys.status_index("running"), job_id) is None
