"""The supervisor's kill path and its verdicts, exactly: real supervisors, real signals.

Written against the mutation run (`.ci/mutation supervisor`): which record of
the leader's identity is trusted before a signal is sent, and how each way a
job can end is written (status, exit code, message), so that a job which
signals itself is never taken for one we killed.
"""

from __future__ import annotations

import signal

import psutil
import pytest

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store
from tests.conftest import wait_for
from tests.helpers import python, run_command

SLEEPER = python("import time\nprint('up', flush=True)\ntime.sleep(30)")


def final(store: Store, job_id: str):
    return wait_for(lambda: (j := store.get_job(job_id)) and j.is_terminal and j, timeout=20,
                    what=f"job {job_id} to end")


def running(store: Store, config: Config):
    job_id = run_command(store, config, SLEEPER)
    job = wait_for(lambda: (j := store.get_job(job_id)) and j.status == "running" and j.pid
                   and j.pid_started and j, what="running with its pid recorded")
    return job_id, job


REFUSED = ("kill refused: recorded pid/start time do not match the running process "
           "(pid reused?)")


def refused(store: Store, job_id: str) -> None:
    wait_for(lambda: store.get_job(job_id).error, what="refusal")
    assert store.get_job(job_id).error == REFUSED  # what the operator reads, exactly
    wait_for(lambda: not store.r.exists(store.keys.kill_request(job_id)),
             what="the refused request cleared")


def test_a_kill_ends_the_job_with_sigterm_exactly(store: Store, config: Config) -> None:
    job_id, job = running(store, config)
    control.kill(store, job_id)
    done = final(store, job_id)
    assert (done.status, done.exit_code, done.message) == \
        ("killed", 128 + signal.SIGTERM, "killed (SIGTERM)")
    assert done.extra.get("kill_acked") and "kill_note" not in done.extra
    assert not psutil.pid_exists(job.pid) or psutil.Process(job.pid).status() == "zombie"


def test_a_job_that_signals_itself_failed_it_was_not_killed(store: Store,
                                                            config: Config) -> None:
    job_id = run_command(store, config, python(
        "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)"))
    done = final(store, job_id)
    assert (done.status, done.exit_code) == ("failed", 128 + signal.SIGTERM)
    assert done.message == f"ended by SIGTERM (exit code {128 + signal.SIGTERM})"
    assert done.error == done.message and "kill_acked" not in done.extra


def test_an_exit_code_above_128_is_the_jobs_own(store: Store, config: Config) -> None:
    job_id = run_command(store, config, python("import sys\nsys.exit(137)"))
    done = final(store, job_id)
    assert (done.status, done.exit_code, done.message) == ("failed", 137, "exited with code 137")


@pytest.mark.parametrize("damage,trusted", [
    ({"pid_started": None}, False),          # a pid without its start time: not proof
    ({"pid": "garbage"}, False),             # unreadable: not proof, and no crash
    ({"pid": None, "pid_started": None}, True),  # nothing recorded yet: our own record stands
])
def test_which_recorded_identity_is_trusted(store: Store, config: Config, damage: dict,
                                            trusted: bool) -> None:
    job_id, job = running(store, config)
    key = store.keys.job(job_id)
    for name, value in damage.items():
        if value is None:
            store.r.hdel(key, name)
        else:
            store.r.hset(key, name, value)
    control.kill(store, job_id)
    if trusted:
        assert final(store, job_id).status == "killed"
        return
    refused(store, job_id)
    assert psutil.Process(job.pid).is_running() and store.get_job(job_id).status == "running"
    store.r.hset(key, mapping={"pid": str(job.pid), "pid_started": repr(job.pid_started)})
    control.kill(store, job_id)
    assert final(store, job_id).status == "killed"
