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

    def _add(self, kind: str, fields: dict[str, Any], essential: bool = False) -> bool:
        # Flat name/value list: the cheapest shape to queue (this runs once per record).
        flat = ["kind", kind, "ts", f"{time.time():.3f}"]
        for name, value in fields.items():
            flat.append(f"_{name}" if name in RESERVED else name)
            flat.append(value if type(value) is str else field_value(value))
        return self.box.append(self.job_key, self.job_id, self.key, flat, essential)

    def start(self, **info: Any) -> None:
        self._add("start", info, essential=True)

    def progress(self, done: float, total: float, **info: Any) -> None:
        self._add("progress", {"done": str(done), "total": str(total), **info})

    def record(self, **fields: Any) -> None:
        self.records += 1
        self._add("record", fields)

    def log(self, text: str) -> None:
        self._add("log", {"line": text})

    def finish(self, status: str = "completed", **info: Any) -> None:
        """The last entry; it always gets into the outbox, and says how many entries did not."""
        dropped = self.box.dropped_for(self.key)
        if dropped:
            info.setdefault("dropped", str(dropped))
        self._add("finish", {"status": status, "records": str(self.records), **info},
                  essential=True)

    @property
    def dropped(self) -> int:
        """Entries of this key dropped because the outbox was full."""
        return self.box.dropped_for(self.key)

    def flush(self) -> None:
        """Send soon; never waits (`JobContext.flush` waits, bounded)."""
        self.box.kick()
