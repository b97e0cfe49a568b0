"""Kill and retry, exactly (`core/control.py`): every outcome, message and write.

Written against the mutation run (`.ci/mutation control`). A real server; a
retry starts a real supervisor, whose job runs to its end (its exit code
proves the command was rebuilt from the old job's parameters). Whether a
supervisor was started is read from its log file, which the launcher opens
before it returns.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.control import Outcome
from gn_jobs_tui.core.jobtypes import ParamError, registry
from gn_jobs_tui.core.launcher import log_dir
from gn_jobs_tui.core.store import (
    ReadOnlyError,
    Store,
    StoreError,
    job_fields,
    new_job_id,
    retry_job_id,
)
from tests.conftest import wait_for


def old_job(store: Store, status: str = "failed", *, job_type: str = "sleep",
            params: dict | None = None, user: str = "dana", attempt: int | None = 1,
            **extra: str) -> str:
    """A finished job as its supervisor left it (only the hash and indexes matter here)."""
    job_id = new_job_id()
    params = {"seconds": 0, "exit_code": 4} if params is None else params
    fields = job_fields(job_id, job_type, user, ["x"], params, created=time.time() - 100)
    fields.update(status=status, **extra)
    if attempt is None:
        del fields["attempt"]
    else:
        fields["attempt"] = str(attempt)
    store.create_job(fields, audit=None)
    return job_id


def spawned(job_id: str) -> bool:
    return (log_dir() / f"supervisor-{job_id}.log").exists()


def final(store: Store, job_id: str):
    return wait_for(lambda: (j := store.get_job(job_id)) and j.is_terminal and j, timeout=20,
                    what=f"job {job_id} to end")


def audit(store: Store) -> list[dict[str, str]]:
    return [{k: v for k, v in e.items() if k in ("action", "job_id", "detail")}
            for e in store.audit_log()]


class Heard:
    """What is published on the events and control channels; `new()` since last asked."""

    def __init__(self, store: Store) -> None:
        self.sub = store.r.pubsub()
        self.sub.subscribe(store.keys.events_channel, store.keys.control_channel)
        confirmed = 0
        while confirmed < 2:
            m = self.sub.get_message(timeout=5)
            assert m is not None, "subscribed"
            confirmed += m["type"] == "subscribe"

    def new(self) -> list[tuple[str, dict]]:
        got = []
        while (m := self.sub.get_message(timeout=0.2)) is not None:
            if m["type"] == "message":
                data = json.loads(m["data"])
                data.pop("ts", None)
                got.append((m["channel"].decode(), data))
        return got


@pytest.fixture
def heard(store: Store) -> Iterator[Heard]:
    h = Heard(store)
    yield h
    h.sub.close()


# -- retry ------------------------------------------------------------------------------

def test_retry_makes_the_new_job_from_the_old_form(store: Store, config: Config,
                                                   heard: Heard) -> None:
    old = old_job(store)
    heard.new()
    new = retry_job_id(old)
    assert control.retry(store, config, old) == Outcome(True, f"retried {old[:8]} as {new[:8]}",
                                                        new, changed=True)
    assert spawned(new)
    sleep = registry().get("sleep")
    values = {"seconds": 0.0, "exit_code": 4}
    expected = job_fields(new, "sleep", "dana", sleep.argv(values), values, attempt=2,
                          retry_of=old)
    fields = {k.decode(): v.decode() for k, v in store.r.hgetall(store.keys.job(new)).items()}
    assert abs(float(fields["created"]) - time.time()) < 30
    assert {k: fields[k] for k in expected if k not in ("created", "status")} == \
        {k: v for k, v in expected.items() if k not in ("created", "status")}
    assert store.r.hget(store.keys.job(old), "retried_by") == new.encode()
    assert audit(store)[0] == {"action": "retry", "job_id": old, "detail": f"new job {new}"}
    got = heard.new()
    assert (store.keys.events_channel, {"job_id": old, "what": ["retry"]}) in got
    assert (store.keys.events_channel, {"job_id": new, "what": ["retry"], "status": "queued"}) \
        in got
    job = final(store, new)
    assert (job.status, job.exit_code, job.attempt, job.retry_of) == ("failed", 4, 2, old)


def test_a_second_retry_is_the_same_job(store: Store, config: Config) -> None:
    old = old_job(store, "killed", params={"seconds": 0, "exit_code": 0})
    first = control.retry(store, config, old)
    again = control.retry(store, config, old)
    assert again == Outcome(True, f"already retried as {first.job_id[:8]}", first.job_id,
                            changed=False)
    assert store.r.zcard(store.keys.jobs_index) == 2
    assert final(store, first.job_id).status == "completed"
    assert control.retry(store, config, old) == again


def test_a_job_retried_elsewhere_is_not_retried_again(store: Store, config: Config) -> None:
    other = "e" * 32
    old = old_job(store, retried_by=other)
    assert control.retry(store, config, old) == Outcome(True, "already retried as eeeeeeee",
                                                        other, changed=False)
    assert store.get_job(retry_job_id(old)) is None and not spawned(retry_job_id(old))


def test_attempts_count_up_from_the_old_one(store: Store, config: Config) -> None:
    third = old_job(store, attempt=3, params={"seconds": 0, "exit_code": 0})
    first = old_job(store, attempt=None, params={"seconds": 0, "exit_code": 0})
    a = control.retry(store, config, third).job_id
    b = control.retry(store, config, first).job_id
    assert store.r.hget(store.keys.job(a), "attempt") == b"4"
    assert store.r.hget(store.keys.job(b), "attempt") == b"2"
    final(store, a)
    final(store, b)


def test_a_lost_job_can_be_retried(store: Store, config: Config) -> None:
    old = old_job(store, "running", heartbeat="1", params={"seconds": 0, "exit_code": 0})
    assert store.get_job(old).effective_status == "lost"
    new = control.retry(store, config, old).job_id
    assert new == retry_job_id(old) and final(store, new).status == "completed"


@pytest.mark.parametrize("status", ["running", "queued", "completed", "paused"])
def test_only_failed_killed_or_lost_jobs_are_retried(store: Store, config: Config,
                                                     status: str) -> None:
    old = old_job(store, status)
    with pytest.raises(StoreError) as err:
        control.retry(store, config, old)
    assert str(err.value) == (f"job {old[:8]} is {status}: only failed, killed or lost jobs "
                              "can be retried")
    assert store.get_job(retry_job_id(old)) is None and not spawned(retry_job_id(old))


def test_retry_refusals_word_for_word(store: Store, config: Config) -> None:
    with pytest.raises(StoreError, match=r"^no such job: nope$"):
        control.retry(store, config, "nope")
    custom = old_job(store, job_type="custom")
    with pytest.raises(StoreError, match=r"^job type 'custom' is not registered here: "
                                         r"cannot rebuild its command$"):
        control.retry(store, config, custom)
    gone = old_job(store, job_type="insert-rows", params={"file": "/nonexistent/rows.tsv"})
    with pytest.raises(ParamError) as err:
        control.retry(store, config, gone)
    assert err.value.problems == {"file": "not a readable file: /nonexistent/rows.tsv"}
    for job_id in (custom, gone):
        assert store.get_job(retry_job_id(job_id)) is None
        assert store.get_job(job_id).retried_by is None
    ro = Store.from_url(config.url, config.prefix, read_only=True)
    with pytest.raises(ReadOnlyError, match=r"^read-only mode: retry is not allowed$"):
        control.retry(ro, config, old_job(store))
    ro.r.close()


def test_a_retry_whose_creator_died_is_finished_by_the_next(store: Store,
                                                            config: Config) -> None:
    """The new job exists but the old one was never marked, nor the new one started."""
    old = old_job(store, params={"seconds": 0, "exit_code": 0})
    new = retry_job_id(old)
    values = {"seconds": 0.0, "exit_code": 0}
    orphan = job_fields(new, "sleep", "dana", registry().get("sleep").argv(values), values,
                        created=time.time() - control.ORPHAN_AFTER - 5, attempt=2, retry_of=old)
    store.create_job(orphan, audit=None)
    assert control.retry(store, config, old) == Outcome(True, f"already retried as {new[:8]}",
                                                        new, changed=False)
    assert store.r.hget(store.keys.job(old), "retried_by") == new.encode()
    assert spawned(new)
    assert final(store, new).status == "completed"


def test_retries_at_once_all_get_the_one_new_job(store: Store, config: Config) -> None:
    """Every caller that lost the race is told which job won, in the same words."""
    old = old_job(store, params={"seconds": 0, "exit_code": 0})
    new = retry_job_id(old)
    barrier = threading.Barrier(12)
    outcomes: list[Outcome] = []

    def one() -> None:
        own = Store.from_url(config.url, config.prefix)
        barrier.wait()
        outcomes.append(control.retry(own, config, old))
        own.r.close()

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if o.changed]
    assert won == [Outcome(True, f"retried {old[:8]} as {new[:8]}", new, changed=True)]
    assert outcomes.count(Outcome(True, f"already retried as {new[:8]}", new,
                                  changed=False)) == 11
    assert final(store, new).status == "completed"


def test_a_finished_orphan_gets_the_callers_environment(store: Store, config: Config) -> None:
    old = old_job(store, params={"seconds": 30, "exit_code": 0})
    new = retry_job_id(old)
    values = {"seconds": 30.0, "exit_code": 0}
    orphan = job_fields(new, "sleep", "dana", registry().get("sleep").argv(values), values,
                        created=time.time() - control.ORPHAN_AFTER - 5, attempt=2, retry_of=old)
    store.create_job(orphan, audit=None)
    control.retry(store, config, old, env_extra={"GN_JOBS_TEST_TAG": "orphan-run"})
    job = wait_for(lambda: (j := store.get_job(new)) and j.extra.get("supervisor_pid") and j,
                   what="the orphan's supervisor")
    env = psutil.Process(int(job.extra["supervisor_pid"])).environ()
    assert env.get("GN_JOBS_TEST_TAG") == "orphan-run"
    control.kill(store, new)
    assert final(store, new).status == "killed"


def test_a_retry_gets_the_callers_environment(store: Store, config: Config) -> None:
    old = old_job(store, params={"seconds": 30, "exit_code": 0})
    new = control.retry(store, config, old, env_extra={"GN_JOBS_TEST_TAG": "retry-run"}).job_id
    job = wait_for(lambda: (j := store.get_job(new)) and j.extra.get("supervisor_pid") and j,
                   what="the retry's supervisor")
    env = psutil.Process(int(job.extra["supervisor_pid"])).environ()
    assert env.get("GN_JOBS_TEST_TAG") == "retry-run"
    control.kill(store, new)
    assert final(store, new).status == "killed"


def test_a_retry_still_starting_or_running_is_left_alone(store: Store, config: Config) -> None:
    values = {"seconds": 0.0, "exit_code": 0}
    argv = registry().get("sleep").argv(values)
    cases = {
        "young": {"created": repr(time.time())},
        "claimed": {"created": repr(time.time() - 100), "supervisor": "host:1:abc"},
        "running": {"created": repr(time.time() - 100), "status": "running"},
        "undated": {"created": ""},
    }
    for what, change in cases.items():
        old = old_job(store, params=values)
        new = retry_job_id(old)
        fields = {**job_fields(new, "sleep", "dana", argv, values, attempt=2, retry_of=old),
                  **change}
        store.r.hset(store.keys.job(new), mapping=fields)
        outcome = control.retry(store, config, old)
        assert outcome == Outcome(True, f"already retried as {new[:8]}", new, changed=False)
        assert store.r.hget(store.keys.job(old), "retried_by") == new.encode(), what
        assert not spawned(new), what


# -- kill ---------------------------------------------------------------------------------

def test_kill_records_a_durable_request_and_tells_the_supervisors(store: Store,
                                                                  heard: Heard) -> None:
    job_id = old_job(store, "queued")
    heard.new()
    before = time.time()
    outcome = control.kill(store, job_id, "runaway")
    assert outcome == Outcome(True, f"kill requested for {job_id[:8]}; its supervisor will "
                                    "stop it", job_id, changed=True)
    request = json.loads(store.r.get(store.keys.kill_request(job_id)))
    assert request["reason"] == "runaway" and before <= request["at"] <= time.time()
    assert set(request) == {"at", "reason", "by_user", "by_host"}
    assert before <= float(store.r.hget(store.keys.job(job_id), "kill_requested")) <= time.time()
    assert audit(store)[0] == {"action": "kill", "job_id": job_id, "detail": "runaway"}
    got = heard.new()
    assert (store.keys.control_channel, {"cmd": "kill", "job_id": job_id}) in got
    assert (store.keys.events_channel, {"job_id": job_id, "what": ["kill"]}) in got


def test_a_kill_with_no_reason_says_none(store: Store) -> None:
    job_id = old_job(store, "queued")
    control.kill(store, job_id)
    assert json.loads(store.r.get(store.keys.kill_request(job_id)))["reason"] == ""
    assert audit(store)[0] == {"action": "kill", "job_id": job_id, "detail": ""}


@pytest.mark.parametrize("status", ["completed", "failed", "killed"])
def test_killing_a_finished_job_changes_nothing(store: Store, status: str, heard: Heard) -> None:
    job_id = old_job(store, status)
    heard.new()
    assert control.kill(store, job_id) == Outcome(
        True, f"job {job_id[:8]} is already {status}: nothing to kill", job_id, changed=False)
    assert not store.r.exists(store.keys.kill_request(job_id))
    assert store.r.hget(store.keys.job(job_id), "kill_requested") is None
    assert audit(store) == [] and heard.new() == []


def test_a_lost_job_can_still_be_killed(store: Store) -> None:
    for job_id in (old_job(store, "lost"), old_job(store, "running", heartbeat="1")):
        assert control.kill(store, job_id).changed
        assert store.r.exists(store.keys.kill_request(job_id))


def test_kill_refusals_word_for_word(store: Store, config: Config) -> None:
    with pytest.raises(StoreError, match=r"^no such job: nope$"):
        control.kill(store, "nope")
    assert not store.r.exists(store.keys.kill_request("nope"))
    ro = Store.from_url(config.url, config.prefix, read_only=True)
    job_id = old_job(store, "queued")
    with pytest.raises(ReadOnlyError, match=r"^read-only mode: kill is not allowed$"):
        control.kill(ro, job_id)
    ro.r.close()
    assert not store.r.exists(store.keys.kill_request(job_id))
