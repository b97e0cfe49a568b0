"""The supervisor's own Redis client (`core/wire.py`), against real servers."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gn_jobs_tui.core import procs as core_procs
from gn_jobs_tui.core import wire
from gn_jobs_tui.core.connection import parse_url
from gn_jobs_tui.core.server import EmbeddedServer, find_binary
from tests.conftest import wait_for
from tests.helpers import TcpProxy
from tests.servers import kill_server


def client_for(url: str, **kw) -> wire.Client:
    return wire.Client(parse_url(url), name="wire-test", **kw)


def test_the_supervisor_imports_neither_redis_nor_psutil() -> None:
    # One supervisor runs per job, so every module here costs RSS per running job:
    # dataclasses alone pulls in inspect, ast, dis and tokenize (over 1 MB); typing 0.45 MB
    # (NamedTuple comes from core/tuples.py), ctypes 0.2 and socket 0.23 more than their C
    # halves (_ctypes, _socket), which the supervisor uses instead.
    code = ("import sys, gn_jobs_tui.core.supervisor\n"
            "heavy = sorted({'redis', 'psutil', 'asyncio', 'ssl', 'hashlib', 'dataclasses',\n"
            "                'inspect', 'ast', 'gn_jobs_tui.core.model', 'typing', 'ctypes',\n"
            "                'socket'} & set(sys.modules))\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_commands_pipelines_and_error_kinds(server: EmbeddedServer, prefix: str) -> None:
    c = client_for(server.url)
    key = f"{prefix}:k"
    assert c.call("PING") == b"PONG"
    replies = c.pipeline([("SET", key, "1"), ("GET", key), ("HGET", key, "f"), ("INCR", key),
                          ("GET", f"{prefix}:none")])
    assert replies[0] == b"OK" and replies[1] == b"1" and replies[3] == 2 and replies[4] is None
    assert isinstance(replies[2], wire.ReplyError) and replies[2].kind == "WRONGTYPE"
    with pytest.raises(wire.ReplyError) as err:
        c.call("HGET", key, "f")
    assert err.value.kind == "WRONGTYPE"
    with pytest.raises(wire.ReplyError):
        c.call("NOSUCHCOMMAND")
    # Binary values and undecodable bytes go through unchanged.
    c.call("SET", key, b"\xff\x00\r\n")
    assert c.call("GET", key) == b"\xff\x00\r\n"
    c.call("DEL", key)
    c.close()


def test_error_kinds_are_told_apart_even_inside_scripts() -> None:
    assert isinstance(wire.classify("LOADING Redis is loading the dataset in memory"), wire.Loading)
    assert isinstance(wire.classify("READONLY You can't write against a read only replica."),
                      wire.ReadOnly)
    assert isinstance(wire.classify("MISCONF Redis is configured to save RDB snapshots"), wire.Misconf)
    assert isinstance(wire.classify("NOPERM User u has no permissions"), wire.NoPerm)
    moved = wire.classify("MOVED 3999 127.0.0.1:6381")
    assert isinstance(moved, wire.Moved) and moved.slot == 3999 and moved.address == ("127.0.0.1", 6381)
    assert isinstance(wire.classify("ASK 12 [::1]:7000"), wire.Ask)
    # Redis 6 wraps a failing call in a script error; the kind survives.
    wrapped = "ERR Error running script (call to f_x): @user_script:3: -OOM command not allowed"
    assert isinstance(wire.classify(wrapped), wire.OutOfMemory)


def test_oom_and_noperm_are_typed_replies_from_a_real_server(private: EmbeddedServer) -> None:
    c = client_for(private.url)
    c.call("SET", "k", "v")
    c.call("CONFIG", "SET", "maxmemory", "1")
    with pytest.raises(wire.OutOfMemory):
        c.call("SET", "k2", "v")
    with pytest.raises(wire.OutOfMemory):  # inside a script too
        c.call("EVAL", "return redis.call('SET', KEYS[1], 'x')", 1, "k3")
    assert c.call("PEXPIRE", "k", 10_000) == 1  # what the heartbeat falls back on
    c.call("CONFIG", "SET", "maxmemory", "0")
    c.call("ACL", "SETUSER", "ro", "on", ">pw", "~*", "+@read", "+ping")
    ro = wire.Client(parse_url(f"unix://ro:pw@{private.socket}"), name="ro")
    assert ro.call("GET", "k") == b"v"
    with pytest.raises(wire.NoPerm):
        ro.call("SET", "k", "w")
    bad = wire.Client(parse_url(f"unix://ro:wrong@{private.socket}"), name="bad")
    with pytest.raises(wire.ReplyError) as err:
        bad.call("PING")
    assert err.value.kind == "WRONGPASS"
    for x in (c, ro, bad):
        x.close()


def test_noscript_after_script_flush_is_reloaded(server: EmbeddedServer, prefix: str) -> None:
    c = client_for(server.url)
    script = wire.script("return redis.call('INCR', KEYS[1])")
    key = f"{prefix}:n"
    assert c.eval(script, [key], []) == 1
    c.call("SCRIPT", "FLUSH")
    assert c.eval(script, [key], []) == 2  # NOSCRIPT -> EVAL, once
    c.call("SCRIPT", "FLUSH")
    replies = c.pipeline([script.cmd([key], []), ("GET", key), script.cmd([key], [])])
    assert replies == [3, b"2", 4]  # the scripts ran again after the GET (documented)
    c.close()


def test_subscription_is_polled_without_blocking(server: EmbeddedServer, prefix: str) -> None:
    c = client_for(server.url)
    sub = c.subscribe(f"{prefix}:ch")
    t = time.monotonic()
    assert sub.poll() == []
    assert time.monotonic() - t < 0.5
    c.call("PUBLISH", f"{prefix}:ch", "one")
    c.call("PUBLISH", f"{prefix}:ch", "two")
    got: list[bytes] = []
    wait_for(lambda: got.extend(sub.poll()) or len(got) >= 2, timeout=5, what="messages")
    assert got == [b"one", b"two"]
    sub.close()
    c.close()


def test_lost_connection_is_typed_and_the_next_call_reconnects(tmp_path: Path) -> None:
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    c = client_for(srv.url, timeout=1.0)
    sub = c.subscribe("ch")
    assert c.call("SET", "k", "v") == b"OK"
    c.call("SAVE")  # SIGKILL below: keep "k" on disk for the restart
    kill_server(srv)
    with pytest.raises(wire.ConnectionLost):
        c.call("GET", "k")
    with pytest.raises(wire.ConnectionLost):
        sub.poll()
    srv.ensure()
    try:
        assert wait_for(lambda: _try(c, "GET", "k"), timeout=10, what="reconnect") == b"v"
        assert sub.fresh and sub.poll() == []
    finally:
        sub.close()
        c.close()
        kill_server(srv)


def _try(c: wire.Client, *cmd):
    try:
        return c.call(*cmd)
    except wire.WireError:
        return None


def test_key_slot_matches_the_cluster_spec() -> None:
    assert wire.crc16(b"123456789") == 0x31C3  # the spec's reference value
    assert wire.key_slot("foo") == 12182
    assert wire.key_slot("{user1000}.following") == wire.key_slot("{user1000}.followers") == 3443
    assert wire.key_slot("foo{}{bar}") == wire.key_slot("foo{}{bar}")  # empty tag: whole key
    assert wire.key_slot("foo{}{bar}") != wire.key_slot("bar")
    assert wire.key_slot("foo{{bar}}zap") == wire.key_slot("{bar")
    assert wire.key_of(("EVALSHA", "sha", 1, "P:jobs:x", "a")) == "P:jobs:x"
    assert wire.key_of(("EVALSHA", "sha", 0, "a")) is None
    assert wire.key_of(("HSET", "P:jobs:x", "f", "v")) == "P:jobs:x"


def _free_port() -> int:
    """A free port whose cluster bus port (+10000) is free too and in range."""
    while True:
        port = random.randint(20000, 50000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


def test_cluster_routes_by_slot_and_follows_moved(tmp_path: Path) -> None:
    """Two real cluster nodes, half the slots each; a stale slot map meets MOVED."""
    binary = find_binary()
    ports, procs = [], []
    for i in range(2):
        port = _free_port()
        d = tmp_path / f"n{i}"
        d.mkdir()
        procs.append(subprocess.Popen([binary, "--port", str(port), "--cluster-enabled", "yes",
                                       "--cluster-config-file", str(d / "nodes.conf"), "--dir", str(d),
                                       "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=os.environ.copy()))
        ports.append(port)
    try:
        admin = [client_for(f"redis://127.0.0.1:{p}") for p in ports]
        wait_for(lambda: all(_try(a, "PING") for a in admin), what="nodes up")
        admin[0].call("CLUSTER", "ADDSLOTS", *range(0, 8192))  # ADDSLOTSRANGE is Redis 7+
        admin[1].call("CLUSTER", "ADDSLOTS", *range(8192, 16384))
        admin[0].call("CLUSTER", "MEET", "127.0.0.1", ports[1])
        wait_for(lambda: all(b"cluster_state:ok" in a.call("CLUSTER", "INFO") for a in admin),
                 timeout=20, what="cluster ok")
        c = client_for(f"redis+cluster://127.0.0.1:{ports[0]}")
        low, high = "a{x}", "b"  # slots 16287 (x) and 3300 (b): one on each node
        assert {wire.key_slot(low) >= 8192, wire.key_slot(high) >= 8192} == {True, False}
        assert c.pipeline([("SET", low, "1"), ("SET", high, "2")]) == [b"OK", b"OK"]
        assert c.call("GET", low) == b"1" and c.call("GET", high) == b"2"
        # A stale map sends everything to node 0: MOVED, refresh, retry.
        c._slots = [("127.0.0.1", ports[0])] * 16384
        assert c.call("GET", low if wire.key_slot(low) >= 8192 else high) in (b"1", b"2")
        assert c._slots[wire.key_slot(low)] != c._slots[wire.key_slot(high)]  # refreshed
        script = wire.script("return redis.call('GET', KEYS[1])")
        assert c.eval(script, [low], []) == b"1" and c.eval(script, [high], []) == b"2"
        for x in (c, *admin):
            x.close()
    finally:
        for p in procs:
            p.kill()
            p.wait(10)


def test_tcp_connections_go_without_the_socket_module(server: EmbeddedServer, prefix: str) -> None:
    """`_connect` (getaddrinfo, each address in turn, on `_socket`) as socket.create_connection."""
    proxy = TcpProxy(str(server.socket))
    try:
        c = client_for(f"redis://127.0.0.1:{proxy.port}", timeout=2.0)
        assert c.call("SET", f"{prefix}:tcp", "v") == b"OK" and c.call("GET", f"{prefix}:tcp") == b"v"
        conn = wire._connect(("127.0.0.1", proxy.port), 2.0)
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        conn.close()
        c.close()
    finally:
        proxy.close()
    closed = _closed_port()
    t = time.monotonic()
    with pytest.raises(wire.ConnectionLost, match="cannot connect"):
        client_for(f"redis://127.0.0.1:{closed}", timeout=2.0).call("PING")
    assert time.monotonic() - t < 2.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


# -- prctl without ctypes (core/procs.py) ----------------------------------------------------

_SUBREAPER = """
import os, sys, time
from gn_jobs_tui.core import procs
assert procs.become_subreaper(), "prctl failed"
r, w = os.pipe()
child = os.fork()
if child == 0:  # double fork: the grandchild is orphaned at once
    if os.fork() == 0:
        os.close(r)
        time.sleep(0.3)  # its parent has exited by now
        os.write(w, str(os.getppid()).encode())
        os._exit(0)
    os._exit(0)
