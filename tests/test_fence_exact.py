"""The supervisor's kill and fence decisions, exactly, in this process.

Written against the mutation run (`.ci/mutation supervisor`): a real
`Supervisor` against a real server, its claim taken with its own CLAIM
script, its job a real process in its own session, and real signals. The
clock handed to `_handle_kill` is chosen by the test, so the grace period's
edge is hit exactly, with no sleep. What is checked is what others see: the
job hash (fenced writes made or refused, the refusal's error text, the kill
request cleared), which signals reached the job, and the supervisor's log
lines an operator reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from gn_jobs_tui.core import procs, spool, supervisor
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from gn_jobs_tui.core.supervisor import Supervisor
from tests.helpers import python

SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(30)"
STUBBORN = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('up', flush=True)\ntime.sleep(30)")
REFUSED = ("kill refused: recorded pid/start time do not match the running process "
           "(pid reused?)")
OTHER = "elsewhere:4242:1700000000.000"
T0 = 1000.0  # the supervisor's monotonic clock, as handed to _handle_kill


class Sup:
    """A claimed job and its supervisor object; `start()` gives it a running job."""

    def __init__(self, store: Store, url: str, prefix: str) -> None:
        self.store = store
        self.job_id = store.create_job(job_fields(new_job_id(), "custom", "tester",
                                                  python(SLEEPER), {}))
        self.key = store.keys.job(self.job_id)
        self.sup = Supervisor(url, prefix, self.job_id, heartbeat=0.5, grace=1.0)
        claimed = self.sup.client.eval(supervisor._CLAIM, [self.key], [self.sup.identity])
        assert claimed == 1
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, code: str = SLEEPER) -> subprocess.Popen[bytes]:
        """The job as the supervisor starts it: own session, pid and start time recorded."""
        sup = self.sup
        self.proc = sup.proc = subprocess.Popen(python(code), stdout=subprocess.PIPE,
                                                start_new_session=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"up\n"  # its signal handlers are set
        sup.pid_started = procs.start_time(self.proc.pid) or 0.0
        sup.group = procs.JobProcesses(self.proc.pid)
        sup._set("status", status="running", pid=self.proc.pid, pid_started=sup.pid_started)
        assert self.field("pid") == str(self.proc.pid)
        return self.proc

    def field(self, name: str) -> str | None:
        value = self.store.r.hget(self.key, name)
        return value.decode() if value is not None else None

    def fence_reply(self) -> list:
        """FENCED_HSET's answer to a bare claim check (what the heartbeat asks)."""
        return self.sup.client.call(*spool.fenced_cmd(self.sup.keys, self.job_id,
                                                      self.sup.identity, {}))

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.sup.buffer.close()
        self.sup._drop_sub()
        self.sup.client.close()


@pytest.fixture
def sup(store: Store, config: Config) -> Iterator[Sup]:
    s = Sup(store, config.url, config.prefix)
    try:
        yield s
    finally:
        s.close()


def logged(err: str, message: str) -> int:
    """How many of the supervisor's log lines say exactly `message`."""
    return len(re.findall(rf"^\S+ supervisor\[\d+\] {re.escape(message)}$", err, re.M))


def still_running(proc: subprocess.Popen[bytes] | None) -> bool:
    assert proc is not None
    return proc.poll() is None


# -- _fence: what FENCED_HSET's answer means -------------------------------------------

def test_a_standing_claim_passes_the_fence_and_the_write_is_made(sup: Sup, capsys) -> None:
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is True
    sup.sup._set("fields", message="half way")
    assert sup.field("message") == "half way" and sup.sup.pending == {}
    s = sup.sup
    assert (s.claim_lost, s.hash_gone, s.superseded_by, s.held_by, s.refused) == \
        (False, False, None, None, 0)
    assert capsys.readouterr().err == ""


