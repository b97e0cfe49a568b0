"""The `qc-files` job: quality checks across several large delimited files.

The parent splits the files among N worker processes, records N child keys
in its hash *before* starting them (the contract's children rule), then
waits. Each worker checks its files streaming and writes only to its own
child key: start, progress (bytes and lines of its total), one record per
problem, finish with counts. While it waits, the parent follows its
workers' latest progress entries and reports the job's own progress from
them (weighted by bytes). Each worker also hands its totals to the parent
through a pipe, so the parent's verdict never waits on Redis. A worker that
dies does not take the job's record with it: the parent reports which child
failed, the others' results stay in their keys.
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
from gn_jobs_tui.core.text import plural
from gn_jobs_tui.jobs.delimited import CHECKS, check_file

#: How often the waiting parent looks at its workers' progress (from memory;
#: the outbox reads the keys at most twice a second).
FOLLOW_INTERVAL = 0.25


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reported as unreadable by check_file


def split_files(files: list[str], workers: int) -> list[list[str]]:
    """Balance files among workers by size (largest first, to the lightest)."""
    n = max(1, min(workers, len(files)))
    buckets: list[list[str]] = [[] for _ in range(n)]
    loads = [0] * n
    for path in sorted(files, key=file_size, reverse=True):
        i = loads.index(min(loads))
        buckets[i].append(path)
        loads[i] += file_size(path)
    return buckets


def exit_code_text(rc: int) -> str:
    """One convention for signal deaths, the shell's and the supervisor's: 128 + N."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"exit code {128 - rc}, {name}"
    return f"exit code {rc}"


def _exit_on_sigterm() -> None:
    # sys.exit runs the outbox's bounded exit flush; 128 + SIGTERM, as for any signal death.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def run_worker(key: str, files: list[str], checks: tuple[str, ...], delimiter: str,
               threshold: float, report_fd: int | None = None) -> int:
    _exit_on_sigterm()
    ctx = JobContext.from_env()
    writer = ctx.writer(key)
    total = sum(file_size(path) for path in files)
    if writer:
        writer.start(files=files, bytes_total=str(total), pid=str(os.getpid()))
    counts: Counter[str] = Counter()
    base = 0
    last = 0.0
    current = ""

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
        base += file_size(current)
        if writer:
            writer.progress(base, total, file=os.path.basename(current))
    dropped = writer.dropped if writer else 0
    if writer:
        writer.finish("completed", errors=str(sum(counts.values())), counts=dict(counts))
    if report_fd is not None:
        with os.fdopen(report_fd, "w") as report:
            json.dump({"counts": dict(counts), "dropped": dropped}, report)
    print(f"worker {key.rsplit(':', 1)[-1]}: {plural(sum(counts.values()), 'problem')} in "
          f"{plural(len(files), 'file')}",
          flush=True)
    return 0


def worker_fraction(entry: dict[str, str] | None, previous: float) -> float:
    """How far one worker is, from its latest entry (a record says nothing new)."""
    if entry is None:
        return previous
    kind = entry.get("kind")
    if kind == "finish":
        return 1.0
    if kind == "progress":
        try:
            done, total = float(entry.get("done", "")), float(entry.get("total", ""))
        except ValueError:
            return previous
        if total > 0:
            return max(previous, min(1.0, done / total))
    return previous


def overall(fractions: list[float], weights: list[int]) -> float:
    """Percent done over all workers, weighted by the bytes each one checks."""
    if not fractions:
        return 0.0
    if sum(weights) <= 0:
        weights = [1] * len(fractions)
    return 100.0 * sum(f * w for f, w in zip(fractions, weights, strict=True)) / sum(weights)


def _read_report(fd: int) -> dict:
    with os.fdopen(fd, "r") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def run_parent(files: list[str], workers: int, checks: tuple[str, ...], delimiter: str,
               threshold: float) -> int:
    ctx = JobContext.from_env()
    buckets = split_files(files, workers)
    weights = [sum(file_size(f) for f in bucket) for bucket in buckets]
    keys = ctx.children(len(buckets))  # recorded before any child starts
    start_msg = f"checking {plural(len(files), 'file')} with {plural(len(buckets), 'worker')}"
    ctx.progress(0, start_msg)
    children: list[subprocess.Popen[bytes]] = []
    reports: list[int] = []
    for key, bucket in zip(keys, buckets, strict=True):
        read_fd, write_fd = os.pipe()
        argv = [sys.executable, "-m", "gn_jobs_tui.jobs.qc_files", "--worker", key or "-",
                "--report-fd", str(write_fd), "--checks", ",".join(checks), "--delimiter", delimiter,
                "--missing-threshold", str(threshold), "--", *bucket]
        children.append(subprocess.Popen(argv, preexec_fn=procs.die_with_parent,  # noqa: S603
                                         pass_fds=(write_fd,)))
        os.close(write_fd)
        reports.append(read_fd)

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()
        sys.exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    # Follow the workers: the job's own progress is theirs, weighted by bytes.
    ctx.follow(keys)
    fractions = [0.0] * len(children)
    shown = 0.0
    while True:
        codes = [c.poll() for c in children]
        if all(rc is not None for rc in codes):
            break
        latest = ctx.latest(keys)
        fractions = [1.0 if rc == 0 else worker_fraction(entry, f)
                     for entry, f, rc in zip(latest, fractions, codes, strict=True)]
        pct = min(99.9, overall(fractions, weights))
        if pct >= shown + 0.1:
            shown = pct
            done = sum(1 for rc in codes if rc is not None)
            ctx.progress(pct, f"{start_msg}: {pct:.0f}%, {done} of {len(children)} workers done")
        time.sleep(FOLLOW_INTERVAL)
    ctx.follow([])
    totals: Counter[str] = Counter()
    dropped = 0
    for fd in reports:
        report = _read_report(fd)
        counts = report.get("counts")
        if isinstance(counts, dict):
            totals.update({str(k): int(v) for k, v in counts.items() if isinstance(v, int)})
        if isinstance(report.get("dropped"), int):
            dropped += report["dropped"]
    ctx.add_dropped(dropped)
    errors = sum(totals.values())
    failed = [(i, c.returncode) for i, c in enumerate(children) if c.returncode != 0]
    if failed:
        which = ", ".join(f"child {i} ({exit_code_text(rc)}: "
                          f"{', '.join(os.path.basename(f) for f in buckets[i])})" for i, rc in failed)
        message = f"{len(failed)} of {len(children)} workers failed: {which}"
        ctx.set(errors=str(errors), error=message, message=message)
        print(message, file=sys.stderr, flush=True)
        return 1
    summary = ", ".join(f"{n} {check}" for check, n in totals.most_common())
    message = f"{plural(errors, 'error')} in {plural(len(files), 'file')} ({summary})" if errors \
        else f"passed: {plural(len(files), 'file')}"
    ctx.set(errors=str(errors))
    ctx.progress(100, message)
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
    parser.add_argument("--report-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    checks = tuple(c for c in args.checks.split(",") if c)
    if args.worker:
        key = "" if args.worker == "-" else args.worker
        return run_worker(key, args.files, checks, args.delimiter, args.missing_threshold,
                          args.report_fd)
    return run_parent(args.files, args.workers, checks, args.delimiter, args.missing_threshold)


if __name__ == "__main__":
    sys.exit(main())
