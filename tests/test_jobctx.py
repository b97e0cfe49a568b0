"""A job's own writes never kill it: real job programs against a server in trouble.

Each test runs a real subprocess that reports through `JobContext` (the
environment the supervisor gives a job, set by the test) against a private
server put in one state: away, LOADING, full, a read-only replica; or with
its job hash deleted or superseded. The program must run on without waiting,
exit 0, and everything it wrote must be in Redis exactly once and in order
once the server takes writes again (or be counted and said when it cannot).
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console

from gn_jobs_tui.core import outbox as outbox_mod
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.jobctx import ENV_CLAIM, ENV_JOB_ID, ENV_PREFIX, ENV_URL
from gn_jobs_tui.core.keys import Keys
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.model import parse_job
from gn_jobs_tui.core.server import EmbeddedServer, find_binary
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from gn_jobs_tui.jobs.samples import write_matrix
from gn_jobs_tui.processors import GENERIC
from tests.conftest import wait_for
from tests.servers import ArgServer, binary_major

PREFIX = "jc"
CLAIM = "testhost:1:1.000"


def no_retry_client(srv: EmbeddedServer, timeout: float = 2.0) -> redis.Redis:
    """A client that reports what the server says at once (redis-py retries by default)."""
    return redis.Redis(unix_socket_path=str(srv.socket), socket_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def stop(srv: EmbeddedServer) -> None:
    """SHUTDOWN (the AOF is flushed) and wait for the process to go."""
    pid = srv.pid()
    if pid:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            return
    try:
        no_retry_client(srv).shutdown(nosave=True)  # the AOF is still flushed
    except redis.RedisError:
        pass  # not running, or closed the connection as it went
    if pid:
        try:
            wait_for(lambda: not psutil.pid_exists(pid), timeout=10, what="server to stop")
        except AssertionError:
            os.kill(pid, signal.SIGKILL)  # never leave it behind
            raise


@pytest.fixture
def private(tmp_path: Path) -> Iterator[ArgServer]:
    srv = ArgServer(tmp_path / "s")
    srv.ensure()
    yield srv
    stop(srv)


def new_job(srv: EmbeddedServer, claim: str | None = CLAIM) -> tuple[Store, str]:
    """A job hash as the launcher writes it, claimed the way a supervisor claims it."""
    store = Store.from_url(srv.url, PREFIX)
    job_id = store.create_job(job_fields(new_job_id(), "custom", "tester", ["x"], {}), audit=None)
    if claim:
        store.r.hset(store.keys.job(job_id), "supervisor", claim)
    return store, job_id


def program(code: str, srv: EmbeddedServer, job_id: str, claim: str | None = CLAIM,
            **env_extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update({ENV_JOB_ID: job_id, ENV_URL: srv.url, ENV_PREFIX: PREFIX, **env_extra})
    env.pop(ENV_CLAIM, None)
    if claim:
        env[ENV_CLAIM] = claim
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the job program did not get there in time (is it waiting on Redis?)"
    return proc.stdout.readline().strip()  # type: ignore[union-attr]


def reporter(n: int, pause: float = 0.0) -> str:
    """A job program: one child key, N records and N progress reports, then `looped`."""
    return f"""
        import time
        from gn_jobs_tui.core.jobctx import JobContext
        ctx = JobContext.from_env()
        [key] = ctx.children(1)
        w = ctx.writer(key)
        w.start(files=["f.tsv"])
        for i in range({n}):
            w.record(file="f.tsv", line=str(i), check="numeric", message="not a number")
            ctx.progress(100.0 * (i + 1) / {n}, f"record {{i + 1}} of {n}")
            time.sleep({pause})
        w.finish("completed")
        print("looped", flush=True)
    """


def entries(client: redis.Redis, key: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(key)]


def assert_everything_stored_once(store: Store, job_id: str, n: int) -> None:
    key = store.keys.child(job_id, 0)
    got = entries(store.r, key)
    assert [e["kind"] for e in got] == ["start"] + ["record"] * n + ["finish"]
    assert [int(e["n"]) for e in got] == list(range(1, n + 3))  # in order, none twice
    assert [e["line"] for e in got if e["kind"] == "record"] == [str(i) for i in range(n)]
    raw = {k.decode(): v.decode() for k, v in store.r.hgetall(store.keys.job(job_id)).items()}
    assert raw["progress"] == "100.0" and raw["message"] == f"record {n} of {n}"
    assert json.loads(raw["children"]) == [key]
    assert "updates_dropped" not in raw


def test_job_program_runs_on_while_the_server_is_away(private: ArgServer) -> None:
    """Away, with a small outbox: the job never waits, overflow is counted, stored and said."""
    store, job_id = new_job(private)
    store.r.close()
    stop(private)
    proc = program(reporter(120), private, job_id, GN_JOBS_OUTBOX_MAX_ENTRIES="40")
    # Every report was made while the server was away: nothing waited on it.
    assert read_line(proc) == "looped"
    time.sleep(0.3)
    assert proc.poll() is None, "the exit flush should be waiting for the server"
    private.ensure()  # back, from its append-only file (the scripts are gone: NOSCRIPT)
    assert proc.wait(30) == 0
    err = proc.stderr.read()  # type: ignore[union-attr]
    store = Store.from_url(private.url, PREFIX)
    got = entries(store.r, store.keys.child(job_id, 0))
    records = [e for e in got if e["kind"] == "record"]
    kept = len(records)
    assert 0 < kept < 120
    # What was kept is a prefix, in order, numbered without a gap; finish always gets in.
    assert [e["line"] for e in records] == [str(i) for i in range(kept)]
    assert [e["kind"] for e in got] == ["start"] + ["record"] * kept + ["finish"]
    assert [int(e["n"]) for e in got] == list(range(1, kept + 3))
    lost = 120 - kept
    assert got[-1]["dropped"] == str(lost)
    raw = {k.decode(): v.decode() for k, v in store.r.hgetall(store.keys.job(job_id)).items()}
    assert raw["updates_dropped"] == str(lost)
    assert raw["progress"] == "100.0"  # hash fields coalesce: the latest value always fits
    said = [line for line in err.splitlines() if line.startswith("gn-jobs:")]
    assert len(said) == 1 and said[0].startswith(f"gn-jobs: {lost} progress updates not stored")
    console = Console(width=100, file=io.StringIO(), color_system=None)
    console.print(GENERIC.fields_table(parse_job(job_id, store.r.hgetall(store.keys.job(job_id))), 0))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(rf"not stored\s+{lost} progress updates", shown), shown


@pytest.mark.skipif(binary_major() < 7, reason="seconds of LOADING from 20,000 keys needs 7's "
                    "loading-process-events-interval-bytes; on 6.2 a million-key restart "
                    "(test_faults_server.py) shows LOADING to supervisors")
def test_job_program_writes_through_a_loading_server(private: ArgServer) -> None:
    store, job_id = new_job(private)
    # Enough keys in the append-only file, loaded slowly, for seconds of LOADING.
    store.r.eval("for i = 1, 20000 do redis.call('SET', 'fill:' .. i, 'x') end", 0)
    store.r.bgrewriteaof()
    wait_for(lambda: (i := store.r.info("persistence"))["aof_rewrite_in_progress"] == 0
             and i["aof_rewrite_scheduled"] == 0, what="AOF rewritten")
    store.r.close()
    stop(private)
    # 6.2 answers between every 1,000 AOF commands already; 7+ needs the interval lowered.
    private.extra = ("--key-load-delay", "50", *(
        ("--loading-process-events-interval-bytes", "1024") if binary_major() >= 7 else ()))
    private._start()
    proc = program(reporter(30, 0.1), private, job_id)
    probe = no_retry_client(private)
    loading_seen = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            probe.ping()
            break
        except redis.BusyLoadingError:
            loading_seen = loading_seen or proc.poll() is None
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # not listening yet, or (6.2) busy between two event rounds of its load
        time.sleep(0.02)
    assert loading_seen, "the server never answered LOADING while the job ran"
    assert read_line(proc) == "looped"
    assert proc.wait(30) == 0
    assert "not stored" not in proc.stderr.read()  # type: ignore[union-attr]
    assert_everything_stored_once(Store.from_url(private.url, PREFIX), job_id, 30)


def test_job_program_waits_out_a_full_then_read_only_then_misconf_server(
        private: ArgServer, tmp_path: Path) -> None:
    store, job_id = new_job(private)
    key = store.keys.child(job_id, 0)
    probe = no_retry_client(private)
    store.r.config_set("maxmemory", 1)  # noeviction: every write is refused with OOM
    proc = program(reporter(50), private, job_id)
    assert read_line(proc) == "looped"
    time.sleep(0.5)
    assert proc.poll() is None and not store.r.exists(key)
    # Then a replica (after a failover, say): READONLY, still retried.
    store.r.replicaof("127.0.0.1", 1)
    store.r.config_set("maxmemory", 0)
    with pytest.raises(redis.ReadOnlyError):
        probe.set("probe", "1")
    time.sleep(1.0)
    assert proc.poll() is None and not store.r.exists(key)
    # Then a primary whose last snapshot failed: MISCONF, still retried.
    rdb = tmp_path / "rdb"
    rdb.mkdir()
    store.r.config_set("dir", str(rdb))
    store.r.config_set("save", "3600 1")
    rdb.rmdir()  # the snapshot (made while still a replica) cannot be written
    store.r.bgsave()
    wait_for(lambda: store.r.info("persistence")["rdb_last_bgsave_status"] == "err",
             what="a failed snapshot")
    store.r.replicaof("NO", "ONE")
    with pytest.raises(redis.ResponseError, match="MISCONF"):
        probe.set("probe", "1")
    time.sleep(1.0)
    assert proc.poll() is None and not store.r.exists(key)
    assert store.r.hget(store.keys.job(job_id), "progress") is None
    store.r.config_set("dir", str(private.directory))  # its own directory again
    store.r.bgsave()
    wait_for(lambda: store.r.info("persistence")["rdb_last_bgsave_status"] == "ok",
             what="a good snapshot")
    assert proc.wait(30) == 0
    assert "not stored" not in proc.stderr.read()  # type: ignore[union-attr]
    assert_everything_stored_once(store, job_id, 50)


REFUSED = """
    import sys
    from gn_jobs_tui.core.jobctx import JobContext
    ctx = JobContext.from_env()
    [key] = ctx.children(1)
    w = ctx.writer(key)
    w.start(files=["f.tsv"])
    ctx.progress(10, "first")
    print("first" if ctx.flush(10) else "not flushed", flush=True)
    sys.stdin.readline()
    ctx.progress(50, "second")
    ctx.set(extra="x")
    ctx.flush(10)
    w.record(line="1")
    w.finish("completed")
    ctx.children(1)
    print("second", flush=True)