def test_a_claim_held_by_another_supervisor_stops_this_copy(sup: Sup, capsys) -> None:
    sup.store.r.hset(sup.key, "supervisor", OTHER)
    said = f"job {sup.job_id} is held by another supervisor ({OTHER}): stopping this copy"
    sup.sup._set("fields", message="mine")
    assert logged(capsys.readouterr().err, said) == 1  # at the first refusal
    sup.sup._set("fields", message="mine again")
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is False
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is False
    s = sup.sup
    assert sup.field("message") is None and sup.field("supervisor") == OTHER
    assert (s.held_by, s.superseded_by, s.hash_gone, s.refused) == (OTHER, None, False, 0)
    assert s.claim_lost and s._stop_reason() == "superseded"
    err = capsys.readouterr().err
    assert logged(err, said) == 0, err  # said once, not at every refused write


def test_a_retried_job_stops_this_copy_and_names_the_retry(sup: Sup, capsys) -> None:
    sup.store.r.hset(sup.key, "retried_by", "the-retry")
    said = f"job {sup.job_id} was retried as the-retry: stopping this copy"
    sup.sup._set("fields", message="mine")
    assert logged(capsys.readouterr().err, said) == 1  # at the first refusal
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is False
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is False
    s = sup.sup
    assert sup.field("message") is None
    assert (s.superseded_by, s.held_by, s.hash_gone, s.refused) == ("the-retry", None, False, 0)
    assert s.claim_lost and s._stop_reason() == "superseded"
    err = capsys.readouterr().err
    assert logged(err, said) == 0, err  # said once


def test_a_job_hash_gone_refuses_every_write_and_is_never_recreated(sup: Sup, capsys) -> None:
    sup.store.r.delete(sup.key)
    said = f"job hash {sup.key} is gone: writes refused, kept for the spool"
    sup.sup._set("fields", message="mine")
    assert logged(capsys.readouterr().err, said) == 1  # at the first refusal
    s = sup.sup
    assert (s.hash_gone, s.refused, s.claim_lost) == (True, 1, False)
    assert s.pending == {"message": "mine"}  # kept for the spool
    sup.sup._set("fields", message="again")
    assert s.refused == 2
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is False
    assert sup.sup._fence(sup.fence_reply(), "heartbeat") is False
    assert not sup.store.r.exists(sup.key)
    assert s._stop_reason() is None  # a vanished hash is no reason to kill the job
    err = capsys.readouterr().err
    assert logged(err, said) == 0, err  # said once


# -- _stop_reason: why a job is being stopped, first reason first -----------------------

@pytest.mark.parametrize("state,reason", [
    ({}, None),
    ({"kill_requested": True}, "kill requested"),
    ({"terminating": True}, "its supervisor got SIGTERM"),
    ({"terminating": True, "kill_requested": True}, "its supervisor got SIGTERM"),
    ({"held_by": OTHER, "terminating": True, "kill_requested": True}, "superseded"),
    ({"superseded_by": "the-retry", "terminating": True}, "superseded"),
])
def test_the_stop_reason_in_order(sup: Sup, state: dict, reason: str | None) -> None:
    for name, value in state.items():
        setattr(sup.sup, name, value)
    assert sup.sup._stop_reason() == reason


def test_a_job_killed_because_its_supervisor_got_sigterm_says_so(sup: Sup) -> None:
    sup.sup.terminating, sup.sup.sent = True, [signal.SIGTERM]
    assert sup.sup._outcome(-signal.SIGTERM) == (
        "killed", 128 + signal.SIGTERM, "killed (SIGTERM): its supervisor was stopped", {})


# -- _identity_ok: whose record a kill trusts --------------------------------------------

