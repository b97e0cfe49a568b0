"""Server faults under running jobs: a restart that answers LOADING for seconds, memory
full, the server gone for good, a reply lost on the wire. Private servers started here,
real supervisors and jobs; every line must arrive once and in order (or be a counted gap)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import redis

from gn_jobs_tui.core import scripts, wire
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.connection import parse_url
from gn_jobs_tui.core.env import spool_dir
from gn_jobs_tui.core.launcher import start_job
from gn_jobs_tui.core.server import EmbeddedServer, find_binary
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from tests.conftest import wait_for
from tests.helpers import python, run_command
from tests.servers import kill_server

GIVE_UP = float(os.environ["GN_JOBS_GIVE_UP"])


@pytest.fixture(autouse=True)
def _state_dir(server: EmbeddedServer) -> None:
    """The session fixture points XDG_STATE_HOME (supervisor logs, spool) at a temp dir."""



def printer(n: int, per_s: float, width: int = 0) -> list[str]:
    """A job that prints `line 0` .. `line n-1` at `per_s` lines a second."""
    pad = f" + 'x' * {width}" if width else ""
    return python(f"import time\nfor i in range({n}):\n    print(f'line {{i}}'{pad}, flush=True)\n"
                  f"    time.sleep({1 / per_s})\n")


def lines_of(store: Store, job_id: str) -> tuple[list[int], list[str]]:
    entries = store.r.xrange(store.keys.output(job_id))
    return ([int(f[b"n"]) for _, f in entries],
            [f[b"line"].decode().split(" x")[0].rstrip("x") for _, f in entries])


def patiently(fn, timeout: float = 60.0):
    """Call fn until the server answers (it may be restarting or loading)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def finished(store: Store, job_id: str, timeout: float = 60.0):
    return wait_for(lambda: (j := patiently(lambda: store.get_job(job_id))) and
                    j.status in ("completed", "failed", "killed") and j, timeout=timeout,
                    what=f"job {job_id} to finish")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_restart_from_a_million_key_aof_while_20_jobs_write(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL the server, restart it from an AOF of 1,000,000 keys: it answers LOADING for
    seconds while 20 jobs write output. All complete; every line once, in order."""
    binary = find_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    # DEBUG needs --enable-debug-command from Redis 7 / Valkey on; Redis 6 has no such option.
    allow = "" if " v=6." in version and "Valkey" not in version else " --enable-debug-command local"
    wrapper = tmp_path / "server.sh"  # the real binary, with DEBUG POPULATE allowed
    wrapper.write_text(f'#!/bin/sh\nexec {binary} "$@"{allow}\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("GN_JOBS_SERVER_BIN", str(wrapper))
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    try:
        r = srv.client(timeout=60)
        r.execute_command("DEBUG", "POPULATE", 1_000_000, "fill", 32)
        r.config_set("aof-use-rdb-preamble", "no")  # commands, not RDB: loading takes seconds
        patiently(r.bgrewriteaof)  # put the million keys in the AOF
        time.sleep(0.2)
        wait_for(lambda: not (i := r.info("persistence"))["aof_rewrite_in_progress"]
                 and not i["aof_rewrite_scheduled"], timeout=60, what="AOF rewrite")
        # appendfsync stays `everysec`: a SIGKILL loses up to a second of acknowledged writes,
        # which the supervisors notice (the stream's tip) and write again.
        config = Config(srv.url, "loading")
        store = Store.from_url(srv.url, "loading")
        n = 600
        # Loading a million keys on a busy 2-core machine can outlast the tests' 8 s give-up.
        patient = {"GN_JOBS_GIVE_UP": "90"}
        ids = [start_job(store, config, job_fields(new_job_id(), "custom", "u", printer(n, 100), {}),
                         env_extra=patient) for _ in range(20)]
        wait_for(lambda: all(store.r.xlen(store.keys.output(j)) > 50 for j in ids), timeout=30,
                 what="all 20 jobs writing")
        kill_server(srv)  # SIGKILL: no chance to write anything more
        restart = threading.Thread(target=srv.ensure, kwargs={"timeout": 60})
        restart.start()
        probe = wire.Client(parse_url(srv.url), name="probe", timeout=1.0)
        first = last = 0.0
        t = time.monotonic()
        while time.monotonic() - t < 60:
            try:
                probe.call("GET", "x")
                break
            except wire.Loading:
                last = time.monotonic()
                first = first or last
            except wire.ConnectionLost:
                pass
            time.sleep(0.05)
        restart.join()
        probe.close()
        saw_loading = last - first
        assert saw_loading >= 1.0, f"LOADING seen for only {saw_loading:.2f} s"
        for job_id in ids:
            job = finished(store, job_id)
            assert job.status == "completed", job
            seqs, lines = lines_of(store, job_id)
            assert seqs == list(range(1, n + 1)), job_id
            assert lines == [f"line {i}" for i in range(n)], job_id
        print(f"LOADING answered for {saw_loading:.1f} s; 20 jobs x {n} lines, none lost or doubled")
    finally:
        kill_server(srv)


def test_memory_full_mid_job_gap_counted_then_everything_once(private: EmbeddedServer) -> None:
    """maxmemory reached (noeviction) while two jobs write. Job A's spool is tiny: it completes
    with a counted gap; its supervisor lives on and writes the rest when memory is freed.
    Job B (default spool) loses nothing: every line once, in order."""
    config = Config(private.url, "oom")
    store = Store.from_url(private.url, "oom")
    small = {"GN_JOBS_OUTPUT_BUFFER": "2000", "GN_JOBS_SPILL_MAX": "4000"}
    a = start_job(store, config, job_fields(new_job_id(), "custom", "u", printer(300, 100, 80), {}),
                  env_extra=small)
    b = run_command(store, config, printer(900, 100, 80))
    wait_for(lambda: store.r.xlen(store.keys.output(a)) > 20 and store.r.xlen(store.keys.output(b)) > 20,
             what="output flowing")
    store.r.config_set("maxmemory", "1")  # every write that needs memory is refused now
    job_a = store.get_job(a)
    wait_for(lambda: gone(job_a.pid), timeout=10, what="job A to end")
    time.sleep(1.0)
    # A's supervisor lives, still holding its job's end; the heartbeat lives on (PEXPIRE).
    sup_a = int(job_a.extra["supervisor_pid"])
    assert not gone(sup_a)
    assert store.get_job(a).effective_status == "running"
    assert store.get_job(b).effective_status == "running"
    store.r.config_set("maxmemory", "0")
    job_a, job_b = finished(store, a), finished(store, b)
    assert job_a.status == "completed" and job_b.status == "completed"
    dropped = int(job_a.extra["output_dropped"])
    seqs, lines = lines_of(store, a)
    assert dropped > 0 and len(lines) == 300 - dropped
    assert seqs == list(range(1, 301 - dropped)) and lines == [f"line {i}" for i in range(300 - dropped)]
    seqs, lines = lines_of(store, b)
    assert "output_dropped" not in job_b.extra
    assert seqs == list(range(1, 901)) and lines == [f"line {i}" for i in range(900)]
    print(f"memory full: job A kept {300 - dropped} lines and counted {dropped} not stored; "
          "job B lost none of 900")


def test_server_gone_for_good_spool_reaches_a_new_server_via_the_cli(tmp_path: Path) -> None:
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    prefix = "gone"
    config = Config(srv.url, prefix)
    store = Store.from_url(srv.url, prefix)
    job_id = run_command(store, config, printer(60, 20), user="night-shift")
    wait_for(lambda: store.r.xlen(store.keys.output(job_id)) >= 5, what="output flowing")
    job = store.get_job(job_id)
    sup = int(job.extra["supervisor_pid"])
    os.kill(srv.pid(), signal.SIGKILL)  # removed for good: the data goes with it
    shutil.rmtree(srv.directory)
    store.r.close()
    wait_for(lambda: gone(job.pid), timeout=10, what="the job to run to its end")
    ended = time.monotonic()
    wait_for(lambda: gone(sup), timeout=GIVE_UP + 10, what="the supervisor to give up")
    took = time.monotonic() - ended
    assert took <= GIVE_UP + 2, f"supervisor exited {took:.1f} s after its job (bound {GIVE_UP})"
    records = [p for p in spool_dir().glob(f"{job_id}.*.rec")]
    assert len(records) == 1
    head = json.loads(records[0].read_text().splitlines()[0])
    assert "password" not in records[0].read_text() and head["final"]["status"] == "completed"
    # A brand new, empty server at the same URL; a later command writes the spool into it.
    new = EmbeddedServer(tmp_path / "s")
    new.ensure()
    try:
        cmd = [sys.executable, "-m", "gn_jobs_tui", "--redis-url", new.url, "--prefix", prefix,
               "list", "--json"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=os.environ.copy())
        assert out.returncode == 0, out.stderr
        assert "wrote 1 spooled job record" in out.stderr
        (listed,) = [j for j in json.loads(out.stdout) if j["job_id"] == job_id]
        assert listed["status"] == "completed" and listed["exit_code"] == 0
        s2 = Store.from_url(new.url, prefix)
        again = s2.get_job(job_id)
        assert again.user_id == "night-shift" and again.command and again.created and not again.damage
        assert s2.r.zscore(s2.keys.jobs_index, job_id) == pytest.approx(again.created)
        assert s2.r.zscore(s2.keys.user_jobs("night-shift"), job_id) is not None
        assert s2.r.zscore(s2.keys.ids, job_id) == 0
        assert s2.r.zscore(s2.keys.status_index("completed"), job_id) is not None
        seqs, lines = lines_of(s2, job_id)
        assert lines and lines[-1] == "line 59" and seqs == list(range(seqs[0], 61))
        assert lines == [f"line {i - 1}" for i in seqs]
        assert not list(spool_dir().glob(f"{job_id}.*.rec"))
        out2 = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=os.environ.copy())
        assert out2.returncode == 0 and "spooled" not in out2.stderr
        s2.r.close()
    finally:
        kill_server(new)
    print(f"gone for good: supervisor exited {took:.1f} s after its job (bound {GIVE_UP:g} s); "
          f"{len(lines)} unwritten lines and the final state replayed into a new server")


class CuttingProxy:
    """TCP in front of a unix socket. After forwarding a call of APPEND_ONCE it lets the
    server run it, then cuts the connection before the reply reaches the client."""

    def __init__(self, target: str, cuts: int) -> None:
        self.target, self.cuts_left, self.cut = target, cuts, 0
        self.marks = (wire.sha1_hex(scripts.APPEND_ONCE).encode(), scripts.APPEND_ONCE[:40].encode())
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            state = {"cut_next_reply": False}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        while (data := self._recv(client)):
            if self.cuts_left > 0 and any(m in data for m in self.marks):
                self.cuts_left -= 1
                state["cut_next_reply"] = True
            upstream.sendall(data)

    def _down(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        while (data := self._recv(upstream)):
            if state["cut_next_reply"]:  # the script ran; its reply never arrives
                self.cut += 1
                break
            client.sendall(data)
        for s in (client, upstream):
            s.close()

    @staticmethod
    def _recv(s: socket.socket) -> bytes:
        try:
            return s.recv(65536)
        except OSError:
            return b""

    def close(self) -> None:
        self.stopping = True
        self.listener.close()


def test_a_batch_whose_reply_is_lost_is_not_appended_twice(server: EmbeddedServer,
                                                           prefix: str) -> None:
    proxy = CuttingProxy(str(server.socket), cuts=3)
    try:
        store = Store.from_url(server.url, prefix)
        store.r.script_load(scripts.APPEND_ONCE)  # so a cut reply is a run, never a NOSCRIPT
        config = Config(f"redis://127.0.0.1:{proxy.port}", prefix)
        n = 300
        job_id = run_command(store, config, printer(n, 200))
        job = finished(store, job_id)
        assert job.status == "completed"
        assert proxy.cut == 3  # three batches ran on the server, their replies lost
        seqs, lines = lines_of(store, job_id)
        assert seqs == list(range(1, n + 1)) and lines == [f"line {i}" for i in range(n)]
    finally:
        proxy.close()


def test_refusals_and_a_pause_mid_job_lose_no_line(private: EmbeddedServer) -> None:
    """One job writing while the server, in turn: forgets its scripts (NOSCRIPT), becomes a
    replica (READONLY), refuses the supervisor's user scripts (NOPERM), and is paused for
    longer than the supervisor's timeout. The job completes; every line once, in order."""
    config = Config(private.url, "refuse")
    store = Store.from_url(private.url, "refuse")
    n = 700
    job_id = run_command(store, config, printer(n, 100))
    out = store.keys.output(job_id)

    def grows(by: int = 30) -> None:
        start = patiently(lambda: store.r.xlen(out))
        wait_for(lambda: patiently(lambda: store.r.xlen(out)) >= start + by, timeout=20,
                 what="output flowing again")

    grows()
    store.r.script_flush()  # NOSCRIPT
    grows()
    store.r.execute_command("REPLICAOF", "127.0.0.1", "1")  # READONLY (its primary never answers)
    time.sleep(1.0)
    store.r.execute_command("REPLICAOF", "NO", "ONE")
    grows()
    store.r.execute_command("ACL", "SETUSER", "default", "-@scripting")  # NOPERM
    time.sleep(1.0)
    store.r.execute_command("ACL", "SETUSER", "default", "+@all")
    grows()
    os.kill(private.pid(), signal.SIGSTOP)  # longer than the supervisor's timeout (1 s here)
    time.sleep(2.5)
    os.kill(private.pid(), signal.SIGCONT)
    job = finished(store, job_id)
    assert job.status == "completed" and job.exit_code == 0
    seqs, lines = lines_of(store, job_id)
    assert seqs == list(range(1, n + 1)) and lines == [f"line {i}" for i in range(n)]
    log = (Path(os.environ["XDG_STATE_HOME"]) / "gn-jobs" / "logs" / f"supervisor-{job_id}.log").read_text()
    for kind in ("READONLY", "NOPERM", "no reply within"):
        assert kind in log, kind


def test_a_job_hash_deleted_mid_job_is_never_recreated_in_part(store: Store, config: Config) -> None:
    """The job's hash vanishes while it runs (evicted, deleted): the supervisor's writes are
    refused and counted, no partial hash appears; the spooled record re-creates it whole."""
    job_id = run_command(store, config, printer(30, 20), user="evicted")
    job = wait_for(lambda: (j := store.get_job(job_id)) and j.status == "running" and
                   j.extra.get("supervisor_pid") and j, what="running")
    store.r.delete(store.keys.job(job_id))
    sup = int(job.extra["supervisor_pid"])
    wait_for(lambda: gone(sup), timeout=15, what="the supervisor to finish")
    assert not store.r.exists(store.keys.job(job_id))  # nothing written back in part
    (path,) = spool_dir().glob(f"{job_id}.*.rec")
    head = json.loads(path.read_text().splitlines()[0])
    assert head["refused"] >= 1 and head["final"]["status"] == "completed"
    from gn_jobs_tui.core.spool import replay_pending

    assert replay_pending(config.url, config.prefix) == 1
    again = store.get_job(job_id)
    assert again.status == "completed" and again.user_id == "evicted" and not again.damage
    assert again.command and again.created and again.pid == job.pid
    seqs, lines = lines_of(store, job_id)
    assert seqs == list(range(1, 31)) and lines == [f"line {i}" for i in range(30)]


def test_a_failed_snapshot_mid_job_misconf_loses_no_line(tmp_path: Path) -> None:
    """The server's last snapshot failed (disk full, a directory gone): with
    `stop-writes-on-bgsave-error` it refuses every write with MISCONF. The supervisor keeps
    its job running and its lines in memory; once a snapshot succeeds, every line once, in
    order."""
    from tests.servers import ArgServer

    srv = ArgServer(tmp_path / "s")
    srv.ensure()
    try:
        config = Config(srv.url, "misconf")
        store = Store.from_url(srv.url, "misconf")
        n = 400
        job_id = run_command(store, config, printer(n, 100))
        out = store.keys.output(job_id)
        wait_for(lambda: store.r.xlen(out) >= 30, what="output flowing")
        rdb = tmp_path / "rdb"
        rdb.mkdir()
        store.r.config_set("dir", str(rdb))
        store.r.config_set("save", "3600 1")  # MISCONF applies where snapshots are configured
        rdb.rmdir()  # the snapshot cannot be written
        store.r.bgsave()
        wait_for(lambda: store.r.info("persistence")["rdb_last_bgsave_status"] == "err",
                 what="a failed snapshot")
        with pytest.raises(redis.ResponseError, match="MISCONF"):
            store.r.set("probe", "1")
        held = store.r.xlen(out)
        time.sleep(1.0)
        assert store.r.xlen(out) == held  # refused meanwhile: nothing half-written
        store.r.config_set("dir", str(srv.directory))
        store.r.bgsave()
        wait_for(lambda: store.r.info("persistence")["rdb_last_bgsave_status"] == "ok",
                 what="a good snapshot")
        job = finished(store, job_id)
        assert job.status == "completed" and job.exit_code == 0
        seqs, lines = lines_of(store, job_id)
        assert seqs == list(range(1, n + 1)) and lines == [f"line {i}" for i in range(n)]
        log = (spool_dir().parent / "logs" / f"supervisor-{job_id}.log").read_text()
        assert "MISCONF" in log
    finally:
        kill_server(srv)
