"""The `gn-jobs` command: the console (no sub-command) and scriptable sub-commands.

Exit codes: 0 ok, 1 the operation failed (server unreachable or refusing,
no such job), 2 bad usage (a malformed URL, prefix or parameter). Expected
failures print one line on stderr, no traceback; passwords never appear.

Only click and light modules are imported at start: redis-py, Rich and
Textual load inside the commands that use them, so `--help` stays instant.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from gn_jobs_tui.core.config import Config
    from gn_jobs_tui.core.store import Store

# The same names as core.config's and core.keys' (not imported here: --help stays instant).
ENV_URL = "GN_JOBS_REDIS_URL"
ENV_PREFIX = "GN_JOBS_PREFIX"
DEFAULT_PREFIX = "gn-uploader"


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
            from gn_jobs_tui.core.config import resolve

            self._config = resolve(self._url, self._prefix, self.read_only)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from gn_jobs_tui.core.spool import replay_pending
            from gn_jobs_tui.core.store import Store

            store = Store.from_url(self.config.url, self.config.prefix, self.read_only)
            store.detect()
            self._store = store
            replay_pending(self.config.url, self.config.prefix, self.read_only)  # supervisors' spool
        return self._store

    def refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise Failure(f"read-only mode: {what} is not allowed")


def _one_line(exc: BaseException, ctx: Ctx | None) -> Failure:
    """Any failure as one line with the right exit code (and never a password)."""
    from gn_jobs_tui.core.connection import ServerTooOld, UrlError
    from gn_jobs_tui.core.jobtypes import ParamError
    from gn_jobs_tui.core.redact import redact_text

    url = ctx._url if ctx else None
    target = ctx.config.target if ctx and ctx._config else None
    if isinstance(exc, ServerTooOld):
        return Failure(redact_text(str(exc), url))
    if isinstance(exc, UrlError):
        return BadUsage(redact_text(str(exc), url))
    if isinstance(exc, ParamError):
        return BadUsage(f"bad parameters: {exc}")
    if isinstance(exc, KeyError):
        return BadUsage(str(exc.args[0]) if exc.args else str(exc))
    from gn_jobs_tui.core import errors
    from gn_jobs_tui.core.connection import describe_error
    from gn_jobs_tui.core.server import ServerError
    from gn_jobs_tui.core.store import StoreError

    if isinstance(exc, (*errors.any_redis(), OSError)):
        return Failure(redact_text(describe_error(exc, target), url))
    if isinstance(exc, (StoreError, ServerError)):
        return Failure(redact_text(str(exc), url))
    raise exc


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one clear line (and never echo a password)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: Ctx | None = click.get_current_context().find_object(Ctx)
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - classified below; unknown ones re-raised
            raise _one_line(exc, ctx) from None

    return wrapper


def _given(ctx: click.Context, name: str, value: str | None) -> str | None:
    """What the user typed for an option (None when it came from a default)."""
    source = ctx.get_parameter_source(name)
    if source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
        return value
    return None


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar=ENV_URL, help="redis://, rediss://, unix://, "
              "redis+sentinel://host:port[,host:port]/service or redis+cluster://host:port "
              f"(env {ENV_URL}); default: the embedded server.")
@click.option("--prefix", envvar=ENV_PREFIX, default=None,
              help=f"Key prefix (env {ENV_PREFIX}; default {DEFAULT_PREFIX}).")
@click.option("--read-only", is_flag=True, help="Refuse every write; the console offers none.")
@click.option("--user", "user", default=None, help="Console: show only this user's jobs.")
@click.version_option(package_name="gn-jobs-tui")
@click.pass_context
@friendly
def main(ctx: click.Context, redis_url: str | None, prefix: str | None, read_only: bool,
         user: str | None) -> None:
    """Watch, launch, kill and retry gn-uploader background jobs tracked in Redis.

    With no sub-command, opens the console.
    """
    url = _given(ctx, "redis_url", redis_url)
    if ctx.get_parameter_source("redis_url") == click.core.ParameterSource.ENVIRONMENT and not url:
        url = None  # an empty variable is an unset one
    given_prefix = _given(ctx, "prefix", prefix)
    if ctx.get_parameter_source("prefix") == click.core.ParameterSource.ENVIRONMENT \
            and not given_prefix:
        given_prefix = None
    if url is not None:
        from gn_jobs_tui.core.connection import parse_url

        parse_url(url)  # a malformed URL is bad usage before anything else happens
    if given_prefix is not None:
        from gn_jobs_tui.core.connection import validate_prefix

        validate_prefix(given_prefix)
    ctx.obj = Ctx(url, given_prefix, read_only)
    if ctx.invoked_subcommand is None:
        from gn_jobs_tui.ui.app import JobsApp

        obj: Ctx = ctx.obj
        obj.store  # noqa: B018 - fail here, in one line, if the server is unreachable
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
    from gn_jobs_tui.core import launcher
    from gn_jobs_tui.core.jobtypes import registry

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
@click.option("--all-sources", is_flag=True, help="With --status: also search jobs that only "
              "other producers' per-user indexes list, or that no index lists (a key-space SCAN).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@friendly
def list_cmd(obj: Ctx, user: str | None, status: str | None, limit: int, all_sources: bool,
             as_json: bool) -> None:
    """List jobs, newest first (indexed, per-user and unindexed jobs alike).

    --status reads this project's status indexes when they cover every indexed
    job (the same cost at a million jobs as at a thousand); add --all-sources
    to search other producers' unindexed or per-user-only jobs as well.
    """
    from gn_jobs_tui.core import lookup

    jobs = lookup.listing(obj.store, user=user, status=status, limit=limit,
                          all_sources_too=all_sources)
    from gn_jobs_tui import render

    if as_json:
        # One JSON shape for `list` and `show`: every field of each job, read in full.
        full = obj.store.get_jobs_full(jobs)
        click.echo(json.dumps([render.job_json(j) for j in full], indent=1))
        return
    render.print_list(jobs, time.time())


def _read_detail(store: Store, job: Any) -> tuple[Any, list[Any]]:
    """The job's output and children, read completely (paged)."""
    from gn_jobs_tui.core.outputs import KeyState, output_from_fields

    output = KeyState(store.keys.output(job.job_id))
    children = [KeyState(k) for k in job.children]
    store.read_all([output, *children])
    if output.kind == "none":
        output = output_from_fields(job) or output
    return output, children


