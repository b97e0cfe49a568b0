"""Jobs written exactly as other producers write them (DESIGN.md §1), for tests.

Each function writes through a plain redis-py client, the way that producer's
own code would: no helper of ours is involved, so the reader is tested
against the producer's shape, not against our idea of it.
"""

from __future__ import annotations

import shlex
import time
import uuid
from typing import Any


def gn_uploader_job(r: Any, prefix: str, *, user: str, status: str = "running",
                    percent: str = "31", job_type: str = "qc-rqtl2",
                    stdout: str = "reading bundle\nchecking genotypes\n", stderr: str = "",
                    children: str | None = None, ttl: int = 3600,
                    job_id: str | None = None) -> str:
    """gn-uploader's own job code: `jobid`, `job-type`, `percent`, a shell-quoted
    command, output in `stdout`/`stderr`; indexed per user only; a TTL."""
    job_id = job_id or str(uuid.uuid4())
    key = f"{prefix}:jobs:{job_id}"
    fields = {
        "jobid": job_id,
        "job-type": job_type,
        "status": status,
        "percent": percent,
        "command": shlex.join(["python3", "-m", "scripts.qc_on_rqtl2_bundle", "--redisuri",
                               "redis://localhost", "bundle with spaces.zip"]),
        "stdout": stdout,
        "stderr": stderr,
    }
    if children is not None:
        fields["children"] = children
    r.hset(key, mapping=fields)
    if ttl:
        r.expire(key, ttl)
    r.zadd(f"{prefix}:users:{user}:jobs", {job_id: time.time()})
    return job_id


def gn2_job(r: Any, *, prefix: str = "gn2", status: str = "completed",
            verdict: str | None = "error", return_code: str | None = "2",
            stdout: str = "computing correlations\n", stderr: str = "",
            job_id: str | None = None) -> str:
    """GeneNetwork2: `gn2:jobs:<uuid>`, `status` then `completion-status` and
    `return-code`; `stdout` grows in place, `stderr` at the end; no index."""
    job_id = job_id or str(uuid.uuid4())
    fields = {"job_id": job_id, "command": shlex.join(["python3", "-m", "scripts.corr",
                                                      "--dataset", "HC_M2_0606_P"]),
              "status": status, "stdout": stdout, "stderr": stderr}
    if verdict is not None:
        fields["completion-status"] = verdict
    if return_code is not None:
        fields["return-code"] = return_code
    r.hset(f"{prefix}:jobs:{job_id}", mapping=fields)
    return job_id


def gn2_manager(r: Any, prefix: str = "gn2") -> None:
    """`gn2:jobs:manager` is not a job: the runner's own errors, in `stderr`."""
    r.hset(f"{prefix}:jobs:manager", mapping={"stderr": "runner: could not fork\n"})