@pytest.mark.parametrize("change,trusted", [
    ({}, True),
    ({"pid_started": +0.04}, True),          # within the start-time tolerance
    ({"pid_started": +0.06}, False),
    ({"pid_started": -0.06}, False),
    ({"pid_started": -1000.0}, False),       # the pid reused by a later process
    ({"pid": "other"}, False),               # another live process, with our start time
    ({"pid_started": None}, False),          # a pid without its start time: not proof
    ({"pid": "garbage"}, False),             # unreadable: not proof, and no crash
    ({"pid_started": "garbage"}, False),
    ({"pid": None, "pid_started": None}, True),  # nothing recorded yet: our own record stands
])
def test_which_record_a_kill_trusts(sup: Sup, capsys, change: dict, trusted: bool) -> None:
    proc = sup.start()
    started = sup.sup.pid_started
    for name, value in change.items():
        if value is None:
            sup.store.r.hdel(sup.key, name)
        elif value == "other":
            sup.store.r.hset(sup.key, "pid", str(os.getpid()))
        elif isinstance(value, float):
            sup.store.r.hset(sup.key, name, repr(started + value))
        else:
            sup.store.r.hset(sup.key, name, value)
    capsys.readouterr()
    assert sup.sup._identity_ok() is trusted
    err = capsys.readouterr().err
    if trusted:
        assert sup.field("error") is None and err == ""
        return
    assert sup.field("error") == REFUSED  # what the operator reads, exactly
    try:  # an unreadable record is logged as pid 0
        float(sup.field("pid_started") or "")
        shown = int(sup.field("pid") or "")
    except ValueError:
        shown = 0
    said = f"recorded pid {shown} start time does not match the live process: not signalling"
    assert logged(err, said) == 1, err
    assert still_running(proc)


def test_with_the_server_away_our_own_record_of_the_leader_stands(
        private: EmbeddedServer, capsys) -> None:
    store = Store.from_url(private.url, "t-away")
    s = Sup(store, private.url, "t-away")
    try:
        s.start()
        s.sup.client.close()
        store.r.close()
        assert private.stop()
        capsys.readouterr()
        assert s.sup._identity_ok() is True
        err = capsys.readouterr().err  # the log names the read that failed
        assert re.search(r"^\S+ supervisor\[\d+\] redis unavailable \(the recorded pid: ", err,
                         re.M), err
        s.sup.kill_requested = True
        s.sup._handle_kill(T0)  # the kill already asked for goes through
        assert s.proc is not None and s.proc.wait(timeout=5) == -signal.SIGTERM
        assert s.sup.sent == [signal.SIGTERM]
    finally:
        s.close()


# -- _handle_kill: whether, whom, with what, and when ------------------------------------

def test_no_reason_no_signal(sup: Sup) -> None:
    proc = sup.start()
    sup.sup._handle_kill(T0)
    assert (sup.sup.sent, sup.sup.kill_sent_at) == ([], None) and still_running(proc)


def test_a_kill_request_sends_sigterm_to_the_job_once(sup: Sup, capsys) -> None:
    proc = sup.start()
    sup.sup.kill_requested = True
    sup.sup._handle_kill(T0)
    assert proc.wait(timeout=5) == -signal.SIGTERM
    assert (sup.sup.sent, sup.sup.kill_sent_at) == ([signal.SIGTERM], T0)
    sup.sup._handle_kill(T0 + 0.5)  # the job is gone; nothing more to send within the grace
    assert sup.sup.sent == [signal.SIGTERM]
    assert logged(capsys.readouterr().err,
                  "kill requested: SIGTERM to the job's process group and descendants") == 1


def test_sigkill_exactly_when_the_grace_period_is_over(sup: Sup, capsys) -> None:
    proc = sup.start(STUBBORN)
    sup.sup.kill_requested = True
    sup.sup._handle_kill(T0)
    assert sup.sup.sent == [signal.SIGTERM]
    sup.sup._handle_kill(T0 + 0.999)  # grace is 1 s
    assert sup.sup.sent == [signal.SIGTERM] and still_running(proc)
    assert "grace period over" not in capsys.readouterr().err
    sup.sup._handle_kill(T0 + 1.0)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert sup.sup.sent == [signal.SIGTERM, signal.SIGKILL]
    assert logged(capsys.readouterr().err, "grace period over: SIGKILL") == 1
    sup.sup._handle_kill(T0 + 5.0)
    assert sup.sup.sent == [signal.SIGTERM, signal.SIGKILL]  # SIGKILL once
    assert sup.sup.kill_sent_at == T0


