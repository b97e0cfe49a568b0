"""Tolerant parsing of job hashes: whatever is in Redis becomes a `Job`.

A field that is missing, not UTF-8, not JSON or not a number never raises:
the job is built anyway and the problem is listed in `Job.damage`, so the
console can show the job, marked as damaged where it is.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gn_jobs_tui.core import dialects
from gn_jobs_tui.core.keys import (
    LIST_FIELDS,
    RUNNING,
    STATUS_ALIASES,
    TABLE_FIELDS,
    TERMINAL_STATUSES,
)

REQUIRED_FIELDS = ("job_id", "job_type", "user_id", "status", "command", "created")
MAX_TEXT = 100_000
MISSING = "job hash is missing or empty"
EMPTY_EXTRA: Mapping[str, str] = MappingProxyType({})


def to_text(value: Any, damage: list[str] | None = None, name: str = "") -> str | None:
    """Decode bytes as UTF-8; invalid bytes are replaced and noted as damage."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("utf-8", errors="replace")
            if damage is not None:
                damage.append(f"{name}: not UTF-8")
    else:
        text = str(value)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "…[truncated]"
    return text


def _float(text: str | None, damage: list[str], name: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        damage.append(f"{name}: not a number ({text[:30]!r})")
        return None
    if not math.isfinite(value):
        damage.append(f"{name}: not finite")
        return None
    return value


def _int(text: str | None, damage: list[str], name: str) -> int | None:
    value = _float(text, damage, name)
    if value is None:
        return None
    if abs(value) > 2**62:
        damage.append(f"{name}: out of range")
        return None
    return int(value)


def _json(text: str | None, damage: list[str], name: str, kind: type) -> Any:
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        damage.append(f"{name}: not JSON")
        return None
    if not isinstance(value, kind):
        damage.append(f"{name}: not a JSON {kind.__name__}")
        return None
    return value


def normalise_status(raw: str | None) -> str:
    """Map other producers' words onto ours; unknown words stay as they are."""
    if raw is None or raw == "":
        return "unknown"
    low = raw.strip().lower()
    return STATUS_ALIASES.get(low, low if low else "unknown")


@dataclass(slots=True)
class Job:
    """One job as read from Redis, parsed tolerantly (see module docstring)."""

    job_id: str
    job_type: str = "unknown"
    user_id: str = "unknown"
    status: str = "unknown"
    raw_status: str | None = None
    command: list[str] | None = None
    #: A command written as one shell-quoted string (other producers): shown as it is.
    command_text: str | None = None
    created: float | None = None
    params: dict[str, Any] | None = None
    started: float | None = None
    finished: float | None = None
    host: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    exit_code: int | None = None
    progress: float | None = None
    message: str | None = None
    children: Sequence[str] = ()
    retry_of: str | None = None
    retried_by: str | None = None
    attempt: int | None = None
    error: str | None = None
    errors: int | None = None
    heartbeat: float | None = None
    heartbeat_alive: bool | None = None
    kill_requested: float | None = None
    # Shared immutable empties: 100,000 jobs need no 300,000 empty containers.
    damage: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=lambda: EMPTY_EXTRA)

    @property
    def short_id(self) -> str:
        return self.job_id[:8]

    @property
    def is_lost(self) -> bool:
        """Running, supervised by us (has `heartbeat`), and its heartbeat lapsed."""
        return (
            self.status == RUNNING
            and self.heartbeat is not None
            and self.heartbeat_alive is False
        )

    @property
    def effective_status(self) -> str:
        """The status to show: `lost` when the heartbeat lapsed."""
        return "lost" if self.is_lost else self.status

    @property
    def is_terminal(self) -> bool:
        return self.effective_status in TERMINAL_STATUSES

    @property
    def is_damaged(self) -> bool:
        return bool(self.damage)

    @property
    def is_missing(self) -> bool:
        """Listed in an index, but its hash is gone (deleted or expired)."""
        return self.damage == (MISSING,)

    @property
    def command_display(self) -> str:
        if self.command is not None:
            import shlex

            return shlex.join(self.command)
        return self.command_text or ""

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else now
        return max(0.0, end - self.started)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, for `--json` output."""
        data = {k: getattr(self, k) for k in self.__slots__ if k != "extra"}  # type: ignore[attr-defined]
        data["status"] = self.effective_status
        data["extra"] = dict(self.extra)
        return data


_KNOWN = {
    "job_id",
    "job_type",
    "user_id",
    "status",
    "command",
    "created",
    "params",
    "started",
    "finished",
    "host",
    "pid",
    "pid_started",
    "exit_code",
    "progress",
    "message",
    "children",
    "retry_of",
    "retried_by",
    "attempt",
    "error",
    "errors",
    "heartbeat",
    "kill_requested",
}


def _command(text: str | None, damage: list[str]) -> tuple[list[str] | None, str | None]:
    """A JSON list of argv strings (ours), else a shell-quoted string (other producers)."""
    if text is None or text == "":
        return None, None
    if text.lstrip().startswith("["):
        value = _json(text, damage, "command", list)
        return ([str(c) for c in value] if value is not None else None), None
    return None, text


def _children(text: str | None, damage: list[str]) -> list[str]:
    """A JSON list of key names (ours), else a comma- or space-separated string."""
    if text is None or text.strip() == "":
        return []
    if text.lstrip().startswith("["):
        value = _json(text, damage, "children", list) or []
        if not all(isinstance(c, str) for c in value):
            damage.append("children: not all names are strings")
        return [str(c) for c in value]
    return dialects.split_children(text) or []


def parse_job(
    job_id: str,
    raw: Mapping[Any, Any] | None,
    *,
    heartbeat_alive: bool | None = None,
    partial: bool = False,
    user_hint: str | None = None,
) -> Job:
    """Build a Job from a hash's fields (bytes or str keys and values).

    Other producers' field names and words are read through `dialects`.
    `partial` is for the table listing, which fetches only some fields: then a
    field absent from the listing is not counted as missing. `user_hint` is the
    user whose index listed the job, for producers that write no user field.
    """
    damage: list[str] = []
    if raw is None or len(raw) == 0:
        return Job(job_id=job_id, damage=(MISSING,))
    if not isinstance(raw, Mapping):
        return Job(job_id=job_id, damage=("job key is not a hash",))
    fields: dict[str, str] = {}
    for k, v in raw.items():
        name = to_text(k, damage, "field name") or ""
        if v is None:
            continue
        fields[name] = to_text(v, damage, name) or ""
    foreign = not dialects.DIALECT_MARKERS.isdisjoint(fields)
    fields = dialects.canonical(fields)
    if user_hint and not fields.get("user_id"):
        fields["user_id"] = user_hint
    for name in REQUIRED_FIELDS:
        if name in fields or (partial and name == "command"):
            continue
        if foreign and name in dialects.OPTIONAL_IN_DIALECTS:
            continue
        damage.append(f"{name}: missing")

    stored_id = fields.get("job_id")
    if stored_id and stored_id != job_id:
        damage.append(f"job_id: field says {stored_id[:40]!r}")
    raw_status = fields.get("status")
    progress = _float(fields.get("progress"), damage, "progress")
    if progress is not None and not 0 <= progress <= 100:
        damage.append("progress: outside 0..100")
        progress = min(100.0, max(0.0, progress))
    children = _children(fields.get("children"), damage)
    command, command_text = _command(fields.get("command"), damage)
    # Types, users, statuses and hosts repeat across 100,000s of jobs: share one copy.
    return Job(
        job_id=job_id,
        job_type=sys.intern(fields.get("job_type") or "unknown"),
        user_id=sys.intern(fields.get("user_id") or "unknown"),
        status=sys.intern(normalise_status(raw_status)),
        raw_status=raw_status,
        command=command,
        command_text=command_text,
        created=_float(fields.get("created"), damage, "created"),
        params=_json(fields.get("params"), damage, "params", dict),
        started=_float(fields.get("started"), damage, "started"),
        finished=_float(fields.get("finished"), damage, "finished"),
        host=sys.intern(fields["host"]) if fields.get("host") else None,
        pid=_int(fields.get("pid"), damage, "pid"),
        pid_started=_float(fields.get("pid_started"), damage, "pid_started"),
        exit_code=_int(fields.get("exit_code"), damage, "exit_code"),
        progress=progress,
        message=fields.get("message"),
        children=children or (),
        retry_of=fields.get("retry_of") or None,
        retried_by=fields.get("retried_by") or None,
        attempt=_int(fields.get("attempt"), damage, "attempt"),
        error=fields.get("error") or None,
        errors=_int(fields.get("errors"), damage, "errors"),
        heartbeat=_float(fields.get("heartbeat"), damage, "heartbeat"),
        heartbeat_alive=heartbeat_alive,
        kill_requested=_float(fields.get("kill_requested"), damage, "kill_requested"),
        damage=tuple(damage),
        extra={k: v for k, v in fields.items() if k not in _KNOWN and k not in _ALIASED}
        or EMPTY_EXTRA,
    )


__all__ = ["Job", "parse_job", "parse_table_row", "normalise_status", "to_text", "TABLE_FIELDS",
           "LIST_FIELDS", "looks_like_a_job"]


def parse_table_row(job_id: str, values: list[Any], heartbeat_alive: bool | None,
                    user_hint: str | None = None) -> Job:
    """The listed fields (LIST_FIELDS order) of a well-formed job, fast.

    Listing 100,000 jobs spends most of its time here, so the common case
    skips the dict and the damage bookkeeping; anything unusual (bad UTF-8,
    a bad number, a missing required field, other producers' statuses, huge
    text) goes to the tolerant `parse_job`, which gives the same Job with the
    damage noted. A property test checks that both agree.
    """
    try:
        if any(v is not None for v in values[_NT:]):
            raise ValueError("another producer's dialect")
        (jid, jtype, user, status, created, started, finished, host, progress, message,
         exit_code, error, errors, heartbeat, attempt, retry_of, retried_by, kill) = values[:_NT]
        status_text = status.decode()
        if status_text not in _OURS or jid.decode() != job_id or not jtype or not user:
            raise ValueError("unusual")
        f_created = float(created)
        f_started = float(started) if started else None
        f_finished = float(finished) if finished else None
        f_progress = float(progress) if progress else None
        f_heartbeat = float(heartbeat) if heartbeat else None
        f_kill = float(kill) if kill else None
        f_exit = float(exit_code) if exit_code else None
        f_errors = float(errors) if errors else None
        f_attempt = float(attempt) if attempt else None
        numbers = [x for x in (f_created, f_started, f_finished, f_progress, f_heartbeat, f_kill,
                               f_exit, f_errors, f_attempt) if x is not None]
        if not math.isfinite(sum(numbers)) or (f_progress is not None and not 0 <= f_progress <= 100):
            raise ValueError("range")
        if any(x is not None and abs(x) > 2**62 for x in (f_exit, f_errors, f_attempt)):
            raise ValueError("range")
        texts = [t.decode() if t else None for t in (message, error, retry_of, retried_by)]
        if any(t is not None and len(t) > MAX_TEXT for t in texts):
            raise ValueError("long")
        return Job(
            job_id=job_id,
            job_type=sys.intern(jtype.decode()),
            user_id=sys.intern(user.decode()),
            status=(status_str := sys.intern(status_text)),
            raw_status=status_str,
            created=f_created,
            started=f_started,
            finished=f_finished,
            host=sys.intern(host.decode()) if host else None,
            progress=f_progress,
            message=texts[0],
            exit_code=None if f_exit is None else int(f_exit),
            error=texts[1],
            errors=None if f_errors is None else int(f_errors),
            heartbeat=f_heartbeat,
            heartbeat_alive=heartbeat_alive,
            attempt=None if f_attempt is None else int(f_attempt),
            retry_of=texts[2],
            retried_by=texts[3],
            kill_requested=f_kill,
        )
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError, OverflowError):
        raw = {name: v for name, v in zip(LIST_FIELDS, values, strict=False) if v is not None}
        return parse_job(job_id, raw, heartbeat_alive=heartbeat_alive, partial=True,
                         user_hint=user_hint)


_OURS = frozenset({"queued", "running", "completed", "failed", "killed", "lost"})
_NT = len(TABLE_FIELDS)
_ALIASED = frozenset({*dialects.FIELD_ALIASES})


def looks_like_a_job(job: Job) -> bool:
    """A hash found by scanning is a job only if it carries some job field.

    (gn2's `gn2:jobs:manager` is a hash with only `stderr`; other hashes under
    `P:jobs:` with none of a job's fields are not listed as jobs.)
    """
    if job.job_id in dialects.NOT_JOBS:
        return False
    return job.raw_status is not None or job.job_type != "unknown" or job.command is not None \
        or job.command_text is not None or job.created is not None
