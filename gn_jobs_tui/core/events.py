"""Change events: the small JSON message published for every write we make.

Channel `P:events`; payload `{"job_id": ..., "what": [...], "status": ...,
"ts": ...}`. `what` names what changed: `created`, `status`, `progress`,
`output`, `children`, `child`, `kill`, `retry`, `deleted`. Consumers treat it
as a hint to re-read the job, never as the data itself.
"""

from __future__ import annotations

import json
import time

from gn_jobs_tui.core.tuples import NamedTuple  # typing's, without importing typing


class Event(NamedTuple):
    """One decoded event (a NamedTuple: the supervisor imports no `dataclasses`)."""

    job_id: str
    what: tuple[str, ...]
    status: str | None = None


def encode(job_id: str, *what: str, status: str | None = None) -> str:
    data: dict[str, object] = {"job_id": job_id, "what": list(what), "ts": round(time.time(), 3)}
    if status is not None:
        data["status"] = status
    return json.dumps(data, separators=(",", ":"))


def decode(payload: bytes | str) -> Event | None:
    """Parse an event; anything malformed is ignored (None), never raised."""
    try:
        data = json.loads(payload)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("job_id"), str):
        return None
    what = data.get("what")
    what_t = tuple(str(w) for w in what) if isinstance(what, list) else ()
    status = data.get("status")
    return Event(data["job_id"], what_t, status if isinstance(status, str) else None)
