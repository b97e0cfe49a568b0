"""Every Redis key and channel name of the contract, built in one place.

Keeping the names here means the README's key table and the code cannot
drift apart silently: grep this module to see everything the project touches.
"""

from __future__ import annotations

from gn_jobs_tui.core import dialects
from gn_jobs_tui.core.tuples import NamedTuple  # typing's, without importing typing

DEFAULT_PREFIX = "gn-uploader"

#: Statuses this project writes.
QUEUED, RUNNING, COMPLETED, FAILED, KILLED, LOST = (
    "queued",
    "running",
    "completed",
    "failed",
    "killed",
    "lost",
)
#: Statuses other producers write, read as ours (the table lives in `dialects`).
STATUS_ALIASES = dialects.STATUS_ALIASES
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, KILLED, LOST})
#: Every status this project writes, each with its own status index.
OUR_STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, KILLED, LOST)
RETRYABLE_STATUSES = frozenset({FAILED, KILLED, LOST})
#: Fields the all-jobs table needs; the listing script fetches only these. They live here,
#: not in `model`, so the supervisor (whose scripts need their order) never loads `model`.
TABLE_FIELDS = (
    "job_id",
    "job_type",
    "user_id",
    "status",
    "created",
    "started",
    "finished",
    "host",
    "progress",
    "message",
    "exit_code",
    "error",
    "errors",
    "heartbeat",
    "attempt",
    "retry_of",
    "retried_by",
    "kill_requested",
)
#: What the listing fetches: our table fields, then every dialect's aliases.
LIST_FIELDS = (*TABLE_FIELDS, *dialects.ALIAS_SOURCES)


class Keys(NamedTuple):
    """Key names under one prefix `P`.

    A NamedTuple, not a dataclass: `dataclasses` costs the supervisor (one
    process per running job) over a megabyte of imports.
    """

    prefix: str = DEFAULT_PREFIX

    @property
    def jobs_index(self) -> str:
        """Sorted set of every job id, scored by `created`."""
        return f"{self.prefix}:jobs"

    @property
    def jobs_pattern(self) -> str:
        """SCAN pattern that finds job hashes (sub-keys are filtered out after)."""
        return f"{self.prefix}:jobs:*"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:jobs:{job_id}"

    def user_jobs(self, user_id: str) -> str:
        return f"{self.prefix}:users:{user_id}:jobs"

    @property
    def users_pattern(self) -> str:
        return f"{self.prefix}:users:*:jobs"

    def child(self, job_id: str, n: int) -> str:
        return f"{self.prefix}:jobs:{job_id}:children:{n}"

    def output(self, job_id: str) -> str:
        """Stream of the job process's stdout/stderr, written by its supervisor."""
        return f"{self.prefix}:jobs:{job_id}:output"

    def heartbeat(self, job_id: str) -> str:
        """String with a TTL, refreshed by the job's supervisor while it lives."""
        return f"{self.prefix}:jobs:{job_id}:heartbeat"

    def kill_request(self, job_id: str) -> str:
        """Durable kill request (JSON), deleted by the supervisor once acted on."""
        return f"{self.prefix}:jobs:{job_id}:kill"

    @property
    def heartbeats(self) -> str:
        """Sorted set: running job id -> when its heartbeat lapses (server clock, epoch s).

        Finding lapsed heartbeats is one ZRANGEBYSCORE, whatever the number running.
        """
        return f"{self.prefix}:heartbeats"

    @property
    def ids(self) -> str:
        """Sorted set, every score 0: job ids in lexical order, for short-id lookups."""
        return f"{self.prefix}:ids"

    def status_index(self, status: str) -> str:
        """Sorted set of the ids of jobs (written here) in one status, scored by `created`."""
        return f"{self.prefix}:status:{status}"

    def status_moves(self, job_id: str, status: str, created: float) -> list[tuple[object, ...]]:
        """Commands that file a job under `status` and no other (idempotent, any order)."""
        cmds: list[tuple[object, ...]] = [("ZREM", self.status_index(s), job_id)
                                          for s in OUR_STATUSES if s != status]
        if status in OUR_STATUSES:
            cmds.append(("ZADD", self.status_index(status), repr(float(created)), job_id))
        return cmds

    @property
    def events_channel(self) -> str:
        """Pub/sub channel: one small JSON event per write the project makes."""
        return f"{self.prefix}:events"

    @property
    def control_channel(self) -> str:
        """Pub/sub channel: notices to supervisors (kill), backed by durable keys."""
        return f"{self.prefix}:control"

    @property
    def audit_stream(self) -> str:
        """Stream of admin actions (launch, kill, retry, cleanup): who, what, when."""
        return f"{self.prefix}:audit"

    def sub_keys(self, job_id: str, children: list[str]) -> list[str]:
        """Every key that belongs to one job besides its hash."""
        return [
            self.output(job_id),
            self.heartbeat(job_id),
            self.kill_request(job_id),
            *children,
        ]

    def job_id_of(self, key: str) -> str | None:
        """The job id of a job hash key, or None for a sub-key or another key."""
        head = f"{self.prefix}:jobs:"
        if not key.startswith(head):
            return None
        rest = key[len(head) :]
        if not rest or ":" in rest:
            return None
        return rest

    def user_of(self, key: str) -> str | None:
        head, tail = f"{self.prefix}:users:", ":jobs"
        if key.startswith(head) and key.endswith(tail) and len(key) > len(head) + len(tail):
            return key[len(head) : -len(tail)]
        return None
