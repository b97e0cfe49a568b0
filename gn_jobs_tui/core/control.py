"""Admin actions on existing jobs: kill and retry.

Kill records a durable request and publishes a notice; the job's own
supervisor, on whichever host, acts on it. Retry makes exactly one new job
even when many admins retry at once (WATCH/MULTI on the old job's hash).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis

from gn_jobs_tui.core import events
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.jobtypes import Registry, registry
from gn_jobs_tui.core.keys import RETRYABLE_STATUSES
from gn_jobs_tui.core.launcher import spawn_supervisor
from gn_jobs_tui.core.model import parse_job
from gn_jobs_tui.core.store import Store, StoreError, job_fields, new_job_id


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
    key = store.keys.job(job_id)
    with store.r.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key, store.keys.heartbeat(job_id))
                raw = pipe.hgetall(key)
                if not raw:
                    raise StoreError(f"no such job: {job_id}")
                alive = bool(pipe.exists(store.keys.heartbeat(job_id)))
                old = parse_job(job_id, raw, heartbeat_alive=alive)
                if old.retried_by:
                    return Outcome(True, f"already retried as {old.retried_by[:8]}",
                                   old.retried_by, changed=False)
                if old.effective_status not in RETRYABLE_STATUSES:
                    raise StoreError(f"job {job_id[:8]} is {old.effective_status}: only failed, "
                                     "killed or lost jobs can be retried")
                if old.job_type not in reg:
                    raise StoreError(f"job type {old.job_type!r} is not registered here: "
                                     "cannot rebuild its command")
                job_type = reg.get(old.job_type)
                values = job_type.validate(old.params or {})
                new_id = new_job_id()
                fields = job_fields(new_id, old.job_type, old.user_id, job_type.argv(values),
                                    values, attempt=(old.attempt or 1) + 1, retry_of=job_id)
                pipe.multi()
                store._queue_create(pipe, fields, why="retry")
                pipe.hset(key, "retried_by", new_id)
                pipe.publish(store.keys.events_channel, events.encode(job_id, "retry"))
                store._queue_audit(pipe, "retry", job_id, f"new job {new_id}")
                pipe.execute()
                break
            except redis.WatchError:
                continue  # someone else changed it: look again
    spawn_supervisor(config, new_id, env_extra)
    return Outcome(True, f"retried {job_id[:8]} as {new_id[:8]}", new_id)
