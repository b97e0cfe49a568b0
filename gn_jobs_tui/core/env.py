"""Environment variable names and the state directory, importable for nothing.

The supervisor must not import redis-py (see `wire`); the modules that used
to own these names (`jobctx`, `store`, `server`) import it. So the names live
here, in a module that imports only `os` and `pathlib`.
"""

from __future__ import annotations

import os
from pathlib import Path

# Passed by the launcher to the supervisor, and by the supervisor to its job.
ENV_URL = "GN_JOBS_REDIS_URL"
ENV_PREFIX = "GN_JOBS_PREFIX"
ENV_JOB_ID = "GN_JOBS_JOB_ID"
#: The supervisor's claim identity (`host:pid:start_time`): the job fences its own writes with it.
ENV_CLAIM = "GN_JOBS_CLAIM"

# Supervision knobs (seconds unless said otherwise).
ENV_HEARTBEAT = "GN_JOBS_HEARTBEAT"
ENV_GRACE = "GN_JOBS_KILL_GRACE"
ENV_MAXLEN = "GN_JOBS_OUTPUT_MAXLEN"
#: How long a supervisor keeps trying to write after its job ended, before it spools and exits.
ENV_GIVE_UP = "GN_JOBS_GIVE_UP"
#: Bytes of unwritten output kept in memory before the rest spills to a file.
ENV_BUFFER = "GN_JOBS_OUTPUT_BUFFER"
#: Bytes of unwritten output the spill file may hold; lines past it are dropped and counted.
ENV_SPILL_MAX = "GN_JOBS_SPILL_MAX"


def state_dir() -> Path:
    """`$XDG_STATE_HOME/gn-jobs` (default `~/.local/state/gn-jobs`); the same as `server.state_dir`."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "gn-jobs"


def spool_dir() -> Path:
    """Where supervisors spill output and spool final states the server could not take."""
    return state_dir() / "spool"


def number(name: str, default: float) -> float:
    """A numeric env setting; a value that is not a number falls back to the default."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default
