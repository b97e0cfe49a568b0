"""The real job programs, run through the supervisor against the test server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import psutil

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.jobs.samples import write_matrix
from gn_jobs_tui.processors import for_type
from tests.conftest import wait_for


def final(store: Store, job_id: str, timeout: float = 60.0):
    return wait_for(lambda: (j := store.get_job(job_id)) and j.is_terminal and j,
                    timeout=timeout, what=f"job {job_id} to finish")


def records(store: Store, key: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in store.r.xrange(key)]


def test_qc_finds_exactly_the_planted_errors_in_the_right_child_keys(
        store: Store, config: Config, tmp_path: Path) -> None:
    expected = []
    expected += write_matrix(tmp_path / "a.tsv", 400, 6, plant={"fields": [10, 200],
                                                               "numeric": [50]})
    expected += write_matrix(tmp_path / "b.tsv", 300, 6, plant={"missing": [7],
                                                               "duplicates": [99]}, seed=2)
    expected += write_matrix(tmp_path / "c.csv", 300, 4, sep=",", plant={"decode": [33]},
                             header_dup=True, seed=3)
    expected += write_matrix(tmp_path / "d.tsv", 200, 3, seed=4)  # clean
    job_id = launch(store, config, "qc-files", {"files": str(tmp_path / "*.?sv"), "workers": "2"},
                    user="qa")
    job = final(store, job_id)
    assert job.status == "completed" and job.exit_code == 0
    assert len(job.children) == 2
    found = set()
    for key in job.children:
        entries = records(store, key)
        kinds = [e["kind"] for e in entries]
        assert kinds[0] == "start" and kinds[-1] == "finish"
        mine = set(json.loads(entries[0]["files"]))
        for e in entries:
            if e["kind"] == "record":
                # Each child wrote only about its own files, into its own key.
                assert any(f.endswith(e["file"]) for f in mine)
                found.add((e["file"], int(e["line"]), e["check"]))
    assert found == set(expected)
    assert job.errors == len(expected)
    assert for_type("qc-files").verdict(job).label == f"done, {len(expected)} errors"


def test_qc_clean_files_pass(store: Store, config: Config, tmp_path: Path) -> None:
    write_matrix(tmp_path / "ok.tsv", 500, 5)
    job = final(store, launch(store, config, "qc-files", {"files": str(tmp_path / "ok.tsv")}))
    assert job.errors == 0 and for_type("qc-files").verdict(job).label == "passed"


def test_qc_worker_crash_is_reported_and_other_results_kept(
        store: Store, config: Config, tmp_path: Path) -> None:
    write_matrix(tmp_path / "small.tsv", 100, 4, plant={"numeric": [5]})
    write_matrix(tmp_path / "huge.tsv", 400_000, 30, seed=9)
    job_id = launch(store, config, "qc-files", {"files": f"{tmp_path}/small.tsv,{tmp_path}/huge.tsv",
                                                "workers": "2"})
    job = wait_for(lambda: (j := store.get_job(job_id)) and len(j.children) == 2 and j,
                   what="children recorded")
    # Which child has the huge file? Kill that worker process with SIGKILL.
    def starts() -> dict[str, dict[str, str]] | None:
        s = {k: records(store, k)[0] for k in job.children if store.r.xlen(k)}
        return s if len(s) == 2 else None

    started = wait_for(starts, what="workers started")
    victim_key = next(k for k, e in started.items() if "huge.tsv" in e["files"])
    os.kill(int(started[victim_key]["pid"]), signal.SIGKILL)
    job = final(store, job_id)
    assert job.status == "failed"
    victim = job.children.index(victim_key)
    assert f"child {victim} (exit code -9: huge.tsv)" in (job.error or "")
    survivor = records(store, job.children[1 - victim])
    assert survivor[-1]["kind"] == "finish"
    assert [e["line"] for e in survivor if e["kind"] == "record"] == ["5"]


def count_rows(db: Path, table: str) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        total = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        distinct = conn.execute(f"SELECT COUNT(DISTINCT row_id) FROM {table}").fetchone()[0]
    return total, distinct


def test_insert_clean_run_matches_input(store: Store, config: Config, tmp_path: Path) -> None:
    write_matrix(tmp_path / "rows.tsv", 2_345, 4)
    db = tmp_path / "t.sqlite"
    job = final(store, launch(store, config, "insert-rows",
                              {"file": str(tmp_path / "rows.tsv"), "database": str(db),
                               "batch_size": "500"}))
    assert job.status == "completed"
    assert count_rows(db, "data_rows") == (2_345, 2_345)
    assert job.extra["rows_done"] == "2345" and job.extra["rows_total"] == "2345"


def test_insert_killed_midway_then_retried_resumes_without_duplicates(
        store: Store, config: Config, tmp_path: Path) -> None:
    write_matrix(tmp_path / "rows.tsv", 20_000, 4)
    db = tmp_path / "t.sqlite"
    job_id = launch(store, config, "insert-rows", {"file": str(tmp_path / "rows.tsv"),
                                                   "database": str(db), "batch_size": "250",
                                                   "max_rate": "5000"})
    wait_for(lambda: int(store.get_job(job_id).extra.get("committed", "0")) >= 2000,
             what="some batches committed")
    control.kill(store, job_id)
    killed = final(store, job_id)
    assert killed.status == "killed"
    committed, distinct = count_rows(db, "data_rows")
    assert committed % 250 == 0 and committed == distinct and 0 < committed < 20_000
    assert f"{committed} rows committed" in killed.message
    outcome = control.retry(store, config, job_id)
    retried = final(store, outcome.job_id)
    assert retried.status == "completed" and retried.attempt == 2
    assert count_rows(db, "data_rows") == (20_000, 20_000)
    out = [f[b"line"].decode() for _, f in store.r.xrange(store.keys.output(outcome.job_id))]
    assert out[0] == f"resuming after line {committed + 1}: {committed} rows already committed"


def test_insert_bad_rows_fail_or_skip(store: Store, config: Config, tmp_path: Path) -> None:
    write_matrix(tmp_path / "bad.tsv", 1_000, 4, plant={"numeric": [120, 930], "fields": [400]})
    db = tmp_path / "t.sqlite"
    failed = final(store, launch(store, config, "insert-rows",
                                 {"file": str(tmp_path / "bad.tsv"), "database": str(db),
                                  "table": "failing", "batch_size": "100"}))
    assert failed.status == "failed" and "line 120" in failed.message
    # Only whole batches before the bad row: line 120 is in the 2nd batch.
    assert count_rows(db, "failing") == (100, 100)
    skipped = final(store, launch(store, config, "insert-rows",
                                  {"file": str(tmp_path / "bad.tsv"), "database": str(db),
                                   "table": "skipping", "on_bad_rows": "skip"}))
    assert skipped.status == "completed" and skipped.extra["bad_rows"] == "3"
    assert count_rows(db, "skipping") == (997, 997)
    lines = [f[b"line"].decode() for _, f in store.r.xrange(store.keys.output(skipped.job_id))]
    assert {"bad row at line 120: not a number: 'abc'", "bad row at line 400: 4 fields, header has 5",
            "bad row at line 930: not a number: 'abc'"} <= set(lines)


def test_bad_launcher_parameters_create_nothing(store: Store, config: Config,
                                                tmp_path: Path) -> None:
    import pytest

    from gn_jobs_tui.core.jobtypes import ParamError

    bad = [("qc-files", {"files": "/nonexistent/*.tsv"}),
           ("qc-files", {"files": "../../etc/passwd"}),
           ("qc-files", {"files": str(tmp_path), "workers": "0"}),
           ("insert-rows", {"file": "; rm -rf /", "table": "x"}),
           ("insert-rows", {"file": str(tmp_path / "x"), "table": "t; DROP TABLE t"}),
           ("sleep", {"seconds": "9" * 5000})]
    for job_type, params in bad:
        with pytest.raises(ParamError):
            launch(store, config, job_type, params)
    assert store.count() == 0
    assert not any(p.info["name"] == "rm" for p in psutil.process_iter(["name"]))


def test_unreadable_and_empty_files_are_reported(tmp_path: Path) -> None:
    from gn_jobs_tui.jobs.delimited import check_file

    (tmp_path / "empty.tsv").write_bytes(b"")
    gone = [p.check for p in check_file(str(tmp_path / "gone.tsv"))]
    a_dir = [p.check for p in check_file(str(tmp_path))]
    empty = [(p.check, p.message) for p in check_file(str(tmp_path / "empty.tsv"))]
    assert gone == ["unreadable"] and a_dir == ["unreadable"]
    assert empty == [("header", "the file is empty")]
