"""What the console keeps of each job: a `Row`, under half of a `Job`.

A million jobs stay in memory for the table. A Row holds the fields the
table, the filters, the sorts and the views read, with the processor's
verdict and summary worked out once (equal verdicts are one shared object,
and the summary is the message itself when they are the same text); the
fields that only feed those two (exit code, error, attempt, heartbeat...)
are not kept. A Row answers to the Job attribute names the UI uses, so a Job
(e.g. the drill-down's) can go where a Row goes.

A load builds most Rows straight from the listing's flat reply
(`rows_from_listing`), with no Job in between: a Job costs more to build than
the Row it becomes, and a load of a million jobs built both.

The drill-down, kill and retry read the job itself from Redis.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from gn_jobs_tui.core.keys import LIST_FIELDS, RUNNING, TABLE_FIELDS, TERMINAL_STATUSES
from gn_jobs_tui.core.model import MAX_TEXT, MISSING, Job
from gn_jobs_tui.core.store import jobs_from_listing
from gn_jobs_tui.processors import for_type
from gn_jobs_tui.processors.base import Processor, Verdict

T = TypeVar("T", Verdict, float, tuple[object, ...])
_VERDICTS: dict[Verdict, Verdict] = {}
_FLOATS: dict[float, float] = {}
SHARE_LIMIT = 100_000  # distinct verdicts/progress values shared; beyond, each keeps its own


def _shared(cache: dict[T, T], value: T) -> T:
    """One object for equal values (a million rows, a few distinct verdicts)."""
    try:
        found = cache.get(value)
    except TypeError:  # a plugin's verdict that cannot be hashed: kept as it is
        return value
    if found is not None:
        return found
    if len(cache) < SHARE_LIMIT:
        cache[value] = value
    return value


_ODD: dict[tuple[object, ...], tuple[object, ...]] = {}
_WHO: dict[tuple[object, ...], tuple[object, ...]] = {}
_PLAIN = ((), None, None, False)  # damage, heartbeat health, retried_by, polled: most jobs


class Row:
    """10 slots (112 bytes): type, user and host share one slot (a tuple shared by every
    row with the same three), the message and its summary share one when they are the
    same text, and damage, heartbeat health, `retried_by` and `polled` share one (None
    for most jobs, else a shared tuple)."""

    __slots__ = ("job_id", "_who", "effective_status", "verdict", "created", "started",
                 "finished", "progress", "_text", "_odd")

    def __init__(self, job: Job) -> None:
        proc = for_type(job.job_type)
        self.job_id = job.job_id
        self._who = _shared(_WHO, (job.job_type, job.user_id, job.host))
        self.effective_status = job.effective_status
        self.verdict = _shared(_VERDICTS, proc.verdict(job))
        self.created = job.created
        self.started = job.started
        self.finished = job.finished
        self.progress = None if job.progress is None else _shared(_FLOATS, job.progress)
        message = job.message
        if message and type(proc).summary is Processor.summary and message.isprintable() \
                and not message.isspace():
            summary = message  # one printable line: what the generic summary gives (fast path)
        else:
            summary = proc.summary(job)
        same = summary == (message or "")
        self._text: str | tuple[str | None, str] | None = message if same else (message, summary)
        # Heartbeat health of a running job: alive, lapsed, or ours to judge not at all.
        if job.status != RUNNING:
            hb: str | None = None
        elif job.heartbeat is None or job.heartbeat_alive is None:
            hb = "unknown"
        else:
            hb = "alive" if job.heartbeat_alive else "lapsed"
        # Not finished, and neither a supervisor's heartbeat nor our attempt count: another
        # producer's job, which announces nothing (the feed polls it).
        polled = job.effective_status not in TERMINAL_STATUSES and job.heartbeat is None \
            and job.attempt is None
        odd = (job.damage, hb, job.retried_by, polled)
        self._odd = None if odd == _PLAIN else _shared(_ODD, odd)

    @property
    def job_type(self) -> str:
        return self._who[0]  # type: ignore[return-value]

    @property
    def user_id(self) -> str:
        return self._who[1]  # type: ignore[return-value]

    @property
    def host(self) -> str | None:
        return self._who[2]  # type: ignore[return-value]

    @property
    def message(self) -> str | None:
        text = self._text
        return text[0] if isinstance(text, tuple) else text

    @property
    def summary(self) -> str:
        """What the table shows as the message: the processor's summary."""
        text = self._text
        return text[1] if isinstance(text, tuple) else (text or "")

    @property
    def damage(self) -> tuple[str, ...]:
        return self._odd[0] if self._odd is not None else ()  # type: ignore[return-value]

    @property
    def hb(self) -> str | None:
        return self._odd[1] if self._odd is not None else None  # type: ignore[return-value]

    @property
    def retried_by(self) -> str | None:
        return self._odd[2] if self._odd is not None else None  # type: ignore[return-value]

    @property
    def polled(self) -> bool:
        """Another producer's unfinished job: it announces no change, so it is polled."""
        return self._odd is not None and self._odd[3]  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in Row.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Row({self.job_id!r}, {self.job_type!r}, {self.effective_status!r})"

    @property
    def short_id(self) -> str:
        return self.job_id[:8]

    @property
    def is_terminal(self) -> bool:
        return self.effective_status in TERMINAL_STATUSES

    @property
    def is_missing(self) -> bool:
        return self.damage == (MISSING,)

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else now
        return max(0.0, end - self.started)