"""


@pytest.mark.parametrize("what, claim, why", [
    ("deleted", CLAIM, "the job hash is gone, deleted or evicted"),
    ("deleted", None, "the job hash is gone, deleted or evicted"),
    ("retried", CLAIM, "the job was retried as newjob"),
    ("claimed by another", CLAIM, "another supervisor holds the job (otherhost:2:2.000)"),
])
def test_refused_writes_are_counted_never_retried_and_never_recreate_a_hash(
        private: ArgServer, what: str, claim: str | None, why: str) -> None:
    store, job_id = new_job(private, claim)
    job_key = store.keys.job(job_id)
    proc = program(REFUSED, private, job_id, claim)
    assert read_line(proc) == "first"
    assert store.r.hget(job_key, "message") == b"first"
    if what == "deleted":
        store.r.delete(job_key)
    elif what == "retried":
        store.r.hset(job_key, "retried_by", "newjob")
    else:
        store.r.hset(job_key, "supervisor", "otherhost:2:2.000")
    proc.stdin.write("go\n")  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]
    assert read_line(proc) == "second"
    assert proc.wait(20) == 0
    err = proc.stderr.read()  # type: ignore[union-attr]
    # progress + message + extra (one write), then the record, the finish and the children.
    said = [line for line in err.splitlines() if line.startswith("gn-jobs:")]
    assert said == [f"gn-jobs: 6 progress updates not stored (refused: {why})"]
    if what == "deleted":
        assert not store.r.exists(job_key)  # never re-created as a partial hash
    else:
        raw = store.r.hgetall(job_key)
        assert raw[b"message"] == b"first" and b"extra" not in raw
    # The child key got nothing after the refusal either.
    assert [e["kind"] for e in entries(store.r, store.keys.child(job_id, 0))] == ["start"]


def test_a_batch_sent_again_after_a_lost_reply_is_appended_once(private: ArgServer) -> None:
    """The server pauses mid-call: the client times out, sends the batch again on a new
    connection, and on resume the server runs every copy. Each entry is stored once."""
    store, job_id = new_job(private, None)
    keys = Keys(PREFIX)
    key = keys.child(job_id, 0)

    box = outbox_mod.Outbox(lambda: no_retry_client(private, 0.3), keys.events_channel, linger=0)
    for i in range(5):
        box.append(keys.job(job_id), job_id, key, ["line", str(i)])
    assert box.flush(10)
    store.r.config_resetstat()
    pid = private.pid()
    assert pid
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(5, 10):
            box.append(keys.job(job_id), job_id, key, ["line", str(i)])
        time.sleep(1.5)  # several tries, each timed out: their replies never came
    finally:
        os.kill(pid, signal.SIGCONT)
    assert box.flush(15)
    assert box.close(1) == 0
    got = entries(store.r, key)
    assert [e["line"] for e in got] == [str(i) for i in range(10)]
    assert [int(e["n"]) for e in got] == list(range(1, 11))
    calls = store.r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert calls >= 2, "the batch should have run more than once on the server"


def test_qc_parent_progress_follows_its_workers(store: Store, config: Config,
                                               tmp_path: Path) -> None:
    """Table-level check on the hash: the parent's progress moves while its workers run."""
    # On a quiet machine this failed: the worker's outbox thread spent the whole run importing
    # what a redis-py client needs, beside a CPU-bound loop (now imported on the job's thread).
    # Its first send still takes about a second beside such a loop (every I/O step waits for
    # the GIL): the file is big enough for the worker to outlast that.
    write_matrix(tmp_path / "big.tsv", 300_000, 20, plant={"numeric": [40]})
    job_id = launch(store, config, "qc-files", {"files": str(tmp_path / "big.tsv"),
                                                "workers": "1"})
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = store.get_job(job_id)
        if job and job.status == "running" and job.progress is not None:
            seen.append((job.progress, job.message or ""))
        if job and job.status in ("completed", "failed"):
            break
        time.sleep(0.05)
    assert job.status == "completed" and job.progress == 100.0
    middle = [(p, m) for p, m in seen if 0 < p < 100]
    assert middle, f"the parent's progress never moved while its worker ran: {seen[:5]}"
    assert "%" in middle[-1][1]
    values = [p for p, _ in seen]
    assert values == sorted(values)  # it never goes back


