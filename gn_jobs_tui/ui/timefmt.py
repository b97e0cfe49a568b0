"""Times as the console shows them: relative ("3m ago") or absolute (UTC), and ages typed in.

Relative times change only when their text does (seconds under a minute,
minutes under an hour, ...), so an idle table redraws a cell only when a
reader would see a difference.
"""

from __future__ import annotations

import datetime as dt
import re

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def ago(ts: float | None, now: float) -> str:
    """`ts` relative to `now`: "45s ago", "3m ago", "2h ago", "5d ago"; "-" if unknown."""
    if ts is None:
        return "-"
    delta = now - ts
    if delta < 1:
        return "now" if delta > -60 else "future"
    if delta < 60:
        return f"{int(delta)}s ago"
    if delta < 3600:
        return f"{int(delta // 60)}m ago"
    if delta < 86400:
        return f"{int(delta // 3600)}h ago"
    return f"{int(delta // 86400)}d ago"


def absolute(ts: float | None, *, seconds: bool = False) -> str:
    """`ts` as "MM-DD HH:MM" in UTC (with ":SS" if asked); "-" if unknown."""
    if ts is None:
        return "-"
    try:
        when = dt.datetime.fromtimestamp(ts, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return "?"
    return when.strftime("%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M")


def stamp(ts: float | None, now: float, relative: bool) -> str:
    return ago(ts, now) if relative else absolute(ts)


def parse_age(text: str) -> float:
    """"7d", "12h", "30m", "90s" or plain seconds; ValueError with a one-line reason."""
    m = _AGE.match(text or "")
    if not m:
        raise ValueError(f"bad age {text!r}: use e.g. 90s, 30m, 12h, 7d, 2w")
    return float(m[1]) * _UNITS[m[2]]


def age_text(seconds: float) -> str:
    """A duration the way people say it: "7 days", "12 hours", "30 minutes"."""
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}" + ("" if n == 1 else "s")
    n = int(seconds)
    return f"{n} second" + ("" if n == 1 else "s")
