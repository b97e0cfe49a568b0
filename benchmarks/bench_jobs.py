"""Job programs: QC MB/s and peak RSS on a large file; insert-rows rows/s into SQLite."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import guard, report
from gn_jobs_tui.jobs.samples import write_matrix


def run(rows: int = 1_500_000, samples: int = 40, insert_rows: int = 200_000) -> None:
    guard()  # its QC workers are processes too; it starts no server
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.tsv"
        write_matrix(big, rows, samples, plant={"numeric": [10, rows // 2]})
        size_mb = big.stat().st_size / 1e6
        # One QC worker on the whole file, in its own process: its peak RSS is its own.
        # The worker reports its own peak RSS from VmHWM, which belongs to its
        # own address space: ru_maxrss survives fork+exec on Linux, so it would
        # report this (large) benchmark process's peak instead.
        code = ("import runpy, sys\n"
                f"sys.argv = ['qc', '--worker', '-', {str(big)!r}]\n"
                "try:\n    runpy.run_module('gn_jobs_tui.jobs.qc_files', run_name='__main__')\n"
                "except SystemExit:\n    pass\n"
                "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
                "print('PEAK', hwm.split()[1])\n")
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True).stdout
        elapsed = time.perf_counter() - t
        peak_mb = int(out.split("PEAK")[-1]) / 1024
        report(f"qc-files: {size_mb:.0f} MB file checked", size_mb / elapsed, "MB/s")
        report("qc-files: worker peak RSS", peak_mb, "MB", note=f"file {size_mb:.0f} MB")
        data = Path(tmp) / "rows.tsv"
        write_matrix(data, insert_rows, 6, seed=3)
        db = Path(tmp) / "t.sqlite"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gn_jobs_tui.jobs.insert_rows", "--database",
                        str(db), "--batch-size", "2000", str(data)], check=True,
                       stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM data_rows").fetchone()[0] == insert_rows
        report("insert-rows: rows/s into SQLite (batches of 2000)", insert_rows / elapsed, "rows/s")


if __name__ == "__main__":
    run()