def test_a_kill_on_a_record_that_is_not_ours_is_refused_and_cleared(sup: Sup) -> None:
    proc = sup.start()
    sup.store.r.hset(sup.key, "pid_started", repr(sup.sup.pid_started - 1000))
    kill_key = sup.store.keys.kill_request(sup.job_id)
    sup.store.r.set(kill_key, "1")
    sup.sup.kill_requested = True
    events = sup.store.r.pubsub(ignore_subscribe_messages=True)
    events.subscribe(sup.store.keys.events_channel)
    events.get_message(timeout=1)
    sup.sup._handle_kill(T0)
    assert still_running(proc)
    # Consoles re-read the job: one event, naming what changed as the contract does.
    message = events.get_message(timeout=5)
    events.close()
    assert message is not None
    event = json.loads(message["data"])
    assert (event["job_id"], event["what"]) == (sup.job_id, ["error"])
    assert (sup.sup.sent, sup.sup.kill_sent_at) == ([], None)
    assert sup.sup.kill_requested is False and sup.sup._stop_reason() is None
    assert not sup.store.r.exists(kill_key)
    assert sup.field("error") == REFUSED


def test_a_refused_kill_whose_request_the_server_will_not_clear(store: Store,
                                                                config: Config, capsys) -> None:
    """The supervisor's user may not DEL (NOPERM): the refusal is still written, the job
    is not signalled, and the log names the call refused (the request stays: the next
    heartbeat sees it and refuses again)."""
    scheme, sep, rest = config.url.partition("://")
    if "@" in rest:
        pytest.skip("the server's URL already carries credentials")
    user = f"nodel-{uuid.uuid4().hex[:8]}"
    store.r.acl_setuser(user, enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                        commands=["+@all", "-del"])
    s = Sup(store, f"{scheme}{sep}{user}:pw@{rest}", config.prefix)
    try:
        proc = s.start()
        store.r.hset(s.key, "pid_started", repr(s.sup.pid_started - 1000))
        kill_key = store.keys.kill_request(s.job_id)
        store.r.set(kill_key, "1")
        s.sup.kill_requested = True
        capsys.readouterr()
        s.sup._handle_kill(T0)
        assert still_running(proc) and (s.sup.sent, s.sup.kill_sent_at) == ([], None)
        assert s.field("error") == REFUSED and s.sup.kill_requested is False
        assert store.r.exists(kill_key)
        err = capsys.readouterr().err
        assert re.search(r"^\S+ supervisor\[\d+\] redis refused kill request: (?i:.*noperm)",
                         err, re.M), err
        assert ":pw@" not in err
    finally:
        s.close()
        store.r.acl_deluser(user)


@pytest.mark.parametrize("why", ["terminating", "superseded_by"])
def test_our_own_reasons_do_not_ask_the_record(sup: Sup, why: str) -> None:
    """SIGTERM to the supervisor, or a retry: the job is our child, whatever Redis says."""
    proc = sup.start()
    sup.store.r.hset(sup.key, "pid_started", repr(sup.sup.pid_started - 1000))
    setattr(sup.sup, why, True if why == "terminating" else "the-retry")
    sup.sup._handle_kill(T0)
    assert proc.wait(timeout=5) == -signal.SIGTERM
    assert sup.sup.sent == [signal.SIGTERM] and sup.field("error") is None


def test_a_job_that_ended_first_is_not_signalled(sup: Sup) -> None:
    proc = sup.start("print('up', flush=True)")
    proc.wait()  # ended (and reaped) before the kill was looked at
    sup.sup.kill_requested = True
    sup.sup._handle_kill(T0)
    assert (sup.sup.sent, sup.sup.kill_sent_at) == ([], None)


def test_after_the_leader_exited_the_descendants_path_takes_over(sup: Sup) -> None:
    proc = sup.start()
    sup.sup.kill_requested = True
    sup.sup.exited_at = T0 - 1
    sup.sup._handle_kill(T0)
    assert (sup.sup.sent, sup.sup.kill_sent_at) == ([], None) and still_running(proc)


@pytest.mark.parametrize("missing", ["proc", "group"])
def test_nothing_started_nothing_to_signal(sup: Sup, missing: str) -> None:
    proc = sup.start()
    sup.sup.kill_requested = True
    setattr(sup.sup, missing, None)
    sup.sup._handle_kill(T0)
    assert (sup.sup.sent, sup.sup.kill_sent_at) == ([], None) and still_running(proc)
