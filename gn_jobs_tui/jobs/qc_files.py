"""The `qc-files` job: quality checks across several large delimited files.

The parent splits the files among N worker processes, records N child keys
in its hash *before* starting them (the contract's children rule), then
waits. Each worker checks its files streaming and writes only to its own
child key: start, progress (bytes and lines of its total), one record per
problem, finish with counts. A worker that dies does not take the job's
record with it: the parent reports which child failed, the others' results
stay in their keys.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from gn_jobs_tui.core import procs
from gn_jobs_tui.core.jobctx import JobContext
from gn_jobs_tui.jobs.delimited import CHECKS, check_file


def split_files(files: list[str], workers: int) -> list[list[str]]:
    """Balance files among workers by size (largest first, to the lightest)."""
    n = max(1, min(workers, len(files)))
    buckets: list[list[str]] = [[] for _ in range(n)]
    loads = [0] * n

    def size(path: str) -> int:
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    for path in sorted(files, key=size, reverse=True):
        i = loads.index(min(loads))
        buckets[i].append(path)
        loads[i] += size(path)
    return buckets


def run_worker(key: str, files: list[str], checks: tuple[str, ...], delimiter: str,
               threshold: float) -> int:
    ctx = JobContext.from_env()
    writer = ctx.writer(key)
    total = 0
    for path in files:
        try:
            total += os.path.getsize(path)
        except OSError:
            pass  # reported as unreadable by check_file
    if writer:
        writer.start(files=files, bytes_total=str(total), pid=str(os.getpid()))
    counts: Counter[str] = Counter()
    base = 0
    last = 0.0

    def progress(done: int, size: int) -> None:
        nonlocal last
        now = time.monotonic()
        if writer and now - last >= 0.5:
            last = now
            writer.progress(base + done, total, file=os.path.basename(current))

    for current in files:
        for problem in check_file(current, checks, delimiter=delimiter, missing_threshold=threshold,
                                  counts=counts, on_progress=progress):
            if writer:
                writer.record(file=os.path.basename(problem.file), line=str(problem.line),
                              column=problem.column, check=problem.check, value=problem.value,
                              message=problem.message)
            else:
                print(json.dumps(problem.__dict__))
        try:
            base += os.path.getsize(current)
        except OSError:
            pass  # unreadable: already recorded
        if writer:
            writer.progress(base, total, file=os.path.basename(current))
    if writer:
        writer.finish("completed", errors=str(sum(counts.values())), counts=dict(counts))
    print(f"worker {key.rsplit(':', 1)[-1]}: {sum(counts.values())} problems in {len(files)} files",
          flush=True)
    return 0


def run_parent(files: list[str], workers: int, checks: tuple[str, ...], delimiter: str,
               threshold: float) -> int:
    ctx = JobContext.from_env()
    buckets = split_files(files, workers)
    keys = ctx.children(len(buckets))  # recorded before any child starts
    ctx.progress(0, f"checking {len(files)} files with {len(buckets)} workers", force=True)
    children: list[subprocess.Popen[bytes]] = []
    for key, bucket in zip(keys, buckets, strict=True):
        argv = [sys.executable, "-m", "gn_jobs_tui.jobs.qc_files", "--worker", key or "-",
                "--checks", ",".join(checks), "--delimiter", delimiter,
                "--missing-threshold", str(threshold), *bucket]
        children.append(subprocess.Popen(argv, preexec_fn=procs.die_with_parent))  # noqa: S603

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)
    codes = [c.wait() for c in children]
    failed = [(i, rc) for i, rc in enumerate(codes) if rc != 0]
    totals: Counter[str] = Counter()
    if ctx.store is not None:
        for key in keys:
            for _id, fields in ctx.store.r.xrevrange(key, count=1):
                if fields.get(b"kind") == b"finish":
                    totals.update(json.loads(fields.get(b"counts", b"{}")))
    errors = sum(totals.values())
    if failed:
        which = ", ".join(f"child {i} (exit code {rc}: {', '.join(os.path.basename(f) for f in buckets[i])})"
                          for i, rc in failed)
        message = f"{len(failed)} of {len(children)} workers failed: {which}"
        ctx.set(errors=str(errors), error=message, message=message)
        print(message, file=sys.stderr, flush=True)
        return 1
    summary = ", ".join(f"{n} {check}" for check, n in totals.most_common())
    message = f"{errors} errors in {len(files)} files ({summary})" if errors else \
        f"passed: {len(files)} files"
    ctx.set(errors=str(errors))
    ctx.progress(100, message, force=True)
    print(message, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gn-jobs-qc-files")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checks", default=",".join(CHECKS))
    parser.add_argument("--delimiter", default="auto", choices=["auto", "tab", "comma"])
    parser.add_argument("--missing-threshold", type=float, default=0.5)
    parser.add_argument("--worker", metavar="CHILD_KEY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    checks = tuple(c for c in args.checks.split(",") if c)
    if args.worker:
        key = "" if args.worker == "-" else args.worker
        return run_worker(key, args.files, checks, args.delimiter, args.missing_threshold)
    return run_parent(args.files, args.workers, checks, args.delimiter, args.missing_threshold)


if __name__ == "__main__":
    sys.exit(main())