# -- rows straight from a listing's flat reply ---------------------------------------
_NT = len(TABLE_FIELDS)
_STRIDE = 3 + len(LIST_FIELDS)
_NO_DIALECT = [None] * (len(LIST_FIELDS) - _NT)
_STATUSES = {s.encode(): sys.intern(s)
             for s in ("queued", "running", "completed", "failed", "killed", "lost")}
#: (type, user, host) as the reply's bytes -> (the Row's shared `_who`, its processor,
#: whether that processor's verdict and summary are the generic ones).
_WHO_RAW: dict[tuple[Any, Any, Any], tuple[tuple[str, str, str | None], Processor, bool]] = {}
#: The generic verdict from what it reads: (effective status, status, exit code,
#: a traceback in the error, a kill requested). Filled from Rows built the long way.
_GENERIC_VERDICTS: dict[tuple[object, ...], Verdict] = {}
_new_row = object.__new__
#: Rows `rows_from_listing` made the long way (through a Job) so far: tests and the
#: console benchmark read it.
long_way = 0


def rows_from_listing(flat: Any, hints: dict[str, str] | None = None) -> list[Row]:
    """The Rows of a listing's flat reply (see scripts._ROWS_FN), the common case fast.

    Gives exactly `[Row(job) for job in jobs_from_listing(flat, hints)]` (a property
    test holds them equal): a well-formed row of ours, of a job type whose processor
    judges and summarises it the generic way, becomes a Row with no Job in between;
    anything else (another producer's dialect, damage, a plugin's verdict, a verdict
    not seen yet) takes the long way through the tolerant parser, as one Job.
    """
    global long_way
    rows: list[Row] = []
    if not isinstance(flat, list):
        return rows
    append = rows.append
    for i in range(0, len(flat) - _STRIDE + 1, _STRIDE):
        try:
            row = _fast(flat, i)
        except (ValueError, TypeError, UnicodeDecodeError, AttributeError, OverflowError):
            row = None
        if row is None:
            long_way += 1
            job = jobs_from_listing(flat[i : i + _STRIDE], hints)[0]
            row = Row(job)
            if type(for_type(job.job_type)).verdict is Processor.verdict \
                    and len(_GENERIC_VERDICTS) < SHARE_LIMIT:
                key = (job.effective_status, job.raw_status, job.exit_code,
                       bool(job.error) and "Traceback" in job.error,  # type: ignore[operator]
                       bool(job.kill_requested))
                _GENERIC_VERDICTS.setdefault(key, row.verdict)
        append(row)
    return rows


