"""5. Supervision cost: launch -> `running` vs a bare `python -c pass`, and the memory of N
concurrent supervisors (RSS and USS of each, the job's own processes not counted).

`python -m benchmarks.bench_launch [--jobs N] [--repeat R] [--strict]` runs standalone and
ends every process it started (checked before it returns).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import psutil

from benchmarks.common import median, report, server
from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch, start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id

RSS_TARGET_MB = 15.0
LAUNCH_TARGET = 4.0


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _launch_times(store: Store, config: Config, repeat: int) -> tuple[list[float], list[float]]:
    bare, ours = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        job_id = launch(store, config, "sleep", {"seconds": "0.2"})
        _wait(lambda j=job_id: store.r.hget(store.keys.job(j), "status") == b"running", 30,
              "running")
        ours.append(time.perf_counter() - t)
    return bare, ours


def _supervisors(store: Store, ids: list[str]) -> dict[str, psutil.Process]:
    out = {}
    for job_id in ids:
        pid = store.r.hget(store.keys.job(job_id), "supervisor_pid")
        if pid:
            out[job_id] = psutil.Process(int(pid))
    return out


def _alive_children() -> list[psutil.Process]:
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def _end_all_started(timeout: float = 30.0) -> None:
    """Every supervisor and job this run started is gone before it returns (forced if need be)."""
    deadline = time.monotonic() + timeout
    while (left := _alive_children()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in left:
        print(f"launch: ending a process left behind: {proc.pid} {' '.join(proc.cmdline())[:80]}",
              file=sys.stderr)
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


def run(jobs: int = 50, repeat: int = 7, strict: bool = False) -> bool:
    ok = True
    with server() as srv:
        config = Config(srv.url, "launch")
        store = Store.from_url(srv.url, "launch")
        bare, ours = _launch_times(store, config, repeat)
        ratio = median(ours) / median(bare)
        report("launch: launch -> running", median(ours) * 1000, "ms")
        report("launch: bare python -c pass", median(bare) * 1000, "ms")
        report("launch: ratio", ratio, "x", target=f"<= {LAUNCH_TARGET:g}", ok=ratio <= LAUNCH_TARGET)
        ok &= ratio <= LAUNCH_TARGET

        # N jobs at once; /bin/sleep so the job itself weighs nothing.
        t = time.perf_counter()
        ids = [start_job(store, config, job_fields(new_job_id(), "custom", "bench", ["sleep", "60"], {}),
                         audit="")
               for _ in range(jobs)]
        sups: dict[str, psutil.Process] = {}
        try:
            _wait(lambda: all(store.r.hget(store.keys.job(j), "status") == b"running" for j in ids),
                  120, f"{jobs} jobs running")
            parallel = time.perf_counter() - t
            time.sleep(1.0)  # a few heartbeats and polls: steady state
            sups = _supervisors(store, ids)
            rss, uss = [], []
            for proc in sups.values():
                mem = proc.memory_full_info()
                rss.append(mem.rss / 2**20)
                uss.append(mem.uss / 2**20)
            report(f"launch: {jobs} at once, launch -> all running", parallel, "s")
            report(f"supervisor RSS, median of {jobs}", median(rss), "MB",
                   target=f"<= {RSS_TARGET_MB:g}", ok=median(rss) <= RSS_TARGET_MB)
            report(f"supervisor RSS, largest of {jobs}", max(rss), "MB")
            report(f"supervisor USS (unshared), median of {jobs}", median(uss), "MB",
                   note="what each more running job costs")
            ok &= median(rss) <= RSS_TARGET_MB
        finally:
            for job_id in ids:
                control.kill(store, job_id)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(p.is_running() and p.status() != "zombie"
                                                      for p in sups.values()):
                time.sleep(0.1)
            for proc in sups.values():  # anything still here after 30 s is ended by force
                if proc.is_running():
                    proc.send_signal(signal.SIGKILL)
            _end_all_started()
        store.r.close()
    return ok or not strict


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_launch")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    a = parser.parse_args()
    sys.exit(0 if run(a.jobs, a.repeat, a.strict) else 1)


if __name__ == "__main__":
    main()
