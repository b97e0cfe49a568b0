"""The sync store's wire client (`core/syncclient.py`): redis-py's answers, without redis-py.

The CLI reads through it so a command starts without importing redis-py;
these check that what the store gets back is what redis-py would have given
it, and that errors keep their meaning, on a real server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from gn_jobs_tui.core import errors, wire
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.connection import describe_error, parse_url
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from gn_jobs_tui.core.syncclient import WireRedis


def test_cli_commands_import_neither_redis_py_nor_asyncio(config: Config, store: Store) -> None:
    job_id = store.create_job(job_fields(new_job_id(), "sleep", "ana", ["true"], {"seconds": 1}))
    code = ("import sys\n"
            "from gn_jobs_tui.cli import main\n"
            "for argv in (['list', '--limit', '20'], ['list', '--json', '--status', 'queued'],\n"
            "             ['show', sys.argv[1][:8]], ['logs', sys.argv[1]], ['kill', sys.argv[1]],\n"
            "             ['audit']):\n"
            "    try:\n"
            "        main(['--redis-url', sys.argv[2], '--prefix', sys.argv[3], *argv])\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, (argv, exc.code)\n"
            "print('HEAVY', sorted({'redis', 'asyncio'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code, job_id, config.url, config.prefix],
                         capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert job_id[:8] in out.stdout and "ana" in out.stdout  # the commands did read the job
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_replies_have_redis_py_shapes(server: EmbeddedServer, prefix: str) -> None:
    """Each call the store makes answers as redis-py's does, key by key."""
    py = redis.Redis(unix_socket_path=str(server.socket))
    w = WireRedis(parse_url(server.url))
    h, z, s, lst, x = (f"{prefix}:{n}" for n in ("h", "z", "s", "l", "x"))
    py.hset(h, mapping={"a": "1", "b": b"\xff"})
    py.zadd(z, {"j1": 1.5, "j2": 2.0, "j3": 1e9})
    py.sadd(s, "m1", "m2")
    py.rpush(lst, "l1", "l2")
    ids = [py.xadd(x, {"line": f"n{i}"}) for i in range(3)]
    same = [
        ("exists", (h, z, f"{prefix}:none"), {}),
        ("type", (h,), {}), ("type", (f"{prefix}:none",), {}),
        ("smembers", (s,), {}), ("lrange", (lst, 0, -1), {}),
        ("zcard", (z,), {}), ("zmscore", (z, ["j1", "nope", "j3"]), {}),
        ("zrange", (z, 0, -1), {"withscores": True}), ("zrevrange", (z, 0, 1), {}),
        ("zrevrange", (z, 0, -1), {"withscores": True}),
        ("zrangebyscore", (z, "-inf", 2.0), {"start": 0, "num": 1}),
        ("zrangebylex", (z, "[j", "[j\xff"), {"start": 0, "num": 2}),
        ("xrevrange", (x,), {"count": 2}),
    ]
    for name, args, kw in same:
        assert getattr(w, name)(*args, **kw) == getattr(py, name)(*args, **kw), name
    assert w.execute_command("HGETALL", h) == py.hgetall(h) == {b"a": b"1", b"b": b"\xff"}
    assert w.execute_command("ZSCORE", z, "j1") == 1.5 and w.execute_command("ZSCORE", z, "x") is None
    cursor, names = w.scan(0, match=f"{prefix}:*", count=1000)
    assert isinstance(cursor, int) and set(w.scan_iter(match=f"{prefix}:*", count=2)) == \
        set(py.scan_iter(match=f"{prefix}:*", count=2)) == {k.encode() for k in (h, z, s, lst, x)}
    assert {"redis_version", "used_memory", "maxmemory_policy"} <= set(w.info())
    assert w.info()["used_memory"] > 0 and isinstance(w.info("server")["uptime_in_seconds"], int)
    assert w.info("keyspace") == py.info("keyspace")  # db0:keys=...,expires=... as a dict
    secs, micros = w.time()
    assert abs(secs - time.time()) < 5 and 0 <= micros < 1_000_000
    assert ids[-1] == w.xrevrange(x, count=1)[0][0]
    py.close()
    w.close()


