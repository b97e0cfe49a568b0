"""Errors of either Redis client, caught alike by the code both share.

The sync store talks through `core/wire` (so a CLI command starts without
redis-py's 180 ms of imports) and the console through redis.asyncio. Shared
code catches `except errors.reply() as exc:` rather than a redis-py class.
redis-py's classes are named only once redis-py is imported: before that none
of its errors can be raised, and importing it to name them would cost what
wire saves. (An `except` expression is evaluated only when an exception
reaches it, so these calls cost nothing on the normal path.)
"""

from __future__ import annotations

import sys

from gn_jobs_tui.core import wire

Classes = tuple[type[BaseException], ...]


def _with_redis(ours: type[BaseException], *names: str) -> Classes:
    redis = sys.modules.get("redis")
    if redis is None:
        return (ours,)
    found: list[type[BaseException]] = [ours]
    for name in names:
        found.append(getattr(redis.exceptions, name))
    return tuple(found)


def reply() -> Classes:
    """An error reply from the server (ERR, WRONGTYPE, NOSCRIPT, OOM, NOPERM, ...)."""
    return _with_redis(wire.ReplyError, "ResponseError")


def no_script() -> Classes:
    """EVALSHA of a script the server does not hold (e.g. after a restart)."""
    return _with_redis(wire.NoScript, "NoScriptError")


def no_permission() -> Classes:
    """The ACL user may not run this command or touch this key."""
    return _with_redis(wire.NoPerm, "NoPermissionError")


def read_only() -> Classes:
    """A write sent to a replica."""
    return _with_redis(wire.ReadOnly, "ReadOnlyError")


def loading() -> Classes:
    """The server is loading its data set."""
    return _with_redis(wire.Loading, "BusyLoadingError")


def timeout() -> Classes:
    """No reply in time."""
    return _with_redis(wire.Timeout, "TimeoutError")


def unreachable() -> Classes:
    """No connection, or it broke (a timeout included)."""
    return _with_redis(wire.ConnectionLost, "ConnectionError", "TimeoutError")


def any_redis() -> Classes:
    """Anything either client raises for a server that did not do what was asked."""
    return _with_redis(wire.WireError, "RedisError")