FORKED = """
    import multiprocessing as mp
    from gn_jobs_tui.core.jobctx import JobContext
    ctx = JobContext.from_env()
    keys = ctx.children(2)
    ctx.progress(5, "forking")
    ctx.flush(10)  # the parent's outbox thread is running when the workers fork

    def work(key):
        w = ctx.writer(key)
        w.start(files=[key])
        for i in range(50):
            w.record(line=str(i))
        w.finish("completed")

    workers = [mp.get_context("fork").Process(target=work, args=(k,)) for k in keys]
    for p in workers:
        p.start()
    for p in workers:
        p.join()
    ctx.progress(100, "done")
    print(",".join(str(p.exitcode) for p in workers), flush=True)
"""


def test_forked_workers_get_their_own_outbox_and_flush_it(server: EmbeddedServer) -> None:
    """multiprocessing children leave by os._exit (no atexit): their finalizer flushes."""
    store, job_id = new_job(server)
    proc = program(FORKED, server, job_id)
    assert read_line(proc) == "0,0"
    assert proc.wait(20) == 0
    assert "not stored" not in proc.stderr.read()  # type: ignore[union-attr]
    for i in range(2):
        got = entries(store.r, store.keys.child(job_id, i))
        assert [e["kind"] for e in got] == ["start"] + ["record"] * 50 + ["finish"]
        assert [int(e["n"]) for e in got] == list(range(1, 53))
    raw = store.r.hgetall(store.keys.job(job_id))
    assert raw[b"progress"] == b"100.0" and len(json.loads(raw[b"children"])) == 2