def test_a_transaction_refused_when_queued_runs_nothing_and_says_why(
        server: EmbeddedServer, prefix: str) -> None:
    """OOM refuses writes as they are queued: EXEC then aborts; the refusal is what is raised."""
    py = redis.Redis(unix_socket_path=str(server.socket))
    w = WireRedis(parse_url(server.url))
    before = py.config_get("maxmemory")["maxmemory"]
    py.config_set("maxmemory", 1)
    try:
        with w.pipeline() as pipe, pytest.raises(wire.OutOfMemory):
            pipe.execute_command("HSET", f"{prefix}:a", "f", "1")
            pipe.execute_command("HSET", f"{prefix}:b", "f", "1")
            pipe.execute()
    finally:
        py.config_set("maxmemory", before)
    assert py.exists(f"{prefix}:a", f"{prefix}:b") == 0
    # An error at EXEC time (wrong type) is raised, or returned in its place when asked.
    py.set(f"{prefix}:s", "x")
    with w.pipeline() as pipe, pytest.raises(wire.ReplyError) as err:
        pipe.execute_command("HSET", f"{prefix}:s", "f", "1")
        pipe.execute()
    assert err.value.kind == "WRONGTYPE"
    with w.pipeline(transaction=False) as pipe:
        pipe.execute_command("HGETALL", f"{prefix}:s")
        pipe.execute_command("HSET", f"{prefix}:h", "f", "1")
        pipe.execute_command("HGETALL", f"{prefix}:h")
        got = pipe.execute(raise_on_error=False)
    assert isinstance(got[0], wire.ReplyError) and got[1] == 1 and got[2] == {b"f": b"1"}
    py.close()
    w.close()


def test_errors_of_both_clients_are_caught_and_described_alike(server: EmbeddedServer) -> None:
    target = parse_url(server.url)
    py = redis.Redis(unix_socket_path=str(server.socket))
    w = WireRedis(target)
    for client in (py, w):
        with pytest.raises(errors.reply()) as err:
            client.execute_command("NOSUCHCOMMAND")
        assert "unknown command" in describe_error(err.value, target)
        with pytest.raises(errors.no_script()):
            client.evalsha("0" * 40, 0)
    gone = WireRedis(parse_url("unix:///nonexistent/gn-jobs.sock"))
    with pytest.raises(errors.unreachable()) as lost:
        gone.execute_command("PING")
    assert describe_error(lost.value, target).startswith(f"cannot reach {target.display}")
    py.close()
    w.close()


def test_a_paused_server_is_a_timeout_named_as_such(tmp_path: Path) -> None:
    """The CLI's one line for a server that stopped answering (SIGSTOP), after its timeout."""
    srv = EmbeddedServer(tmp_path / "paused-server")
    srv.ensure()
    pid = srv.pid()
    assert pid
    try:
        os.kill(pid, signal.SIGSTOP)
        w = WireRedis(parse_url(srv.url), timeout=0.5)
        with pytest.raises(errors.timeout()) as err:
            w.execute_command("PING")
        assert "no answer from" in describe_error(err.value, parse_url(srv.url))
        out = subprocess.run([sys.executable, "-m", "gn_jobs_tui", "--redis-url", srv.url,
                              "list", "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "no answer from" in out.stderr, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
        srv.stop()


def test_threads_sharing_one_client_each_get_their_own_replies(server: EmbeddedServer) -> None:
    """The console's actions share one sync store across worker threads (as redis-py allows)."""
    w = WireRedis(parse_url(server.url))
    wrong: list[tuple[str, object]] = []

    def talk(n: int) -> None:
        for i in range(200):
            sent = f"{n}-{i}"
            with w.pipeline(transaction=i % 2 == 0) as pipe:
                pipe.execute_command("ECHO", sent)
                pipe.execute_command("ECHO", sent + "b")
                got = pipe.execute()
            if got != [sent.encode(), (sent + "b").encode()]:
                wrong.append((sent, got))

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    connections = len(w._made)
    w.close()
    assert wrong == [] and 1 <= connections <= 6


def test_a_connection_the_server_closed_while_idle_is_replaced(server: EmbeddedServer) -> None:
    """The console's store sits idle between actions; a server restart (here CLIENT KILL of
    its connection) must not fail the next action, as it does not with redis-py."""
    w = WireRedis(parse_url(server.url), name="gn-jobs-idle-test")
    assert w.execute_command("PING") == b"PONG"
    py = redis.Redis(unix_socket_path=str(server.socket))
    mine = [c["id"] for c in py.client_list() if c["name"] == "gn-jobs-idle-test"]
    assert len(mine) == 1 and py.client_kill_filter(_id=mine[0]) == 1
    py.close()
    time.sleep(0.2)
    assert w.execute_command("PING") == b"PONG"
    with w.pipeline() as pipe:
        pipe.execute_command("ECHO", "after")
        assert pipe.execute() == [b"after"]
    w.close()