def _number(raw: Any) -> float | None:
    """A field's float, None if absent; raises (the long way) if it is not finite."""
    if not raw:
        return None
    value = float(raw)
    if value - value != 0.0:  # inf or nan
        raise ValueError("not finite")
    return value


def _fast(flat: list[Any], i: int) -> Row | None:
    """One row the way `Row(parse_table_row(...))` makes it, or None (or an exception)
    when it needs the long way: whatever `parse_table_row` would not take fast, and a
    processor or a verdict this path does not know."""
    raw_id, flag = flat[i], flat[i + 2]
    (jid, jtype, user, status, created, started, finished, host, progress, message,
     exit_code, error, errors, heartbeat, attempt, retry_of, retried_by, kill) = \
        flat[i + 3 : i + 3 + _NT]
    if type(flag) is not int or jid != raw_id or not raw_id or len(raw_id) > MAX_TEXT \
            or flat[i + 3 + _NT : i + _STRIDE] != _NO_DIALECT:
        return None
    st = _STATUSES.get(status)
    known = _WHO_RAW.get((jtype, user, host))
    if st is None:
        return None
    if known is None:
        if not (jtype and user):
            return None
        proc = for_type(jt := sys.intern(jtype.decode()))
        generic = type(proc).verdict is Processor.verdict and \
            type(proc).summary is Processor.summary
        who = _shared(_WHO, (jt, sys.intern(user.decode()),
                             sys.intern(host.decode()) if host else None))
        if len(_WHO_RAW) >= SHARE_LIMIT:
            _WHO_RAW.clear()
        known = _WHO_RAW[(jtype, user, host)] = (who, proc, generic)  # type: ignore[assignment]
    who, _proc, generic = known
    if not generic:
        return None
    f_created = float(created)
    if f_created - f_created != 0.0:
        return None
    f_heartbeat = _number(heartbeat)
    f_kill = _number(kill)
    f_progress = _number(progress)
    if f_progress is not None and not 0 <= f_progress <= 100:
        return None
    f_exit = _number(exit_code)
    f_errors = _number(errors)
    f_attempt = _number(attempt)
    if f_exit is not None and abs(f_exit) > 2**62 or f_errors is not None and \
            abs(f_errors) > 2**62 or f_attempt is not None and abs(f_attempt) > 2**62:
        return None
    text = message.decode() if message else None
    if text:
        # The generic summary of a message of one printable line is the message itself.
        if len(text) > MAX_TEXT or not text.isprintable() or text.isspace():
            return None
        if error and len(error) > MAX_TEXT:
            error.decode()  # raises if it is not UTF-8: the long way says so
            return None
    elif error:
        return None  # the summary comes from the error: the long way
    if error:
        has_traceback = "Traceback" in error.decode()
    else:
        has_traceback = False
    retry = retried_by.decode() if retried_by else None
    if retry is not None and len(retry) > MAX_TEXT or retry_of and len(retry_of.decode()) > MAX_TEXT:
        return None
    alive = None if flag == -1 else flag == 1
    effective = "lost" if st == RUNNING and f_heartbeat is not None and alive is False else st
    verdict = _GENERIC_VERDICTS.get((effective, st, None if f_exit is None else int(f_exit),
                                     has_traceback, bool(f_kill)))
    if verdict is None:
        return None  # the first of its kind: the long way, which teaches the table
    if st != RUNNING:
        hb = None
    elif f_heartbeat is None or alive is None:
        hb = "unknown"
    else:
        hb = "alive" if alive else "lapsed"
    row: Row = _new_row(Row)
    row.job_id = raw_id.decode()
    row._who = who
    row.effective_status = effective
    row.verdict = verdict
    row.created = f_created
    row.started = _number(started)
    row.finished = _number(finished)
    row.progress = None if f_progress is None else _shared(_FLOATS, f_progress)
    row._text = text
    polled = f_heartbeat is None and f_attempt is None and effective not in TERMINAL_STATUSES
    if hb is not None or retry is not None or polled:
        row._odd = _shared(_ODD, ((), hb, retry, polled))
    else:
        row._odd = None
    return row
