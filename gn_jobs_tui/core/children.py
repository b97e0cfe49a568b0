"""Fan-out API for job programs: one key per child, one writer per key.

Before a job starts N threads or processes, `allocate_children` builds their N
key names and records them in the parent's `children` field; then each child
gets a `ChildWriter` bound to its own key only, so no two writers share a key.
Writers batch their entries (one round trip per flush, not per record).
"""

from __future__ import annotations

import json
import time
from typing import Any

from gn_jobs_tui.core import events
from gn_jobs_tui.core.store import Store

CHILD_MAXLEN = 100_000
FLUSH_EVERY = 0.5
FLUSH_SIZE = 500


def allocate_children(store: Store, job_id: str, n: int) -> list[str]:
    """Build N child key names and record them before any child starts."""
    names = [store.keys.child(job_id, i) for i in range(n)]
    store.update(job_id, "children", children=names)
    return names


class ChildWriter:
    """Writes only to its own child key: start, progress, records, finish."""

    def __init__(self, store: Store, job_id: str, key: str) -> None:
        if not key.startswith(store.keys.job(job_id) + ":children:"):
            raise ValueError(f"{key!r} is not a child key of job {job_id}")
        self.store, self.job_id, self.key = store, job_id, key
        self._pending: list[dict[str, str]] = []
        self._last_flush = time.monotonic()
        self.records = 0

    def _add(self, kind: str, **fields: Any) -> None:
        entry = {"kind": kind, "ts": f"{time.time():.3f}"}
        entry.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
        self._pending.append(entry)
        if len(self._pending) >= FLUSH_SIZE or time.monotonic() - self._last_flush >= FLUSH_EVERY:
            self.flush()

    def start(self, **info: Any) -> None:
        self._add("start", **info)
        self.flush()

    def progress(self, done: float, total: float, **info: Any) -> None:
        self._add("progress", done=str(done), total=str(total), **info)

    def record(self, **fields: Any) -> None:
        self.records += 1
        self._add("record", **fields)

    def log(self, text: str) -> None:
        self._add("log", line=text)

    def finish(self, status: str = "completed", **info: Any) -> None:
        self._add("finish", status=status, records=str(self.records), **info)
        self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self.store.r.pipeline(transaction=False) as pipe:
            for entry in self._pending:
                pipe.xadd(self.key, entry, maxlen=CHILD_MAXLEN, approximate=True)
            pipe.publish(self.store.keys.events_channel, events.encode(self.job_id, "child"))
            pipe.execute()
        self._pending.clear()
        self._last_flush = time.monotonic()
