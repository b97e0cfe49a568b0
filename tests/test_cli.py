"""The real `gn-jobs` command, run as a subprocess against the test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store
from tests.conftest import wait_for

WRITE_COMMANDS = {"hset", "hsetnx", "zadd", "zrem", "set", "del", "xadd", "publish", "rpush",
                  "lpush", "expire", "unlink", "eval", "evalsha", "hdel", "multi", "exec"}


def gn(config: Config, *args: str, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "gn_jobs_tui", "--redis-url", config.url, "--prefix",
           config.prefix, *(extra or []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=os.environ.copy())


def test_launch_list_show_logs_json(config: Config, store: Store) -> None:
    r = gn(config, "launch", "sleep", "-p", "seconds=0.5", "--user", "dana", "--json")
    assert r.returncode == 0, r.stderr
    job_id = json.loads(r.stdout)["job_id"]
    wait_for(lambda: store.get_job(job_id).is_terminal, what="finish")
    listed = json.loads(gn(config, "list", "--json", "--user", "dana").stdout)
    assert [j["job_id"] for j in listed] == [job_id] and listed[0]["status"] == "completed"
    shown = json.loads(gn(config, "show", job_id[:8], "--json").stdout)
    assert shown["job_id"] == job_id and shown["verdict"] == "completed"
    text = gn(config, "show", job_id).stdout
    assert "completed" in text and "output (tail)" in text
    assert gn(config, "logs", job_id).stdout.strip().splitlines()[-1] == "done"
    assert gn(config, "list", "--status", "failed", "--json").stdout.strip() == "[]"


def test_logs_follow_ends_with_the_job(config: Config, store: Store) -> None:
    job_id = gn(config, "launch", "sleep", "-p", "seconds=1.5").stdout.strip()
    r = gn(config, "logs", "--follow", job_id)
    assert r.returncode == 0 and r.stdout.strip().endswith("done")
    assert "tick 0" in r.stdout


def test_exit_codes_and_one_line_errors(config: Config) -> None:
    bad = gn(config, "launch", "sleep", "-p", "seconds=lots")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "seconds" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = gn(config, "launch", "rm", "-p", "x=1")
    assert unknown.returncode == 2 and "unknown job type" in unknown.stderr
    missing = gn(config, "show", "nosuchjob")
    assert missing.returncode == 1 and "no such job" in missing.stderr
    down = gn(Config("redis://admin:hunter2@127.0.0.1:1", config.prefix), "list")
    assert down.returncode == 1 and "cannot reach" in down.stderr
    assert "hunter2" not in down.stderr + down.stdout and "Traceback" not in down.stderr
    assert gn(config, "nosuchcommand").returncode == 2


def test_read_only_refuses_and_writes_nothing(config: Config, store: Store,
                                              server: EmbeddedServer) -> None:
    job_id = gn(config, "launch", "sleep", "-p", "seconds=0", "--user", "erin").stdout.strip()
    wait_for(lambda: store.get_job(job_id).is_terminal, what="finish")
    seen: list[str] = []
    stop = threading.Event()
    ready = threading.Event()

    def monitor() -> None:
        with server.client(timeout=30).monitor() as m:
            ready.set()
            for cmd in m.listen():
                if config.prefix in cmd["command"] or stop.is_set():
                    seen.append(cmd["command"].split()[0].lower())
                if stop.is_set():
                    return

    t = threading.Thread(target=monitor, daemon=True)
    t.start()
    ready.wait(5)
    ro = ["--read-only"]
    for args in (["kill", job_id], ["retry", job_id], ["launch", "sleep"],
                 ["cleanup", "--older-than", "0s"]):
        r = gn(config, *args, extra=ro)
        assert r.returncode == 1 and "read-only" in r.stderr, (args, r.stderr)
    assert gn(config, "list", "--json", extra=ro).returncode == 0
    assert gn(config, "logs", job_id, extra=ro).returncode == 0
    assert gn(config, "show", job_id, extra=ro).returncode == 0
    stop.set()
    server.client().ping()  # wakes the monitor so it can stop
    t.join(5)
    # Before Redis 7 (no EVAL_RO) the read scripts run with EVALSHA: MONITOR then shows
    # the commands they run, so no write can hide inside one.
    scripts_ro = store.detect().eval_ro
    assert ({"evalsha_ro", "eval_ro"} if scripts_ro else {"evalsha", "eval"}) & set(seen)
    writes = WRITE_COMMANDS if scripts_ro else WRITE_COMMANDS - {"eval", "evalsha"}
    assert not writes.intersection(seen), seen
    job = store.get_job(job_id)
    assert job.retried_by is None and job.kill_requested is None


def test_types_json_lists_schema() -> None:
    r = subprocess.run([sys.executable, "-m", "gn_jobs_tui", "types", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    types = {t["name"]: t for t in json.loads(r.stdout)}
    assert set(types) >= {"sleep", "qc-files", "insert-rows"}
    assert "sleep" in types and types["sleep"]["params"][0]["name"] == "seconds"


def test_two_processes_starting_the_server_share_one(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from gn_jobs_tui.core.server import "
            "EmbeddedServer; print(EmbeddedServer(Path(sys.argv[1])).ensure())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "s")],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    urls = {p.communicate(timeout=30)[0].strip() for p in procs}
    srv = EmbeddedServer(tmp_path / "s")
    try:
        assert len(urls) == 1 and srv.ping()
        servers = [p for p in __import__("psutil").process_iter(["cmdline"])
                   if str(srv.socket) in " ".join(p.info["cmdline"] or [])]
        assert len(servers) == 1
        with srv.client() as c:
            assert c.config_get("appendonly")["appendonly"] == "yes"
    finally:
        srv.stop()
    assert not srv.ping()


def test_server_survives_its_client_and_keeps_data(tmp_path: Path) -> None:
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    with srv.client() as c:
        c.set("k", "v")
    srv.stop()
    srv.ensure()  # restarted from the append-only file
    try:
        with srv.client() as c:
            assert c.get("k") == b"v"
    finally:
        srv.stop()