def test_processors_show_what_was_not_stored() -> None:
    from gn_jobs_tui.core.outputs import KeyState, apply_chunk
    from gn_jobs_tui.processors import for_type

    job = parse_job("j", {b"job_type": b"qc-files", b"status": b"completed",
                          b"updates_dropped": b"12"})
    child = KeyState("P:jobs:j:children:0")
    apply_chunk(child, [b"stream", [(b"1-0", [b"kind", b"finish", b"dropped", b"7"])], 1])
    console = Console(width=100, file=io.StringIO(), color_system=None)
    proc = for_type("qc-files")
    console.print(proc.job_view(job, None, [child], 0.0))
    console.print(proc.child_view(job, child))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"not stored\s+12 progress updates", shown)
    assert "7 entries not stored" in shown


def free_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too."""
    from tests.topology import free_ports

    return free_ports(1)[0]


def tcp_server(directory: Path, port: int, *extra: str) -> redis.Redis:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([find_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir",
                    str(directory), "--daemonize", "yes", "--pidfile", str(directory / "pid"),
                    "--logfile", str(directory / "log"), "--save", "", "--appendonly", "no",
                    *extra], check=True, capture_output=True, timeout=30)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    wait_for(lambda: _pings(client), what="server up")
    return client


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


TOPOLOGY = """
    from gn_jobs_tui.core.jobctx import JobContext
    ctx = JobContext.from_env()
    keys = ctx.children(2)
    ctx.follow(keys)
    for k in keys:
        w = ctx.writer(k)
        w.start(files=[k])
        w.record(line="1")
        w.finish("completed")
    ctx.progress(100, "done")
    ctx.flush(10)
    import time
    deadline = time.monotonic() + 10
    # Follow reads are polled: the last entry seen may still be an earlier one.
    while any(e is None or e["kind"] != "finish" for e in ctx.latest(keys)) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    print(",".join(e["kind"] if e else "-" for e in ctx.latest(keys)), flush=True)
