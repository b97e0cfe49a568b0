"""Server URLs and prefixes: every malformed one is one line and the right exit code.

Exit 2 for bad usage (the URL or prefix itself), 1 for a server that cannot be
reached or is not a Redis server. Never a traceback, never a password.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from gn_jobs_tui.core.connection import Caps, UrlError, check_version, parse_url, validate_prefix
from gn_jobs_tui.core.server import EmbeddedServer
from tests.helpers import TcpProxy

SECRET = "s3cr3t-pw"


def gn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gn_jobs_tui", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def one_line(r: subprocess.CompletedProcess, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gn-jobs: "), r.stderr
    assert "Traceback" not in r.stderr and SECRET not in r.stderr + r.stdout
    return r.stderr


@pytest.mark.parametrize("url, says", [
    ("foo", "not a server URL"),
    ("", "empty"),
    ("   ", "empty"),
    (f"redis://u:{SECRET}@localhost:notaport", "bad port"),
    (f"redis://u:{SECRET}@localhost:99999", "out of range"),
    ("redis://localhost:0", "out of range"),
    ("redis://[::1", "unclosed"),
    ("http://localhost:80", "unknown URL scheme"),
    ("redis://localhost:6379/x", "database"),
    ("redis://localhost?nosuch=1", "unknown URL option"),
    ("redis+sentinel://h1:26379,h2:26380", "names its service"),
    ("redis+cluster://h1:7000/3", "only database 0"),
    ("unix://relative/path.sock", "absolute"),
])
def test_bad_urls_are_bad_usage_in_one_line(url: str, says: str) -> None:
    assert says in one_line(gn("--redis-url", url, "list"), 2)


def test_empty_or_bad_prefix_is_bad_usage() -> None:
    assert "prefix is empty" in one_line(gn("--prefix", "", "list"), 2)
    assert "bad key prefix" in one_line(gn("--prefix", "a b*", "list"), 2)
    assert "bad key prefix" in one_line(gn("--prefix", "x:", "list"), 2)


def test_unreachable_server_is_a_failure_in_one_line() -> None:
    err = one_line(gn("--redis-url", f"redis://u:{SECRET}@127.0.0.1:1", "list"), 1)
    assert "cannot reach" in err and "***" in err


@pytest.fixture
def http_port() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_an_http_server_is_not_a_redis_server(http_port: int) -> None:
    err = one_line(gn("--redis-url", f"redis://127.0.0.1:{http_port}", "list"), 1)
    assert "Redis protocol" in err or "cannot reach" in err


def test_tls_to_a_plain_server_is_one_line(server: EmbeddedServer) -> None:
    proxy = TcpProxy(str(server.socket))
    try:
        plain = gn("--redis-url", f"redis://127.0.0.1:{proxy.port}", "--prefix", "tls-t", "list")
        assert plain.returncode == 0, plain.stderr
        err = one_line(gn("--redis-url", f"rediss://u:{SECRET}@127.0.0.1:{proxy.port}", "list"), 1)
        assert "TLS" in err or "cannot reach" in err
    finally:
        proxy.close()


def test_empty_environment_variable_means_unset(tmp_path) -> None:
    state = str(tmp_path / "state")
    r = gn("--prefix", "env-t", "list", env={"GN_JOBS_REDIS_URL": "", "GN_JOBS_PREFIX": "",
                                            "XDG_STATE_HOME": state})
    try:
        assert r.returncode == 0, r.stderr  # the embedded default, not an error
    finally:
        EmbeddedServer(tmp_path / "state" / "gn-jobs" / "server").stop()


def test_url_forms_parse() -> None:
    t = parse_url("redis+sentinel://user:pw@h1:26379,[::1]:26380/mymaster/2")
    assert (t.kind, t.hosts, t.service, t.db, t.username, t.password) == \
        ("sentinel", (("h1", 26379), ("::1", 26380)), "mymaster", 2, "user", "pw")
    assert "pw" not in t.display and "pw" not in repr(t)
    c = parse_url("rediss+cluster://a:7000,b")
    assert (c.kind, c.tls, c.hosts) == ("cluster", True, (("a", 7000), ("b", 6379)))
    u = parse_url("unix://reader@/tmp/x%20y.sock?password=p&db=3")
    assert (u.path, u.username, u.password, u.db) == ("/tmp/x y.sock", "reader", "p", 3)
    assert parse_url("redis://[::1]:7001/1").hosts == (("::1", 7001),)
    assert validate_prefix("gn-uploader") == "gn-uploader" and validate_prefix("gn2") == "gn2"


def test_a_server_older_than_the_minimum_is_named() -> None:
    target = parse_url("redis://old:6379")
    with pytest.raises(UrlError, match=r"runs Redis 5\.0\.7; gn-jobs needs Redis 6\.0"):
        check_version(Caps(version=(5, 0, 7)), target)
    check_version(Caps(version=(6, 0, 0)), target)
    check_version(Caps(name="valkey", version=(7, 2, 0)), target)
