"""5. Supervision cost: launch -> `running` vs a bare `python -c pass`, and the memory of N
concurrent supervisors (RSS and USS of each, the job's own processes not counted).

Supervisor memory is measured for the tree as it runs here and, side by side in
the same run, for a copy compiled to bytecode (what `pip install` leaves: with
`PYTHONDONTWRITEBYTECODE=1` and no `__pycache__`, as on this machine, every
supervisor compiles our modules from source at start) and, with `--baseline REF`,
for a git revision's package (e.g. `--baseline main`), as it runs here.

`python -m benchmarks.bench_launch [--jobs N] [--repeat R] [--baseline REF] [--strict]` runs
standalone and ends every process it started (checked before it returns).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from benchmarks.common import median, report, server
from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch, start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id

RSS_TARGET_MB = 15.0
LAUNCH_TARGET = 4.0
ROOT = Path(__file__).resolve().parent.parent


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


def _package_copy(dest: Path, ref: str | None, compiled: bool) -> Path:
    """`dest/gn_jobs_tui`: this tree's package (ref None) or a git revision's, compiled to
    bytecode or not. Supervisors started with `dest` as their working directory import it
    (`python -m` puts the working directory first on sys.path)."""
    if ref is None:
        shutil.copytree(ROOT / "gn_jobs_tui", dest / "gn_jobs_tui",
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "gn_jobs_tui"],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):  # 3.11.4+
                tar.extractall(dest, filter="data")
            else:
                tar.extractall(dest)  # noqa: S202 - our own repository's archive
    if compiled and not compileall.compile_dir(dest / "gn_jobs_tui", quiet=1):
        raise RuntimeError(f"could not compile {dest / 'gn_jobs_tui'}")
    return dest


@contextlib.contextmanager
def _cwd(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _memory(store: Store, config: Config, jobs: int, where: Path | None) -> dict[str, float]:
    """N jobs at once (/bin/sleep, so the job itself weighs nothing), their supervisors started
    from `where` (None: this tree); the median and largest RSS and the median USS, in MB."""
    t = time.perf_counter()
    with _cwd(where):
        ids = [start_job(store, config, job_fields(new_job_id(), "custom", "bench", ["sleep", "60"],
                                                   {}), audit="")
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
            if where is not None and Path(proc.cwd()) != where:
                raise RuntimeError(f"supervisor {proc.pid} did not start in {where}")
            mem = proc.memory_full_info()
            rss.append(mem.rss / 2**20)
            uss.append(mem.uss / 2**20)
        return {"parallel": parallel, "rss": median(rss), "rss_max": max(rss), "uss": median(uss)}
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


def run(jobs: int = 50, repeat: int = 7, strict: bool = False, baseline: str | None = None) -> bool:
    ok = True
    with server() as srv, tempfile.TemporaryDirectory(prefix="gjb-launch") as tmp:
        config = Config(srv.url, "launch")
        store = Store.from_url(srv.url, "launch")
        bare, ours = _launch_times(store, config, repeat)
        ratio = median(ours) / median(bare)
        report("launch: launch -> running", median(ours) * 1000, "ms")
        report("launch: bare python -c pass", median(bare) * 1000, "ms")
        report("launch: ratio", ratio, "x", target=f"<= {LAUNCH_TARGET:g}", ok=ratio <= LAUNCH_TARGET)
        ok &= ratio <= LAUNCH_TARGET

        here = _memory(store, config, jobs, None)
        report(f"launch: {jobs} at once, launch -> all running", here["parallel"], "s")
        report(f"supervisor RSS, median of {jobs}", here["rss"], "MB",
               target=f"<= {RSS_TARGET_MB:g}", ok=here["rss"] <= RSS_TARGET_MB,
               note="this tree, as it runs here" + (" (no bytecode cache: compiled at every start)"
                                                    if sys.dont_write_bytecode else ""))
        report(f"supervisor RSS, largest of {jobs}", here["rss_max"], "MB")
        report(f"supervisor USS (unshared), median of {jobs}", here["uss"], "MB",
               note="what each more running job costs")
        ok &= here["rss"] <= RSS_TARGET_MB

        built = _memory(store, config, jobs, _package_copy(Path(tmp) / "compiled", None, True))
        report(f"supervisor RSS, median of {jobs}, from bytecode", built["rss"], "MB",
               note="a compiled copy of this tree, as pip installs it")
        report(f"supervisor USS, median of {jobs}, from bytecode", built["uss"], "MB")

        if baseline:
            base = _memory(store, config, jobs, _package_copy(Path(tmp) / "base", baseline, False))
            report(f"supervisor RSS, median of {jobs}, {baseline}", base["rss"], "MB",
                   note=f"{baseline}'s package, as it runs here")
            report(f"supervisor USS, median of {jobs}, {baseline}", base["uss"], "MB")
            report(f"supervisor RSS, this tree vs {baseline}", here["rss"] / base["rss"], "x")
        store.r.close()
    return ok or not strict


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_launch")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--baseline", metavar="REF",
                        help="also measure the supervisors of this git revision (e.g. main)")
    a = parser.parse_args()
    sys.exit(0 if run(a.jobs, a.repeat, a.strict, a.baseline) else 1)


if __name__ == "__main__":
    main()
