"""Admin actions on existing jobs: kill and retry.

Kill records a durable request and publishes a notice; the job's own
supervisor, on whichever host, acts on it. Retry makes exactly one new job
however many admins retry at once: the new job's id is derived from the old
one (`retry_job_id`), and only the first create-if-absent of that hash wins,
a single-key decision that holds on a Cluster too (no cross-slot MULTI).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from gn_jobs_tui.core import events
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.jobtypes import Registry, registry
from gn_jobs_tui.core.keys import QUEUED, RETRYABLE_STATUSES
from gn_jobs_tui.core.launcher import spawn_supervisor
from gn_jobs_tui.core.store import Store, StoreError, job_fields, retry_job_id

#: A retry found queued and unclaimed this long after its creation lost its
#: creator before the supervisor started: a later retry call starts one.
ORPHAN_AFTER = 30.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    job_id: str | None = None
    changed: bool = True


def kill(store: Store, job_id: str, reason: str = "") -> Outcome:
    result = store.request_kill(job_id, reason)
    if result == -1:
        raise StoreError(f"no such job: {job_id}")
    if result == 0:
        job = store.get_job(job_id)
        status = job.effective_status if job else "finished"
        return Outcome(True, f"job {job_id[:8]} is already {status}: nothing to kill", job_id,
                       changed=False)
    return Outcome(True, f"kill requested for {job_id[:8]}; its supervisor will stop it", job_id)


def retry(store: Store, config: Config, job_id: str, reg: Registry | None = None,
          env_extra: Mapping[str, str] | None = None) -> Outcome:
    """New job with the same type, params and user; one new job however many retry."""
    store.check_writable("retry")
    reg = reg or registry()
    old = store.get_job(job_id)
    if old is None:
        raise StoreError(f"no such job: {job_id}")
    new_id = retry_job_id(job_id)
    if old.retried_by and old.retried_by != new_id:
        return Outcome(True, f"already retried as {old.retried_by[:8]}", old.retried_by,
                       changed=False)
    existing = store.get_job(new_id)
    if existing is not None:
        _repair(store, config, old.job_id, existing, env_extra)
        return Outcome(True, f"already retried as {new_id[:8]}", new_id, changed=False)
    if old.effective_status not in RETRYABLE_STATUSES:
        raise StoreError(f"job {job_id[:8]} is {old.effective_status}: only failed, "
                         "killed or lost jobs can be retried")
    if old.job_type not in reg:
        raise StoreError(f"job type {old.job_type!r} is not registered here: "
                         "cannot rebuild its command")
    job_type = reg.get(old.job_type)
    values = job_type.validate(old.params or {})
    fields = job_fields(new_id, old.job_type, old.user_id, job_type.argv(values), values,
                        attempt=(old.attempt or 1) + 1, retry_of=job_id)
    if not store.create_if_absent(fields, why="retry"):
        return Outcome(True, f"already retried as {new_id[:8]}", new_id, changed=False)
    # Only the one caller that created the job gets here: mark the old one, then run it.
    store._run([("HSET", store.keys.job(job_id), "retried_by", new_id),
                ("PUBLISH", store.keys.events_channel, events.encode(job_id, "retry")),
                store._audit_cmd("retry", job_id, f"new job {new_id}")], transaction=False)
    spawn_supervisor(config, new_id, env_extra)
    return Outcome(True, f"retried {job_id[:8]} as {new_id[:8]}", new_id)


def _repair(store: Store, config: Config, old_id: str, new: object,
            env_extra: Mapping[str, str] | None) -> None:
    """A retry whose creator stopped half way: finish what it left (idempotent)."""
    store.client.hsetnx(store.keys.job(old_id), "retried_by", getattr(new, "job_id", ""))
    created = getattr(new, "created", None) or time.time()
    if getattr(new, "status", "") == QUEUED and not getattr(new, "extra", {}).get("supervisor") \
            and time.time() - created > ORPHAN_AFTER:
        spawn_supervisor(config, getattr(new, "job_id", ""), env_extra)  # CLAIM: one runs it