"""


@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
def test_job_program_reports_through_sentinel_and_cluster(tmp_path: Path, topology: str) -> None:
    """The job's connection comes from the URL's topology: each child key, the hash, the reads."""
    port = free_port()
    servers: list[redis.Redis] = []
    try:
        if topology == "cluster":
            primary = tcp_server(tmp_path / "c", port, "--cluster-enabled", "yes",
                                 "--cluster-config-file", str(tmp_path / "c" / "nodes.conf"))
            servers.append(primary)
            # One node, every slot (ADDSLOTSRANGE is Redis 7+).
            primary.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
            wait_for(lambda: primary.cluster("info")["cluster_state"] == "ok", what="cluster ok")
            url = f"redis+cluster://127.0.0.1:{port}"
        else:
            primary = tcp_server(tmp_path / "p", port)
            servers.append(primary)
            sport = free_port()
            conf = tmp_path / "sentinel.conf"
            conf.write_text(f"port {sport}\nbind 127.0.0.1\ndaemonize yes\npidfile {tmp_path}/spid\n"
                            f"logfile {tmp_path}/slog\ndir {tmp_path}\n"
                            f"sentinel monitor mymaster 127.0.0.1 {port} 1\n")
            subprocess.run([find_binary(), str(conf), "--sentinel"], check=True, timeout=30,
                           capture_output=True)
            sentinel = redis.Redis(host="127.0.0.1", port=sport, socket_timeout=2,
                                   retry=Retry(NoBackoff(), 0))
            servers.append(sentinel)
            wait_for(lambda: _pings(sentinel), what="sentinel up")
            url = f"redis+sentinel://127.0.0.1:{sport}/mymaster"
        keys = Keys(PREFIX)
        job_id = new_job_id()
        primary.hset(keys.job(job_id), mapping=job_fields(job_id, "custom", "u", ["x"], {}))
        env = dict(os.environ, **{ENV_JOB_ID: job_id, ENV_URL: url, ENV_PREFIX: PREFIX})
        env.pop(ENV_CLAIM, None)
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(TOPOLOGY)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == "finish,finish", done.stderr
        assert "not stored" not in done.stderr
        assert primary.hget(keys.job(job_id), "progress") == b"100.0"
        for i in range(2):
            got = entries(primary, keys.child(job_id, i))
            assert [(e["n"], e["kind"]) for e in got] == [("1", "start"), ("2", "record"),
                                                          ("3", "finish")]
    finally:
        for client in servers:
            try:
                client.shutdown(nosave=True)
            except redis.RedisError:
                pass  # it closes the connection as it goes


def test_what_passes_with_time_is_retried_and_what_does_not_is_dropped() -> None:
    """The outbox's one decision per error (the faults above meet these on real servers)."""
    from redis import exceptions as rex

    transient = outbox_mod.transient
    for exc in (redis.ConnectionError("gone"), redis.TimeoutError("slow"),
                rex.BusyLoadingError("loading"), rex.OutOfMemoryError("command not allowed"),
                rex.ReadOnlyError("You can't write against a read only replica."),
                rex.NoScriptError("No matching script"), rex.ClusterDownError("down"),
                rex.TryAgainError("again"), rex.RedisClusterException("no node"),
                redis.ResponseError("MISCONF Errors writing to the disk"),
                redis.ResponseError("BUSY Redis is busy running a script"),
                redis.ResponseError("ERR Error running script: -OOM command not allowed when "
                                    "used memory > 'maxmemory'"),
                ConnectionResetError()):
        assert transient(exc), exc
    for exc in (rex.NoPermissionError("this user has no permissions to run 'evalsha'"),
                rex.AuthenticationError("invalid username-password pair"),
                redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
                redis.ResponseError("ERR bad script"), ValueError("bug")):
        assert not transient(exc), exc