def _get(store: Store, job_id: str) -> Any:
    from gn_jobs_tui.core import lookup
    from gn_jobs_tui.core.store import StoreError

    try:
        return lookup.find(store, job_id)
    except StoreError as exc:
        raise Failure(str(exc)) from None


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
    from gn_jobs_tui.core.outputs import KeyState, field_lines
    from gn_jobs_tui.processors.base import entry_line, entry_text

    store = obj.store
    job = _get(store, job_id)
    state = KeyState(store.keys.output(job.job_id), sink=[])
    fields_printed = 0
    finishing = False
    while True:
        while True:  # a batch at a time: memory stays bounded however long the output
            store.read_keys([state])
            batch, state.sink = state.sink or [], []
            for entry in batch:
                click.echo(entry_text(entry) if raw else entry_line(entry).plain)
            if len(batch) < 2000:
                break
        if state.kind == "none":
            # Other producers keep output in the hash (`stdout`, `stderr`), growing in place.
            lines = field_lines(job)
            for entry in lines[fields_printed:]:
                click.echo(entry_text(entry) if raw else entry_line(entry).plain)
            fields_printed = max(fields_printed, len(lines))
        if not follow or finishing:
            return
        current = store.get_job(job.job_id)
        if current is None:
            return
        job = current
        if current.is_terminal:
            finishing = True  # one more pass for what was written as it ended
            continue
        time.sleep(0.3)


