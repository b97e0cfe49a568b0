"""Fan-out API for job programs: one key per child, one writer per key.

Before a job starts N threads or processes, `JobContext.children` names their
N keys (`Keys.child(job_id, i)`: known at once) and records them in the
parent's `children` field; each child gets a `ChildWriter` bound to its own
key only, so no two writers share a key. Entries go through the process's
outbox: the writer never waits on Redis and never raises because of it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gn_jobs_tui.core.keys import Keys
from gn_jobs_tui.core.outbox import Outbox

#: Field names the outbox writes itself (the entry's sequence number).
RESERVED = frozenset({"n"})


def field_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


class ChildWriter:
    """Writes only to its own child key: start, progress, records, log lines, finish."""

    def __init__(self, box: Outbox, keys: Keys, job_id: str, key: str) -> None:
        if not key.startswith(keys.job(job_id) + ":children:"):
            raise ValueError(f"{key!r} is not a child key of job {job_id}")
        self.box, self.job_id, self.key = box, job_id, key
        self.job_key = keys.job(job_id)
        self.records = 0

    def _add(self, kind: str, essential: bool = False, **fields: Any) -> bool:
        pairs = [("kind", kind), ("ts", f"{time.time():.3f}")]
        pairs.extend((f"_{k}" if k in RESERVED else k, field_value(v)) for k, v in fields.items())
        return self.box.append(self.job_key, self.job_id, self.key, pairs, essential)

    def start(self, **info: Any) -> None:
        self._add("start", essential=True, **info)

    def progress(self, done: float, total: float, **info: Any) -> None:
        self._add("progress", done=str(done), total=str(total), **info)

    def record(self, **fields: Any) -> None:
        self.records += 1
        self._add("record", **fields)

    def log(self, text: str) -> None:
        self._add("log", line=text)

    def finish(self, status: str = "completed", **info: Any) -> None:
        """The last entry; it always gets into the outbox, and says how many entries did not."""
        dropped = self.box.dropped_for(self.key)
        if dropped:
            info.setdefault("dropped", str(dropped))
        self._add("finish", essential=True, status=status, records=str(self.records), **info)

    @property
    def dropped(self) -> int:
        """Entries of this key dropped because the outbox was full."""
        return self.box.dropped_for(self.key)

    def flush(self) -> None:
        """Send soon; never waits (`JobContext.flush` waits, bounded)."""
        self.box.kick()