os.close(w)
os.waitpid(child, 0)
ppid = os.read(r, 64).decode()
print(ppid == str(os.getpid()), "ctypes" in sys.modules)
"""


def test_the_supervisor_becomes_a_subreaper_without_ctypes() -> None:
    """Orphans of the job must re-parent to the supervisor (not init): the double-forked
    daemon tests depend on it. Done through `_ctypes`; `ctypes` stays unimported."""
    out = subprocess.run([sys.executable, "-c", _SUBREAPER], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_prctl_falls_back_on_ctypes_without_the_private_calls() -> None:
    """A Python whose `_ctypes` lacks call_function still gets a subreaper (through ctypes)."""
    code = "import _ctypes\ndel _ctypes.call_function\n" + _SUBREAPER
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.split() == ["True", "True"], out.stderr


def test_a_job_dies_with_its_supervisor() -> None:
    """die_with_parent (PR_SET_PDEATHSIG, set in the forked child): SIGKILL the parent and the
    kernel ends the child; the prctl call was resolved before the fork."""
    code = """
import subprocess, sys
from gn_jobs_tui.core import procs
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         preexec_fn=procs.die_with_parent)
print(child.pid, flush=True)
sys.stdin.read()
"""
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert core_procs.stat(child) is not None
        parent.kill()
        parent.wait(10)
        wait_for(lambda: (st := core_procs.stat(child)) is None or st[0] == "Z", timeout=5,
                 what="the child to die with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_freed_heap_goes_back_to_the_kernel() -> None:
    """release_free_memory (glibc malloc_trim, through _ctypes): heap freed in the middle of
    the heap, which free() alone keeps resident, leaves RSS."""
    if core_procs._MALLOC_TRIM is None:
        pytest.skip("this libc has no malloc_trim")
    code = """
import os, sys
from gn_jobs_tui.core import procs
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
blocks = [bytearray(64 * 1024) for _ in range(400)]  # 25 MB of heap (under the mmap threshold)
kept = blocks[::10]  # every tenth stays: the freed space is holes, not the heap's top
del blocks
before = rss()
released = procs.release_free_memory()
print(released, before - rss(), "ctypes" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         check=True)
    released, freed, ctypes_loaded = out.stdout.split()
    assert released == "True" and int(freed) > 10 * 2**20 and ctypes_loaded == "False", out.stdout