def _act(obj: Ctx, job_id: str, fn: Callable[[Store, str], Any]) -> None:
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
    from gn_jobs_tui.core import control

    obj.refuse_if_read_only("kill")
    _act(obj, job_id, lambda s, j: control.kill(s, j, "cli"))


@main.command()
@click.argument("job_id")
@pass_ctx
@friendly
def retry(obj: Ctx, job_id: str) -> None:
    """Run a failed, killed or lost job again (one new job, however many retry)."""
    from gn_jobs_tui.core import control

    obj.refuse_if_read_only("retry")
    _act(obj, job_id, lambda s, j: control.retry(s, obj.config, j))


@main.command()
@click.option("--json", "as_json", is_flag=True)
def types(as_json: bool) -> None:
    """The registered job types and their parameters."""
    from gn_jobs_tui.core.jobtypes import registry

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
    from gn_jobs_tui.core.text import visible
    from gn_jobs_tui.processors.base import fmt_time

    rows = obj.store.audit_log(count)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        try:
            when = fmt_time(float(r.get("at") or 0))
        except ValueError:
            when = "?"
        click.echo(visible(f"{when}  {r.get('by_user')}@{r.get('by_host')}  {r.get('action'):8} "
                           f"{r.get('job_id', '')[:8]}  {r.get('detail', '')}", newlines=False))


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


@main.command()
@pass_ctx
@friendly
def reindex(obj: Ctx) -> None:
    """File every job in the id and status indexes (jobs written before they existed)."""
    from gn_jobs_tui.core import lookup

    obj.refuse_if_read_only("reindex")
    click.echo(f"indexed {lookup.reindex(obj.store)} jobs")


@main.group()
def server() -> None:
    """The server: its health and capabilities; start/stop the embedded one."""


@server.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@friendly
def server_status(obj: Ctx, as_json: bool) -> None:
    """Version, topology, what this user may do, and risks to the data (eviction, memory)."""
    from gn_jobs_tui.core.server import EmbeddedServer

    info: dict[str, Any] = {}
    if obj._url is None and not __import__("os").environ.get(ENV_URL):
        info.update(EmbeddedServer.default().status())
        if not info["running"]:
            for k, v in info.items():
                click.echo(f"{k}: {v}")
            sys.exit(1)
    store = obj.store
    caps = store.caps
    try:
        scripting = _probe_scripts(store)
    except Exception:  # noqa: BLE001 - a probe: any refusal means "no scripts"
        scripting = False
    caps.scripting = caps.scripting and scripting
    info.update(server=obj.config.display_url, version=caps.label,
                topology="cluster" if caps.cluster else store.target.kind if store.target else "",
                maxmemory=caps.maxmemory, maxmemory_policy=caps.policy or "unknown",
                used_memory=caps.used_memory, warnings=caps.warnings(),
                degradations=caps.degradations())
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    for k, v in info.items():
        if isinstance(v, list):
            v = "; ".join(v) or "none"
        click.echo(f"{k}: {v}")


def _probe_scripts(store: Store) -> bool:
    """Can this user run our read scripts? (A tiny read-only script, run once.)"""
    from gn_jobs_tui.core import errors
    from gn_jobs_tui.core.scripts import ReadScript

    try:
        ReadScript("return 1")(store.client, [], [], ro=store.caps.eval_ro)
    except errors.reply():
        return False
    return True


@server.command("stop")
@friendly
def server_stop() -> None:
    """Stop the embedded server (jobs running on it lose their server)."""
    from gn_jobs_tui.core.server import EmbeddedServer

    if EmbeddedServer.default().stop():
        click.echo("embedded server stopped")
    else:
        click.echo("embedded server was not running")


@server.command("start")
@friendly
def server_start() -> None:
    """Start the embedded server (every command does this when it needs to)."""
    from gn_jobs_tui.core.server import EmbeddedServer

    click.echo(EmbeddedServer.default().ensure())
