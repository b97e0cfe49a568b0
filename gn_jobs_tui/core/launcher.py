"""Start jobs: validate against the registry, create the job, spawn its supervisor.

Only registered job types start; a bad parameter raises `ParamError` before
anything is written. The supervisor is detached (new session), so quitting
or killing the console never stops a job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.jobctx import ENV_PREFIX, ENV_URL
from gn_jobs_tui.core.jobtypes import Registry, registry
from gn_jobs_tui.core.keys import FAILED
from gn_jobs_tui.core.server import state_dir
from gn_jobs_tui.core.store import Store, job_fields, new_job_id, whoami


def log_dir() -> Path:
    path = state_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def spawn_supervisor(config: Config, job_id: str, env_extra: Mapping[str, str] | None = None) -> int:
    """Start the detached supervisor of one job; returns its pid."""
    env = dict(os.environ)
    env.update({ENV_URL: config.url, ENV_PREFIX: config.prefix})
    env.update(env_extra or {})
    log_path = log_dir() / f"supervisor-{job_id}.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv of our own module
            [sys.executable, "-m", "gn_jobs_tui.core.supervisor", job_id],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True, env=env, close_fds=True,
        )
    # Reap it when it ends, so a long-lived console collects no zombies.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def start_job(store: Store, config: Config, fields: dict[str, str], audit: str = "launch",
              env_extra: Mapping[str, str] | None = None) -> str:
    """Create the job then start its supervisor; a failed start is recorded, not lost."""
    job_id = store.create_job(fields, audit=audit)
    try:
        spawn_supervisor(config, job_id, env_extra)
    except OSError as exc:
        store.update(job_id, "status", status=FAILED, finished=time.time(),
                     error=f"could not start the supervisor: {exc}")
        raise
    return job_id


def launch(store: Store, config: Config, type_name: str, raw_params: Mapping[str, Any],
           user: str | None = None, reg: Registry | None = None,
           env_extra: Mapping[str, str] | None = None) -> str:
    """Validate and launch one job of a registered type; returns its id."""
    store.check_writable("launch")
    reg = reg or registry()
    job_type = reg.get(type_name)  # KeyError for unregistered types
    values = job_type.validate(raw_params)  # ParamError, nothing created
    argv = job_type.argv(values)
    fields = job_fields(new_job_id(), job_type.name, user or whoami(), argv, values)
    return start_job(store, config, fields, env_extra=env_extra)
