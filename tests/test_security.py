"""Security: a read-only ACL user, passwords never shown, the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.app import JobsApp
from gn_jobs_tui.ui.screens.audit import AuditScreen
from tests.conftest import wait_for
from tests.helpers import run_async


def gn(url: str, prefix: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gn_jobs_tui", "--redis-url", url, "--prefix",
                           prefix, *args], capture_output=True, text=True, timeout=60,
                          env=os.environ.copy())


def user_url(server: EmbeddedServer, user: str, password: str) -> str:
    return f"unix://{user}@{server.socket}?password={password}"


@pytest.fixture
def reader(server: EmbeddedServer, prefix: str):
    """An ACL user that may only read (and subscribe): writes are refused by Redis."""
    name, password = f"reader{uuid.uuid4().hex[:6]}", "Rd-" + uuid.uuid4().hex
    admin = server.client()
    probe = Store(admin, "probe")
    scripts = ("+evalsha_ro", "+eval_ro") if probe.detect().eval_ro else ("+evalsha", "+eval")
    admin.execute_command("ACL", "SETUSER", name, "reset", "resetchannels", "on", f">{password}",
                          "~*", "&*", "+@read", "+@connection", "+subscribe", "+psubscribe",
                          "+unsubscribe", "+punsubscribe", *scripts)
    admin.execute_command("ACL", "LOG", "RESET")
    yield user_url(server, name, password), password
    admin.execute_command("ACL", "DELUSER", name)


def test_read_only_works_with_a_read_only_acl_user(reader, server: EmbeddedServer,
                                                   config: Config, store: Store) -> None:
    url, _ = reader
    job_id = launch(store, config, "sleep", {"seconds": "0.3"}, user="ro")
    wait_for(lambda: store.get_job(job_id).is_terminal, what="finish")
    for args in (["list", "--json"], ["show", job_id], ["logs", job_id], ["show", job_id, "--json"]):
        r = gn(url, config.prefix, "--read-only", *args)
        assert r.returncode == 0, (args, r.stderr)
    assert json.loads(gn(url, config.prefix, "--read-only", "list", "--json").stdout)[0]["job_id"] \
        == job_id

    async def console() -> None:
        app = JobsApp(Config(url, config.prefix, read_only=True))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.2)
            deadline = time.monotonic() + 15
            while not (app.loaded_all and app.index.jobs) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert job_id in app.index.jobs and app.link_state and app.link_state[0]
            await pilot.press("enter")
            await pilot.pause(1.0)
            await pilot.press("escape", "a")
            await pilot.pause(0.5)

    run_async(console())
    denied = server.client().execute_command("ACL", "LOG")
    # Nothing that writes was tried; the refusals allowed are the read-only probes
    # whose answers we use: INFO ("memory unknown") and TIME (our own clock instead).
    assert {e[b"object"] for e in denied} <= {b"info", b"time"}, denied
    # Without --read-only, a write is refused by Redis and reported in one line.
    r = gn(url, config.prefix, "kill", job_id)
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_password_appears_nowhere(server: EmbeddedServer, prefix: str, state_path: Path) -> None:
    secret = "S3cret-" + uuid.uuid4().hex
    name = f"admin{uuid.uuid4().hex[:6]}"
    server.client().execute_command("ACL", "SETUSER", name, "on", f">{secret}", "~*", "&*", "+@all")
    url = user_url(server, name, secret)
    seen: list[str] = []
    r = gn(url, prefix, "launch", "sleep", "-p", "seconds=1", "--json")
    seen += [r.stdout, r.stderr]
    job_id = json.loads(r.stdout)["job_id"]
    store = Store.from_url(url, prefix)
    job = wait_for(lambda: (j := store.get_job(job_id)) and j.extra.get("supervisor_pid") and j,
                   what="supervisor")
    sup = psutil.Process(int(job.extra["supervisor_pid"]))
    seen.append(" ".join(sup.cmdline()))  # ps shows no password
    wait_for(lambda: store.get_job(job_id).is_terminal, what="finish")
    for args in (["list", "--json"], ["show", job_id, "--json"], ["show", job_id],
                 ["show", "nosuchjob"], ["logs", job_id], ["kill", job_id], ["audit", "--json"]):
        r = gn(url, prefix, *args)
        seen += [r.stdout, r.stderr]
    bad = user_url(server, name, secret + "x")
    r = gn(bad, prefix, "list")
    assert r.returncode == 1
    seen += [r.stdout, r.stderr]
    seen += [p.read_text(errors="replace") for p in (state_path / "gn-jobs" / "logs").glob("*.log")]

    async def console() -> list[str]:
        texts = []
        for u in (url, bad):
            app = JobsApp(Config(u, prefix), server_label=None)
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause(1.5)
                texts.append(app.export_screenshot())
        return texts

    seen += run_async(console())
    assert all(secret not in text for text in seen)
    assert any("***" in text for text in seen)  # the URL is shown, with its password hidden
    control.kill(store, job_id)


def test_admin_actions_are_audited_and_shown(config: Config, store: Store) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "30"}, user="audited")
    wait_for(lambda: store.get_job(job_id).status == "running", what="running")
    control.kill(store, job_id, "console")
    wait_for(lambda: store.get_job(job_id).is_terminal, what="killed")
    new = control.retry(store, config, job_id).job_id
    control.kill(store, new)
    rows = store.audit_log()
    assert [r["action"] for r in rows][:4] == ["kill", "retry", "kill", "launch"]
    assert all(r["by_user"] and r["by_host"] and float(r["at"]) > 0 for r in rows)

    async def console() -> str:
        app = JobsApp(config)
        async with app.run_test(size=(120, 30)) as pilot:
            while not app.loaded_all:
                await pilot.pause(0.05)
            await pilot.press("a")
            await pilot.pause(0.8)
            assert isinstance(app.screen, AuditScreen)
            return app.export_screenshot()  # what is on screen

    text = run_async(console())
    assert "retry" in text and "launch" in text and job_id[:8] in text
