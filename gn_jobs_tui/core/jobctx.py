"""What a job program knows about itself: its job id and store, from the env.

The supervisor passes `GN_JOBS_JOB_ID`, `GN_JOBS_REDIS_URL` and
`GN_JOBS_PREFIX` to the job process (the URL in the environment, never in
argv, where `ps` would show its password).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from gn_jobs_tui.core.children import ChildWriter, allocate_children
from gn_jobs_tui.core.keys import DEFAULT_PREFIX
from gn_jobs_tui.core.store import Store

ENV_JOB_ID = "GN_JOBS_JOB_ID"
ENV_URL = "GN_JOBS_REDIS_URL"
ENV_PREFIX = "GN_JOBS_PREFIX"


@dataclass
class JobContext:
    job_id: str | None
    store: Store | None
    _last_progress: float = 0.0

    @classmethod
    def from_env(cls) -> JobContext:
        """A context; without the env (run by hand) every report is a no-op."""
        job_id, url = os.environ.get(ENV_JOB_ID), os.environ.get(ENV_URL)
        if not job_id or not url:
            return cls(None, None)
        return cls(job_id, Store.from_url(url, os.environ.get(ENV_PREFIX, DEFAULT_PREFIX)))

    def progress(self, percent: float, message: str | None = None, *, force: bool = False,
                 **fields: object) -> None:
        """Report progress, at most 5 times a second unless forced."""
        if self.store is None or self.job_id is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.2:
            return
        self._last_progress = now
        data: dict[str, object] = {"progress": f"{max(0.0, min(100.0, percent)):.1f}", **fields}
        if message is not None:
            data["message"] = message
        self.store.update(self.job_id, "progress", **data)

    def set(self, **fields: object) -> None:
        if self.store is not None and self.job_id is not None:
            self.store.update(self.job_id, "fields", **fields)

    def children(self, n: int) -> list[str]:
        """Allocate and record N child keys (empty names when run by hand)."""
        if self.store is None or self.job_id is None:
            return ["" for _ in range(n)]
        return allocate_children(self.store, self.job_id, n)

    def writer(self, key: str) -> ChildWriter | None:
        if self.store is None or self.job_id is None or not key:
            return None
        return ChildWriter(self.store, self.job_id, key)