def test_exit_flush_is_bounded_when_the_server_never_comes_back(tmp_path: Path) -> None:
    """GN_JOBS_EXIT_FLUSH bounds the wait at exit; what is left is counted and said once."""
    gone = EmbeddedServer(tmp_path / "never-started")  # its socket does not exist
    proc = program(reporter(20), gone, "j1", GN_JOBS_EXIT_FLUSH="1")
    assert read_line(proc) == "looped"
    assert proc.wait(15) == 0  # the default bound would be 60 s
    said = [line for line in proc.stderr.read().splitlines()  # type: ignore[union-attr]
            if line.startswith("gn-jobs:")]
    # children, progress and message fields; start, 20 records, finish.
    assert said == ["gn-jobs: 25 progress updates not stored "
                    "(25 still waiting for the server at exit)"]


def test_outbox_bound_in_bytes_drops_and_counts_but_keeps_start_and_finish(
        tmp_path: Path) -> None:
    """Past GN_JOBS_OUTBOX_MAX_BYTES (here 1,000) new entries are dropped and counted."""
    gone = EmbeddedServer(tmp_path / "never-started")
    keys = Keys(PREFIX)
    box = outbox_mod.Outbox(lambda: no_retry_client(gone, 0.2), keys.events_channel,
                            max_bytes=1000)
    from gn_jobs_tui.core.children import ChildWriter

    w = ChildWriter(box, keys, "j1", keys.child("j1", 0))
    w.start(files=["f.tsv"])
    for i in range(50):
        w.record(line=str(i), message="x" * 80)
    w.finish("completed")
    assert 0 < w.dropped < 50 and box.dropped == w.dropped
    assert box._bytes > 1000  # only because start and finish always get in
    assert box.close(0.5) == box.dropped + box.unsent
    assert box.summary().startswith(f"gn-jobs: {box.not_stored} progress updates not stored "
                                    f"({box.dropped} over the outbox limit")


NOPERM = """
    from gn_jobs_tui.core.jobctx import JobContext
    ctx = JobContext.from_env()
    [key] = ctx.children(1)
    w = ctx.writer(key)
    w.start(files=["f.tsv"])
    for i in range(3):
        w.record(line=str(i))
    ctx.progress(50, "half way")
    w.finish("completed")
    print("looped", flush=True)
"""


def test_writes_refused_for_lack_of_permission_are_counted_not_retried(
        private: ArgServer) -> None:
    """NOPERM never passes with time: an ACL user without scripting gets its writes dropped."""
    store, job_id = new_job(private)
    store.r.acl_setuser("jobber", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                        commands=["+@all", "-@scripting"])
    url = f"unix://jobber:pw@{private.socket}"
    env = dict(os.environ, **{ENV_JOB_ID: job_id, ENV_URL: url, ENV_PREFIX: PREFIX,
                              ENV_CLAIM: CLAIM})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(NOPERM)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "looped"
    said = [line for line in done.stderr.splitlines() if line.startswith("gn-jobs:")]
    # children, progress, message; start, 3 records, finish: all refused, said once.
    assert len(said) == 1 and said[0].startswith("gn-jobs: 8 progress updates not stored")
    assert "NOPERM" in said[0] or "permission" in said[0]
    assert "pw" not in done.stderr.replace("updates", "")
    assert not store.r.exists(store.keys.child(job_id, 0))
    assert store.r.hget(store.keys.job(job_id), "progress") is None
