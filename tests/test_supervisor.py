"""Supervision with real processes and real signals."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store, StoreError, job_fields, new_job_id
from tests.conftest import HEARTBEAT, wait_for
from tests.helpers import pids_from_output, python, run_command, stubborn_tree


def final(store: Store, job_id: str, timeout: float = 20.0):
    return wait_for(lambda: (j := store.get_job(job_id)) and j.is_terminal and j,
                    timeout=timeout, what=f"job {job_id} to finish")


def test_launch_runs_to_completion_with_output(store: Store, config: Config) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "1.2"}, user="alice")
    job = final(store, job_id)
    assert job.status == "completed" and job.exit_code == 0
    assert job.pid and job.pid_started and job.host and job.started and job.finished
    lines = [f[b"line"].decode() for _, f in store.r.xrange(store.keys.output(job_id))]
    assert lines[0].startswith("tick 0") and lines[-1] == "done"
    assert not store.r.exists(store.keys.heartbeat(job_id))


def test_failing_command_ends_failed_with_exit_code(store: Store, config: Config) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "0", "exit_code": "3"})
    job = final(store, job_id)
    assert job.status == "failed" and job.exit_code == 3


def test_traceback_is_recorded_even_on_exit_zero(store: Store, config: Config) -> None:
    code = "import sys, traceback\ntry:\n    1/0\nexcept Exception:\n    traceback.print_exc()\n"
    job_id = run_command(store, config, python(code))
    job = final(store, job_id)
    assert job.status == "completed" and job.error and "ZeroDivisionError" in job.error
    from gn_jobs_tui.processors import for_type

    assert for_type(job.job_type).verdict(job).status == "failed"


def test_missing_program_fails_cleanly(store: Store, config: Config) -> None:
    job_id = run_command(store, config, ["/nonexistent/program"])
    job = final(store, job_id)
    assert job.status == "failed" and "cannot start" in (job.error or "")


def test_kill_reaches_every_process_even_when_sigterm_is_ignored(store: Store,
                                                                 config: Config) -> None:
    job_id = run_command(store, config, stubborn_tree())
    pids = wait_for(lambda: len(p := pids_from_output(store, job_id)) == 3 and p,
                    what="three processes to report")
    assert all(psutil.pid_exists(p) for p in pids)
    outcome = control.kill(store, job_id)
    assert outcome.changed
    job = final(store, job_id)
    assert job.status == "killed" and job.extra.get("kill_acked")
    assert "SIGKILL" in (job.message or "")  # SIGTERM was ignored: the grace ran out
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not store.r.exists(store.keys.kill_request(job_id))


def test_kill_of_finished_job_is_a_clear_no_op(store: Store, config: Config) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "0"})
    final(store, job_id)
    outcome = control.kill(store, job_id)
    assert not outcome.changed and "already completed" in outcome.message
    with pytest.raises(StoreError, match="no such job"):
        control.kill(store, "nope")


def test_kill_request_is_durable_for_a_job_not_yet_started(store: Store, config: Config) -> None:
    from gn_jobs_tui.core.launcher import spawn_supervisor

    fields = job_fields(new_job_id(), "sleep", "u", python("import time; time.sleep(30)"), {})
    job_id = store.create_job(fields)
    assert control.kill(store, job_id).changed  # nobody answers yet
    spawn_supervisor(config, job_id)
    job = final(store, job_id)
    assert job.status == "killed" and job.pid is None


def test_supervisor_sigkill_means_lost_within_two_heartbeats(store: Store, config: Config) -> None:
    job_id = run_command(store, config, python("import time\nprint('up', flush=True)\n"
                                               "time.sleep(60)"))
    job = wait_for(lambda: (j := store.get_job(job_id)) and j.status == "running" and j.pid and j,
                   what="running")
    sup_pid = int(job.extra["supervisor_pid"])
    child = psutil.Process(job.pid)
    os.kill(sup_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: store.get_job(job_id).effective_status == "lost", timeout=10, interval=0.02,
             what="lost")
    assert time.monotonic() - killed_at <= 2 * HEARTBEAT + 0.5
    # The job's process does not keep running unseen: the kernel ends it with its supervisor.
    wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,
             timeout=5, what="job process to end with its supervisor")
    assert store.mark_lost(job_id)
    assert store.get_job(job_id).status == "lost"


def test_concurrent_retries_make_exactly_one_new_job(store: Store, config: Config) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "0", "exit_code": "1"}, user="carol")
    final(store, job_id)
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def worker() -> None:
        own = Store.from_url(config.url, config.prefix)
        barrier.wait()
        try:
            results.append(control.retry(own, config, job_id).job_id or "")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    retries = [j for p in store.iter_jobs() for j in p if j.retry_of == job_id]
    assert len(retries) == 1
    new = store.get_job(results[0])
    assert new.attempt == 2 and new.user_id == "carol" and new.job_type == "sleep"
    assert new.params == {"seconds": 0.0, "exit_code": 1}
    assert store.get_job(job_id).retried_by == new.job_id


def test_retry_refuses_running_job(store: Store, config: Config) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "20"})
    wait_for(lambda: store.get_job(job_id).status == "running", what="running")
    with pytest.raises(StoreError, match="only failed, killed or lost"):
        control.retry(store, config, job_id)
    control.kill(store, job_id)
    final(store, job_id)


def test_wrong_recorded_start_time_is_never_signalled(store: Store, config: Config) -> None:
    job_id = run_command(store, config, python("import time\ntime.sleep(30)"))
    job = wait_for(lambda: (j := store.get_job(job_id)) and j.pid and j, what="pid")
    store.r.hset(store.keys.job(job_id), "pid_started", str(job.pid_started - 1000))
    control.kill(store, job_id)
    wait_for(lambda: "kill refused" in (store.get_job(job_id).error or ""), what="refusal")
    assert psutil.Process(job.pid).is_running()
    assert store.get_job(job_id).status == "running"
    # With the true start time back, the kill goes through.
    store.r.hset(store.keys.job(job_id), "pid_started", repr(job.pid_started))
    control.kill(store, job_id)
    assert final(store, job_id).status == "killed"


def test_a_supervisor_crash_is_recorded_as_failed_with_its_traceback(store: Store,
                                                                      config: Config) -> None:
    """A real Supervisor, run in this process, with a fault injected mid-run."""
    import pytest

    from gn_jobs_tui.core.supervisor import Supervisor

    job_id = store.create_job(job_fields(new_job_id(), "custom", "u",
                                         python("import time\ntime.sleep(30)"), {}))
    sup = Supervisor(config.url, config.prefix, job_id, heartbeat=0.5, grace=1)
    calls = {"n": 0}

    beat = sup._beat

    def broken_beat() -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("disk on fire")
        beat()

    sup._beat = broken_beat  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="disk on fire"):
        sup.run()
    job = store.get_job(job_id)
    assert job.status == "failed" and "supervisor crashed" in job.error
    assert "RuntimeError: disk on fire" in job.error and "Traceback" in job.error
    # It did not leave the job's process running unseen.
    wait_for(lambda: not psutil.pid_exists(job.pid) or
             psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE, what="job process gone")
    assert not store.r.exists(store.keys.heartbeat(job_id))
