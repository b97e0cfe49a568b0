"""Job-side writes: child entries through the outbox vs the old synchronous pipelined XADD.

Figures, each from a real job-like subprocess against a throw-away server:
- time until N child records are stored: through JobContext's outbox (APPEND_ONCE
  batches, one background thread) vs a pipelined XADD loop in batches of 500 on
  the job's own thread (what ChildWriter did before);
- what the job's own loop pays per record call (it only queues);
- the job's loop while the server is paused (SIGSTOP) vs while it answers: the
  job must not notice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from benchmarks.common import report, server
from gn_jobs_tui.core.store import Store, job_fields, new_job_id

OUTBOX = """
    import json, time
    from gn_jobs_tui.core.jobctx import JobContext
    ctx = JobContext.from_env()
    [key] = ctx.children(1)
    w = ctx.writer(key)
    t = time.perf_counter()
    w.start(files=["big.tsv"])
    for i in range(_COUNT_):
        w.record(file="big.tsv", line=str(i), column="S007", check="numeric", value="abc",
                 message="not a number")
        if i % 100 == 0:
            ctx.progress(100.0 * i / _COUNT_, f"{i} of _COUNT_")
    w.finish("completed")
    loop = time.perf_counter() - t
    ok = ctx.flush(600)
    print(json.dumps({"loop": loop, "stored": time.perf_counter() - t, "ok": ok}), flush=True)
"""

PIPELINED = """
    import json, os, time
    import redis
    r = redis.Redis.from_url(os.environ["GN_JOBS_REDIS_URL"])
    key = os.environ["GN_JOBS_PREFIX"] + ":jobs:" + os.environ["GN_JOBS_JOB_ID"] + ":children:0"
    t = time.perf_counter()
    pending = []
    def flush():
        with r.pipeline(transaction=False) as pipe:
            for e in pending:
                pipe.xadd(key, e, maxlen=100000, approximate=True)
            pipe.publish("bench:events", "{}")
            pipe.execute()
        pending.clear()
    for i in range(_COUNT_):
        pending.append({"kind": "record", "ts": f"{time.time():.3f}", "file": "big.tsv",
                        "line": str(i), "column": "S007", "check": "numeric", "value": "abc",
                        "message": "not a number"})
        if len(pending) >= 500:
            flush()
    flush()
    print(json.dumps({"stored": time.perf_counter() - t}), flush=True)
"""


def _run(code: str, url: str, prefix: str, job_id: str, n: int) -> dict:
    env = dict(os.environ, GN_JOBS_JOB_ID=job_id, GN_JOBS_REDIS_URL=url, GN_JOBS_PREFIX=prefix)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code).replace("_COUNT_", str(n))],
                         env=env, check=True, capture_output=True, text=True, timeout=900).stdout
    return json.loads(out.strip().splitlines()[-1])


def _job(store: Store) -> str:
    job_id = new_job_id()
    store.create_job(job_fields(job_id, "bench", "bench", ["x"], {}), audit=None)
    return job_id


def run(n: int = 100_000, paused_n: int = 20_000) -> None:
    with server() as srv:
        store = Store.from_url(srv.url, "bench")
        best_outbox = best_pipe = None
        for _ in range(3):
            got = _run(OUTBOX, srv.url, "bench", _job(store), n)
            assert got["ok"]
            if best_outbox is None or got["stored"] < best_outbox["stored"]:
                best_outbox = got
            pipe = _run(PIPELINED, srv.url, "bench", _job(store), n)
            if best_pipe is None or pipe["stored"] < best_pipe["stored"]:
                best_pipe = pipe
        assert best_outbox is not None and best_pipe is not None
        report(f"child records stored, outbox vs pipelined XADD (n={n:,})",
               best_outbox["stored"] / best_pipe["stored"], "ratio",
               note=f"{n / best_outbox['stored']:,.0f} vs {n / best_pipe['stored']:,.0f} records/s")
        report("job-side cost of one record call (it only queues)",
               best_outbox["loop"] / n * 1e6, "µs")
        # The job's loop with the server answering, then with the server stopped (SIGSTOP).
        no_flush = OUTBOX.replace("ok = ctx.flush(600)", "ok = True")
        awake = min(_run(no_flush, srv.url, "bench", _job(store), paused_n)["loop"]
                    for _ in range(3))
        pid = srv.pid()
        assert pid
        code = textwrap.dedent(no_flush).replace("_COUNT_", str(paused_n))
        paused = []
        for _ in range(3):
            env = dict(os.environ, GN_JOBS_JOB_ID=_job(store), GN_JOBS_REDIS_URL=srv.url,
                       GN_JOBS_PREFIX="bench")
            os.kill(pid, signal.SIGSTOP)
            try:
                proc = subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                                        stdout=subprocess.PIPE)
                line = proc.stdout.readline()  # type: ignore[union-attr]
            finally:
                os.kill(pid, signal.SIGCONT)
            proc.wait(120)  # its exit flush stores everything once the server is back
            paused.append(json.loads(line)["loop"])
        report(f"job loop ({paused_n:,} records) with the server paused vs answering",
               min(paused) / awake, "ratio",
               note=f"{min(paused) * 1000:.0f} ms vs {awake * 1000:.0f} ms")
        store.r.close()


if __name__ == "__main__":
    run(20_000 if "quick" in sys.argv[1:] else 100_000)
