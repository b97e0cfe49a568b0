"""The `gn-jobs` command: the console (no sub-command) and scriptable sub-commands.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage. Expected failures
(server unreachable, no such job, read-only) print one line on stderr, no
traceback; passwords in URLs are never printed.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
import redis

from gn_jobs_tui.core import control, launcher
from gn_jobs_tui.core.config import ENV_PREFIX, ENV_URL, Config, resolve
from gn_jobs_tui.core.jobtypes import ParamError, registry
from gn_jobs_tui.core.keys import DEFAULT_PREFIX
from gn_jobs_tui.core.outputs import KeyState
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.core.server import EmbeddedServer, ServerError
from gn_jobs_tui.core.store import Store, StoreError
from gn_jobs_tui.processors.base import entry_line, entry_text, fmt_time


class Failure(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"gn-jobs: {self.format_message()}", err=True)


class BadUsage(Failure):
    exit_code = 2


class Ctx:
    """Lazily resolved connection, so `types` or `--help` start no server."""

    def __init__(self, url: str | None, prefix: str | None, read_only: bool) -> None:
        self._url, self._prefix, self.read_only = url, prefix, read_only
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = resolve(self._url, self._prefix, self.read_only)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_url(self.config.url, self.config.prefix, self.read_only)
        return self._store

    def refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise Failure(f"read-only mode: {what} is not allowed")


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one clear line (and never echo a password)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: Ctx | None = click.get_current_context().find_object(Ctx)
        url = ctx._url if ctx else None
        try:
            return fn(*args, **kwargs)
        except ParamError as exc:
            raise BadUsage(f"bad parameters: {exc}") from None
        except KeyError as exc:
            raise BadUsage(str(exc.args[0]) if exc.args else str(exc)) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            where = ctx.config.display_url if ctx and ctx._config else "the server"
            raise Failure(redact_text(f"cannot reach {where}: {exc}", url)) from None
        except redis.ResponseError as exc:
            raise Failure(redact_text(f"server refused: {exc}", url)) from None
        except (StoreError, ServerError) as exc:
            raise Failure(redact_text(str(exc), url)) from None

    return wrapper


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar=ENV_URL, help="redis://, rediss:// or unix:// URL "
              f"(env {ENV_URL}); default: the embedded server.")
@click.option("--prefix", envvar=ENV_PREFIX, default=DEFAULT_PREFIX, show_default=True,
              help=f"Key prefix (env {ENV_PREFIX}).")
@click.option("--read-only", is_flag=True, help="Refuse every write; the console offers none.")
@click.option("--user", "user", default=None, help="Console: show only this user's jobs.")
@click.version_option(package_name="gn-jobs-tui")
@click.pass_context
@friendly
def main(ctx: click.Context, redis_url: str | None, prefix: str, read_only: bool,
         user: str | None) -> None:
    """Watch, launch, kill and retry gn-uploader background jobs tracked in Redis.

    With no sub-command, opens the console.
    """
    ctx.obj = Ctx(redis_url, prefix, read_only)
    if ctx.invoked_subcommand is None:
        from gn_jobs_tui.ui.app import JobsApp

        obj: Ctx = ctx.obj
        JobsApp(obj.config, user=user).run()


pass_ctx = click.make_pass_decorator(Ctx)


def parse_params(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise BadUsage(f"--param takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if not key:
            raise BadUsage(f"--param takes KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


@main.command()
@click.argument("job_type")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of the job type (repeatable).")
@click.option("--user", default=None, help="Whose job it is (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@friendly
def launch(obj: Ctx, job_type: str, params: tuple[str, ...], user: str | None,
           as_json: bool) -> None:
    """Start a job of a registered type, detached."""
    obj.refuse_if_read_only("launch")
    raw = parse_params(params)
    jt = registry().get(job_type)
    jt.validate(raw)  # bad input fails before any server is started
    job_id = launcher.launch(obj.store, obj.config, job_type, raw, user)
    click.echo(json.dumps({"job_id": job_id}) if as_json else job_id)


STATUS_CHOICES = ["queued", "running", "completed", "failed", "killed", "lost"]


@main.command(name="list")
@click.option("--user", default=None, help="Only this user's jobs.")
@click.option("--status", type=click.Choice(STATUS_CHOICES), default=None)
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most N jobs (0: all).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@friendly
def list_cmd(obj: Ctx, user: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    store = obj.store
    jobs = []
    for page in store.iter_jobs(user):
        for job in page:
            if job.is_lost:
                store.mark_lost(job.job_id)
            if status and job.effective_status != status:
                continue
            jobs.append(job)
        if limit and len(jobs) >= limit:
            break
    if limit:
        jobs = jobs[:limit]
    from gn_jobs_tui import render

    if as_json:
        click.echo(json.dumps(render.list_json(jobs), indent=1))
        return
    render.print_list(jobs, time.time())


def _read_detail(store: Store, job: Any) -> tuple[KeyState, list[KeyState]]:
    output = KeyState(store.keys.output(job.job_id))
    children = [KeyState(k) for k in job.children]
    store.read_keys([output, *children])
    return output, children


def _get(store: Store, job_id: str) -> Any:
    job = store.get_job(job_id)
    if job is None:
        # Accept a short id: the first 8 characters.
        matches = [j for page in store.iter_jobs() for j in page if j.job_id.startswith(job_id)]
        if len(matches) == 1:
            job = store.get_job(matches[0].job_id)
        elif len(matches) > 1:
            raise Failure(f"ambiguous job id {job_id!r}: {len(matches)} jobs match")
    if job is None:
        raise Failure(f"no such job: {job_id}")
    return job


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@friendly
def show(obj: Ctx, job_id: str, as_json: bool) -> None:
    """One job: its fields, children and the processor's view."""
    job = _get(obj.store, job_id)
    output, children = _read_detail(obj.store, job)
    from gn_jobs_tui import render

    if as_json:
        click.echo(json.dumps(render.job_json(job, output=output, children=children), indent=1))
        return
    render.print_show(job, output, children, time.time())


