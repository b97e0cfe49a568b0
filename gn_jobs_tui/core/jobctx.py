"""What a job program knows about itself, and how it reports without ever failing for it.

The supervisor passes `GN_JOBS_JOB_ID`, `GN_JOBS_REDIS_URL`, `GN_JOBS_PREFIX`
and `GN_JOBS_CLAIM` (its claim identity, which fences the job's writes) to the
job process: the URL in the environment, never in argv, where `ps` would show
its password. Every report goes through the process's outbox (`core.outbox`):
the job never waits on Redis (except a bounded flush at exit) and never gets
an exception from it. Run by hand, without that environment, every report is
a no-op.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from gn_jobs_tui.core import outbox
from gn_jobs_tui.core.children import ChildWriter, field_value
from gn_jobs_tui.core.connection import UrlError, parse_url, sync_client, validate_prefix
from gn_jobs_tui.core.keys import DEFAULT_PREFIX, Keys

ENV_JOB_ID = "GN_JOBS_JOB_ID"
ENV_URL = "GN_JOBS_REDIS_URL"
ENV_PREFIX = "GN_JOBS_PREFIX"
ENV_CLAIM = "GN_JOBS_CLAIM"


def _make_outbox(url: str, keys: Keys, claim: str | None) -> outbox.Outbox:
    target = parse_url(url)
    # Imported here, on the job's thread: a job that ends at once would otherwise
    # have the outbox thread import them during interpreter shutdown, when
    # `concurrent.futures` (imported by redis.cluster) can no longer register.
    import redis.cluster  # noqa: F401
    import redis.sentinel  # noqa: F401

    def connect() -> Any:
        return sync_client(target, timeout=outbox.CALL_TIMEOUT, name="gn-jobs-job")

    # And what building a client imports (redis-py reads its version through
    # importlib.metadata, which imports `email`): on the outbox thread, beside a
    # CPU-bound job that lets go of the GIL every 5 ms, those imports took longer
    # than a QC worker's whole run, and its progress reached Redis only at exit.
    if target.kind != "cluster":  # a Cluster client connects as it is built: not here
        connect().close()
    else:
        from redis.utils import get_lib_version

        get_lib_version()

    return outbox.Outbox(
        connect, keys.events_channel, claim,
        max_entries=outbox.env_number(outbox.ENV_MAX_ENTRIES, outbox.DEFAULT_MAX_ENTRIES),
        max_bytes=outbox.env_number(outbox.ENV_MAX_BYTES, outbox.DEFAULT_MAX_BYTES))


class JobContext:
    """A job program's reports: progress, fields, child keys and their writers."""

    def __init__(self, job_id: str | None = None, keys: Keys | None = None,
                 box: outbox.Outbox | None = None) -> None:
        self.job_id, self.keys, self.box = job_id, keys, box
        self._children: list[str] = []

    @classmethod
    def from_env(cls) -> JobContext:
        """The context of this job; a bad URL or prefix is one line on stderr, then no-ops."""
        job_id, url = os.environ.get(ENV_JOB_ID), os.environ.get(ENV_URL)
        if not job_id or not url:
            return cls()
        try:
            keys = Keys(validate_prefix(os.environ.get(ENV_PREFIX) or DEFAULT_PREFIX))
            parse_url(url)
        except UrlError as exc:
            print(f"gn-jobs: progress is not reported: {exc}", file=sys.stderr, flush=True)
            return cls()
        claim = os.environ.get(ENV_CLAIM) or None
        return cls(job_id, keys, outbox.shared(lambda: _make_outbox(url, keys, claim)))

    @property
    def active(self) -> bool:
        return self.box is not None and self.job_id is not None and self.keys is not None

    @property
    def _job_key(self) -> str:
        assert self.keys is not None and self.job_id is not None
        return self.keys.job(self.job_id)

    def progress(self, percent: float | None, message: str | None = None, *, force: bool = False,
                 **fields: object) -> None:
        """Report progress (0-100) and a message; the latest value of each field wins.

        Every call is kept (coalesced, never throttled away); `force` is accepted
        for callers written for the earlier throttled API.
        """
        if not self.active:
            return
        data: dict[str, str] = {}
        try:
            pct = float(percent) if percent is not None else math.nan
        except (TypeError, ValueError):
            pct = math.nan
        if math.isfinite(pct):
            data["progress"] = f"{max(0.0, min(100.0, pct)):.1f}"
        if message is not None:
            data["message"] = str(message)
        data.update({k: field_value(v) for k, v in fields.items()})
        assert self.box is not None and self.job_id is not None
        self.box.set_fields(self._job_key, self.job_id, "progress", data)

    def set(self, **fields: object) -> None:
        """Set fields of the job's hash (the latest value of each field wins)."""
        if self.active and fields:
            assert self.box is not None and self.job_id is not None
            self.box.set_fields(self._job_key, self.job_id, "fields",
                                {k: field_value(v) for k, v in fields.items()})

    def children(self, n: int) -> list[str]:
        """Name N more child keys and record all of them; returns the new names at once.

        Empty names when run by hand. Allocate in the parent, before the
        children start: each key has one writer for its whole life.
        """
        n = max(0, int(n))
        if not self.active:
            return ["" for _ in range(n)]
        assert self.keys is not None and self.box is not None and self.job_id is not None
        start = len(self._children)
        new = [self.keys.child(self.job_id, i) for i in range(start, start + n)]
        self._children.extend(new)
        self.box.set_fields(self._job_key, self.job_id, "children",
                            {"children": json.dumps(self._children)})
        return new

    def writer(self, key: str) -> ChildWriter | None:
        """The writer of one child key (None when run by hand)."""
        if not self.active or not key:
            return None
        assert self.box is not None and self.keys is not None and self.job_id is not None
        return ChildWriter(self.box, self.keys, self.job_id, key)

    def follow(self, keys: list[str]) -> None:
        """Have the outbox read these keys' latest entries now and then (see `latest`)."""
        if self.active and keys:
            assert self.box is not None
            self.box.follow([k for k in keys if k])

    def latest(self, keys: list[str]) -> list[dict[str, str] | None]:
        """The latest entry read of each followed key, from memory (None: none yet)."""
        if not self.active:
            return [None for _ in keys]
        assert self.box is not None
        return self.box.latest(keys)

    def add_dropped(self, n: int) -> None:
        """Count updates another process of this job could not store (in `updates_dropped`)."""
        if self.active:
            assert self.box is not None
            self.box.add_elsewhere(n)

    @property
    def not_stored(self) -> int:
        """This process's updates that did not reach Redis so far."""
        return self.box.not_stored if self.box is not None else 0

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait at most `timeout` s for queued reports to be stored (exit does this by itself)."""
        return self.box.flush(timeout) if self.box is not None else True
