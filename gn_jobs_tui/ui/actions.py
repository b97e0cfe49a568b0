"""What the console does to jobs: launch, kill, retry, bulk actions, clean-up, copy.

Every write asks first (the confirmation says what will happen, how many
jobs, and shows a sample), then runs in a thread worker through the core
(`control`, `launcher`, `Store.cleanup`, which audits), and reports once:
one line for one job, a summary for many. Selecting jobs over a filter of a
million rows also runs in a worker, so no key press waits on it.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.worker import get_current_worker

from gn_jobs_tui.core import control
from gn_jobs_tui.core.jobtypes import registry
from gn_jobs_tui.core.keys import DEFAULT_PREFIX, RETRYABLE_STATUSES, TERMINAL_STATUSES
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.core.text import plural
from gn_jobs_tui.ui.messages import ActionDone, Found, Selected
from gn_jobs_tui.ui.rows import Row
from gn_jobs_tui.ui.screens.dialogs import AskScreen, ConfirmScreen
from gn_jobs_tui.ui.screens.launcher import LauncherScreen, LaunchRequest
from gn_jobs_tui.ui.timefmt import age_text, parse_age

if TYPE_CHECKING:
    from gn_jobs_tui.ui.app import JobsApp

#: A job as the actions see it: a table row, or the drill-down's full job.
Target = Row | Job
SAMPLE = 5
#: Bulk retries start a supervisor each: this many at most per confirmation.
RETRY_LIMIT = 500
PROGRESS_EVERY = 2.0


def sample(jobs: list[Target]) -> str:
    """The first few jobs of a selection, one per line, and how many more."""
    lines = [f"  {j.short_id}  {j.job_type}  {j.user_id}  {j.effective_status}"
             for j in jobs[:SAMPLE]]
    if len(jobs) > SAMPLE:
        lines.append(f"  … and {len(jobs) - SAMPLE:,} more")
    return "\n".join(lines)


def show_command(job_id: str, prefix: str) -> str:
    """The `gn-jobs show` line for a job; never with the server URL (it may hold a password)."""
    extra = "" if prefix == DEFAULT_PREFIX else f" --prefix {prefix}"
    return f"gn-jobs{extra} show {job_id}"


def killable(job: Target) -> bool:
    return job.effective_status not in TERMINAL_STATUSES


def retryable(job: Target) -> bool:
    return job.effective_status in RETRYABLE_STATUSES and not job.retried_by


class Actions:
    """The asking, the doing and the reporting of actions, for one JobsApp."""

    def __init__(self, app: JobsApp) -> None:
        self.app = app
        self.config = app.config
        self._sync_store: Store | None = None
        self._cleanup_age = 0.0

    @property
    def sync_store(self) -> Store:
        """A blocking store, used only from thread workers."""
        if self._sync_store is None:
            self._sync_store = Store.from_url(self.config.url, self.config.prefix,
                                              self.config.read_only)
        return self._sync_store

    def notify(self, text: str, *, severity: SeverityLevel = "information",
               timeout: float | None = None) -> None:
        self.app.notify(text, severity=severity, timeout=timeout)

    def post(self, message: Message) -> None:
        self.app.post_message(message)

    def refuse_if_read_only(self, what: str) -> bool:
        if self.config.read_only:
            self.notify(f"read-only mode: {what} is not offered (started with --read-only)",
                        severity="warning")
            return True
        return False

    def safe(self, exc: BaseException) -> str:
        return redact_text(str(exc) or type(exc).__name__, self.config.url)

    # -- launch --------------------------------------------------------------------
    def ask_launch(self) -> None:
        if self.refuse_if_read_only("launch"):
            return

        def submitted(req: LaunchRequest | None) -> None:
            if req is not None:
                self.app.run_worker(lambda: self._launch(req), name="launch", thread=True,
                                    group="actions")

        current = self.app.current_job()
        self.app.push_screen(LauncherScreen(registry(), current.job_type if current else None),
                         submitted)

    def _launch(self, req: LaunchRequest) -> None:
        try:
            job_id = launch(self.sync_store, self.config, req.job_type, req.params, req.user)
        except Exception as exc:  # noqa: BLE001 - every failure is shown, none swallowed
            self.post(ActionDone(f"launch failed: {self.safe(exc)}", error=True))
            return
        self.post(ActionDone(f"launched {req.job_type} {job_id[:8]}", select=job_id))

    # -- kill and retry -----------------------------------------------------------
    def ask_kill(self, jobs: list[Target], *, scope: str = "") -> None:
        if self.refuse_if_read_only("kill") or not jobs:
            return
        live = [j for j in jobs if killable(j)]
        if not live:
            self.notify("nothing to kill: " + ("no running job matches" if scope else
                        "the selected jobs have finished"), severity="warning")
            return
        body = Text(f"Kill {plural(len(live), 'job')}{scope}?\n\n{sample(live)}\n\n")
        body.append("Each job's supervisor, on its own host, sends SIGTERM to the job's whole "
                    "process group, then SIGKILL after the grace period.", style="dim")
        self.app.push_screen(ConfirmScreen(f"Kill {plural(len(live), 'job')}", body, "Kill"),
                         lambda yes: self.run_admin("kill", live) if yes else None)

    def ask_retry(self, jobs: list[Target], *, scope: str = "") -> None:
        if self.refuse_if_read_only("retry") or not jobs:
            return
        ok = [j for j in jobs if retryable(j)]
        if not ok:
            self.notify("nothing to retry: only failed, killed or lost jobs not retried yet "
                        "can be retried", severity="warning")
            return
        over = len(ok) - RETRY_LIMIT
        ok = ok[:RETRY_LIMIT]
        body = Text(f"Retry {plural(len(ok), 'job')}{scope}?\n\n{sample(ok)}\n\n")
        if over > 0:
            body.append(f"Only the first {RETRY_LIMIT:,} are retried now ({over:,} left): "
                        "each starts a supervisor.\n", style="yellow")
        body.append("A new job of the same type, with the same parameters and user, starts for "
                    "each (attempt + 1). Already retried jobs are not run twice.", style="dim")
        self.app.push_screen(ConfirmScreen(f"Retry {plural(len(ok), 'job')}", body, "Retry"),
                         lambda yes: self.run_admin("retry", ok) if yes else None)

    def run_admin(self, verb: str, jobs: list[Target]) -> None:
        self.app.run_worker(lambda: self._admin(verb, jobs), thread=True, group="actions")

    def _admin(self, verb: str, jobs: list[Target]) -> None:
        """Kill or retry each job through the core; one report for one job, a summary for many."""
        done, failed, last_note = 0, [], time.monotonic()
        select: str | None = None
        worker = get_current_worker()
        for i, job in enumerate(jobs):
            if worker.is_cancelled:
                break
            try:
                if verb == "kill":
                    outcome = control.kill(self.sync_store, job.job_id, "console")
                else:
                    outcome = control.retry(self.sync_store, self.config, job.job_id)
                    select = outcome.job_id
                done += 1
                if len(jobs) == 1:
                    self.post(ActionDone(outcome.message, select=select))
                    return
            except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
                failed.append(f"{job.short_id}: {self.safe(exc)}")
                if len(jobs) == 1:
                    self.post(ActionDone(f"{verb} {job.short_id} failed: {failed[-1]}",
                                                 error=True))
                    return
            if time.monotonic() - last_note > PROGRESS_EVERY:
                last_note = time.monotonic()
                self.post(ActionDone(f"{verb}: {i + 1:,} of {len(jobs):,} done…"))
        past = "kill requested for" if verb == "kill" else "retried"
        text = f"{past} {plural(done, 'job')}"
        if failed:
            text += f"; {len(failed)} failed: " + "; ".join(failed[:3])
        self.post(ActionDone(text, error=bool(failed),
                                     select=select if done == 1 else None))

    # -- over a filter ----------------------------------------------------------------
    def select_matching(self, what: str) -> None:
        """Pick the jobs the filter shows (in a worker: a million rows take a while)."""
        if what != "mark" and self.refuse_if_read_only(f"{what} over a filter"):
            return
        if self.app.index.building is not None:
            self.notify("the filter is still being applied: try again in a moment",
                        severity="warning")
            return
        jobs, reverse = self.app.index.order[:], self.app.index.view.reverse
        self.app.run_worker(lambda: self._pick(what, jobs, reverse), thread=True,
                            exclusive=True, group="select")

    def _pick(self, what: str, jobs: list[Target], reverse: bool) -> None:
        if what == "cleanup":
            jobs = [j for j in jobs if j.effective_status in TERMINAL_STATUSES or j.is_missing]
        elif what == "kill":
            jobs = [j for j in jobs if killable(j)]
        elif what == "retry":
            jobs = [j for j in jobs if j.effective_status in ("failed", "lost")
                    and not j.retried_by]
        if reverse:
            jobs.reverse()  # table order
        self.post(Selected(what, jobs))

    def selected(self, message: Selected) -> None:
        scope = " (all that match the filter)" if self.app.index.view.filtered else " (all jobs)"
        main = self.app.main_screen()
        if message.what == "mark":
            if main is None:
                return
            ids = {j.job_id for j in message.jobs}
            table = main.table
            if ids and ids <= table.marked:
                table.marked -= ids
                self.notify(f"unmarked {plural(len(ids), 'job')}")
            else:
                table.marked |= ids
                self.notify(f"marked {plural(len(ids), 'job')}{scope}; k/r act on marked jobs")
            table.refresh()
        elif message.what == "kill":
            self.ask_kill(message.jobs, scope=scope) if message.jobs else self.notify(
                "nothing to kill: no running or queued job matches", severity="warning")
        elif message.what == "cleanup":
            self._ask_cleanup_of(message.jobs)
        elif message.what == "retry":
            self.ask_retry(message.jobs, scope=scope) if message.jobs else self.notify(
                "nothing to retry: no failed or lost job matches that was not retried",
                severity="warning")

    # -- clean-up ---------------------------------------------------------------------
    def ask_cleanup(self) -> None:
        if self.refuse_if_read_only("clean-up"):
            return

        def check(text: str) -> str | None:
            try:
                seconds = parse_age(text)
            except ValueError as exc:
                return str(exc)
            return "the age must be more than 0" if seconds <= 0 else None

        def chosen(text: str | None) -> None:
            if text:
                self.confirm_cleanup(parse_age(text))

        self.app.push_screen(AskScreen("Clean up finished jobs older than", "e.g. 7d, 12h, 30m",
                                   hint="Jobs that finished (completed, failed, killed, lost) "
                                   "and were created before then are deleted with all their "
                                   "keys, for every user. Enter accepts · Esc cancels",
                                   check=check), chosen)

    def confirm_cleanup(self, seconds: float) -> None:
        """Count what the clean-up would take from the loaded jobs (in a worker), then ask."""
        self._cleanup_age = seconds
        cutoff = self.app.clock() - seconds
        base = self.app.index.base
        older = base[: bisect_left(base, cutoff, key=lambda j: j.created or 0.0)]
        self.app.run_worker(lambda: self._pick("cleanup", older, True), thread=True,
                            exclusive=True, group="select")

    def _ask_cleanup_of(self, doomed: list[Target]) -> None:
        seconds = self._cleanup_age
        body = Text(f"Delete {plural(len(doomed), 'finished job')} created more than "
                    f"{age_text(seconds)} ago, with their output and child keys?\n\n")
        body.append(f"{sample(doomed)}\n\n" if doomed else "(none among the jobs loaded "
                    "here; the server is asked anyway)\n\n")
        body.append("Counted from the jobs loaded here; the server decides. Running and queued "
                    "jobs are kept. The clean-up is recorded in the audit trail.", style="dim")

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.run_worker(lambda: self._cleanup(seconds), thread=True,
                                    group="actions")

        self.app.push_screen(ConfirmScreen(f"Clean up jobs older than {age_text(seconds)}",
                                           body, "Delete"), answer)

    def _cleanup(self, seconds: float) -> None:
        try:
            removed = self.sync_store.cleanup(seconds)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.post(ActionDone(f"clean-up failed: {self.safe(exc)}", error=True))
            return
        self.post(ActionDone(f"removed {plural(removed, 'job')} older than "
                                     f"{age_text(seconds)} (recorded in the audit trail)"))

    # -- go to, copy --------------------------------------------------------------------
    def ask_goto(self) -> None:
        def go(text: str | None) -> None:
            if text:
                ids = list(self.app.index.jobs)
                self.app.run_worker(lambda: self._find(text, ids), thread=True,
                                    exclusive=True, group="find")

        self.app.push_screen(AskScreen("Go to job", "job id or its first characters"), go)

    def _find(self, text: str, ids: list[str]) -> None:
        hits = [i for i in ids if i.startswith(text)]
        self.post(Found(text, hits[:11]))

    def found(self, message: Found) -> None:
        ids = message.ids
        if not ids:
            self.notify(f"no job id starts with {message.text!r}", severity="warning")
            return
        if len(ids) > 1:
            more = "more than 10" if len(ids) > 10 else str(len(ids))
            self.notify(f"ambiguous: {more} jobs match {message.text!r} "
                        f"({', '.join(i[:8] for i in ids[:3])}…): type more of the id",
                        severity="warning")
            return
        self.app.reveal(ids[0])

    def copy_job(self, job: Target | None, *, command: bool) -> None:
        if job is None:
            self.notify("no job selected", severity="warning")
            return
        text = show_command(job.job_id, self.config.prefix) if command else job.job_id
        self.app.copy_to_clipboard(text)  # OSC 52: works over SSH in terminals that allow it
        self.notify(f"copied to the clipboard: {text}", timeout=3)