@main.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.option("--raw", is_flag=True, help="The bytes as the job wrote them, control "
              "sequences included (for files and pipes); by default they are shown as ^[.")
@pass_ctx
@friendly
def logs(obj: Ctx, job_id: str, follow: bool, raw: bool) -> None:
    """Print a job's output; --follow keeps printing new lines."""
    store = obj.store
    job = _get(store, job_id)
    state = KeyState(store.keys.output(job.job_id))
    printed = 0
    while True:
        store.read_keys([state])
        new = state.seen - printed
        for entry in list(state.tail)[-new:] if new > 0 else []:
            click.echo(entry_text(entry) if raw else entry_line(entry).plain)
        printed = state.seen
        if not follow:
            return
        current = store.get_job(job.job_id)
        if current is None or current.is_terminal:
            store.read_keys([state])
            if state.seen == printed:
                return
            continue
        time.sleep(0.3)


def _act(obj: Ctx, job_id: str, fn: Callable[[Store, str], control.Outcome]) -> None:
    job = _get(obj.store, job_id)
    outcome = fn(obj.store, job.job_id)
    click.echo(outcome.message)
    if outcome.changed and outcome.job_id and outcome.job_id != job.job_id:
        click.echo(outcome.job_id)


@main.command()
@click.argument("job_id")
@pass_ctx
@friendly
def kill(obj: Ctx, job_id: str) -> None:
    """Ask a job's supervisor (on any host) to stop it."""
    obj.refuse_if_read_only("kill")
    _act(obj, job_id, lambda s, j: control.kill(s, j, "cli"))


@main.command()
@click.argument("job_id")
@pass_ctx
@friendly
def retry(obj: Ctx, job_id: str) -> None:
    """Run a failed, killed or lost job again (one new job, however many retry)."""
    obj.refuse_if_read_only("retry")
    _act(obj, job_id, lambda s, j: control.retry(s, obj.config, j))


@main.command()
@click.option("--json", "as_json", is_flag=True)
def types(as_json: bool) -> None:
    """The registered job types and their parameters."""
    reg = registry()
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in reg.all()], indent=1))
        return
    for jt in reg.all():
        click.echo(f"{jt.name}: {jt.description}")
        for p in jt.params:
            extra = " (required)" if p.required else f" (default {p.default!r})"
            choices = f" [{', '.join(p.choices)}]" if p.choices else ""
            click.echo(f"    {p.name} <{p.kind}>{choices}{extra}  {p.help}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise BadUsage(f"bad duration {text!r}: use e.g. 90s, 30m, 12h, 7d")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m[2]]


@main.command()
@click.option("--older-than", required=True, help="e.g. 7d, 12h, 30m.")
@pass_ctx
@friendly
def cleanup(obj: Ctx, older_than: str) -> None:
    """Remove finished jobs older than a retention period, with their keys."""
    seconds = parse_duration(older_than)
    obj.refuse_if_read_only("cleanup")
    click.echo(f"removed {obj.store.cleanup(seconds)} jobs")


@main.command()
@click.option("--count", default=50, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@friendly
def audit(obj: Ctx, count: int, as_json: bool) -> None:
    """Admin actions (launch, kill, retry, cleanup): who, what, when."""
    rows = obj.store.audit_log(count)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        when = fmt_time(float(r.get("at") or 0))
        click.echo(f"{when}  {r.get('by_user')}@{r.get('by_host')}  {r.get('action'):8} "
                   f"{r.get('job_id', '')[:8]}  {r.get('detail', '')}")


@main.command()
@click.option("--no-console", is_flag=True, help="Only launch the demo jobs.")
@pass_ctx
@friendly
def demo(obj: Ctx, no_console: bool) -> None:
    """Write sample files with planted errors and launch real jobs to watch."""
    obj.refuse_if_read_only("demo")
    from gn_jobs_tui.jobs.demo import run_demo

    ids = run_demo(obj.store, obj.config)
    click.echo(f"launched {len(ids)} demo jobs on {obj.config.display_url}")
    if not no_console:
        from gn_jobs_tui.ui.app import JobsApp

        JobsApp(obj.config).run()


@main.group()
def server() -> None:
    """The embedded server (used when no --redis-url is named)."""


@server.command("status")
@click.option("--json", "as_json", is_flag=True)
@friendly
def server_status(as_json: bool) -> None:
    info = EmbeddedServer.default().status()
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    for k, v in info.items():
        click.echo(f"{k}: {v}")
    if not info["running"]:
        sys.exit(1)


@server.command("stop")
@friendly
def server_stop() -> None:
    if EmbeddedServer.default().stop():
        click.echo("embedded server stopped")
    else:
        click.echo("embedded server was not running")


@server.command("start")
@friendly
def server_start() -> None:
    click.echo(EmbeddedServer.default().ensure())
