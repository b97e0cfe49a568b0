"""The real job programs, run through the supervisor against the test server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import psutil
import pytest

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
    # One convention for signal deaths (128 + N), the one the supervisor records.
    assert f"child {victim} (exit code 137, SIGKILL: huge.tsv)" in (job.error or "")
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
    rates = []
    while not (retried := store.get_job(outcome.job_id)).is_terminal:
        rates.append(int(retried.extra.get("rows_per_s", "0")))
        time.sleep(0.05)
    assert retried.status == "completed" and retried.attempt == 2
    # Rates count the rows of this attempt only: never the resumed ones as if done at once.
    assert rates and max(rates) <= 5000, rates
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


def output_lines(store: Store, job_id: str) -> list[str]:
    """The job's output, asserting every line is there once and in order (`n` = 1..N)."""
    got = [(int(f[b"n"]), f[b"line"].decode()) for _, f in store.r.xrange(store.keys.output(job_id))]
    assert [n for n, _ in got] == list(range(1, len(got) + 1))
    return [line for _, line in got]


def test_jobs_complete_exactly_through_a_7s_server_pause(tmp_path: Path) -> None:
    """SIGSTOP the server for 7 s while sleep, insert-rows and qc-files jobs run."""
    from gn_jobs_tui.core.keys import TERMINAL_STATUSES
    from gn_jobs_tui.core.server import EmbeddedServer
    from tests.test_jobctx import stop

    srv = EmbeddedServer(tmp_path / "srv")
    srv.ensure()
    try:
        config = Config(srv.url, "pause")
        store = Store.from_url(config.url, config.prefix)
        planted = write_matrix(tmp_path / "a.tsv", 90_000, 20, plant={"fields": [70, 80_000],
                                                                      "numeric": [500]})
        planted += write_matrix(tmp_path / "b.tsv", 90_000, 20, plant={"missing": [9],
                                                                       "duplicates": [60_000]},
                                seed=2)
        write_matrix(tmp_path / "rows.tsv", 20_000, 4, seed=3)
        db = tmp_path / "t.sqlite"
        sleep_id = launch(store, config, "sleep", {"seconds": "12"})
        insert_id = launch(store, config, "insert-rows", {
            "file": str(tmp_path / "rows.tsv"), "database": str(db), "batch_size": "500",
            "max_rate": "2000"})
        qc_id = launch(store, config, "qc-files", {"files": f"{tmp_path}/a.tsv,{tmp_path}/b.tsv",
                                                   "workers": "2"})
        wait_for(lambda: int(store.get_job(insert_id).extra.get("committed", "0")) >= 1000
                 and store.get_job(sleep_id).status == "running"
                 and all(store.r.xlen(k) for k in store.get_job(qc_id).children or ["none"]),
                 what="every job under way")
        pid = srv.pid()
        assert pid
        paused_at = time.time()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(7)
        finally:
            os.kill(pid, signal.SIGCONT)
        ids = (sleep_id, insert_id, qc_id)
        # The raw status: right after the pause, lapsed heartbeats read as `lost` for a moment.
        jobs = wait_for(lambda: (js := [store.get_job(i) for i in ids]) and
                        all(j.status in TERMINAL_STATUSES for j in js) and js,
                        timeout=90, what="all three jobs to finish")
        assert [(j.status, j.exit_code) for j in jobs] == [("completed", 0)] * 3
        assert all(j.finished > paused_at for j in jobs)  # each one ran into the pause
        sleep_job, insert_job, qc_job = jobs

        lines = output_lines(store, sleep_id)
        assert lines[-1] == "done" and lines[:-1] == [line for line in lines[:-1]
                                                      if line.startswith("tick ")]
        assert [int(line.split()[1].rstrip(":")) for line in lines[:-1]] == list(range(len(lines) - 1))
        assert sleep_job.progress == 100.0 and sleep_job.message == "done"

        assert count_rows(db, "data_rows") == (20_000, 20_000)
        assert insert_job.extra["rows_done"] == "20000" and insert_job.progress == 100.0
        assert output_lines(store, insert_id)[-1] == "inserted 20000 rows into data_rows"

        found = set()
        for key in qc_job.children:
            got = records(store, key)
            assert [int(e["n"]) for e in got] == list(range(1, len(got) + 1))
            assert got[0]["kind"] == "start" and got[-1]["kind"] == "finish"
            found |= {(e["file"], int(e["line"]), e["check"]) for e in got if e["kind"] == "record"}
        assert found == set(planted) and qc_job.errors == len(planted)
        assert qc_job.progress == 100.0
        assert output_lines(store, qc_id)[-1].startswith(f"{len(planted)} errors in 2 files")
        assert not any("not stored" in line for i in ids for line in output_lines(store, i))
    finally:
        stop(srv)


def launcher_inputs(tmp_path: Path) -> dict[str, dict[str, str]]:
    """One valid set of parameters per job type: each rule test breaks exactly one of them."""
    write_matrix(tmp_path / "a.tsv", 20, 3)
    write_matrix(tmp_path / "rows.tsv", 20, 3)
    (tmp_path / "sub").mkdir()
    return {
        "sleep": {"seconds": "1", "exit_code": "0"},
        "qc-files": {"files": str(tmp_path / "a.tsv"), "workers": "2", "checks": "header,fields",
                     "delimiter": "tab", "missing_threshold": "0.5"},
        "insert-rows": {"file": str(tmp_path / "rows.tsv"), "database": str(tmp_path / "t.sqlite"),
                        "table": "t1", "batch_size": "10", "on_bad_rows": "skip",
                        "delimiter": "auto", "numeric": "yes", "max_rate": "0"},
    }


#: (job type, parameter, bad value, what the message says). `{tmp}` is the test's directory,
#: where a.tsv, rows.tsv and sub/ exist: each bad value would pass every other rule.
LAUNCHER_RULES = [
    ("sleep", "color", "red", "unknown parameter"),
    ("qc-files", "files", None, "is required"),
    ("qc-files", "files", "  ", "is required"),
    ("sleep", "seconds", "0" * 4999 + "1", "too long"),  # the number itself is fine: 1
    ("qc-files", "workers", "two", "'two' is not a whole number"),
    ("qc-files", "workers", "0", "must be at least 1"),
    ("qc-files", "workers", "65", "must be at most 64"),
    ("sleep", "seconds", "inf", "must be a finite number"),
    ("sleep", "seconds", "-1", "must be at least 0"),
    ("qc-files", "missing_threshold", "1.5", "must be at most 1"),
    ("insert-rows", "numeric", "maybe", "'maybe' is not yes/no"),
    ("insert-rows", "on_bad_rows", "ignore", "'ignore' is not one of fail, skip"),
    ("qc-files", "delimiter", "tab,comma", "choose one of auto, tab, comma"),
    ("qc-files", "checks", "header,spelling", "'spelling' is not one of"),
    ("insert-rows", "file", "-rows.tsv", "a path may not start with '-'"),  # exists in the cwd
    ("insert-rows", "file", "{tmp}/sub/../rows.tsv", "'..' is not allowed in a path"),
    ("insert-rows", "file", "{tmp}/missing.tsv", "not a readable file"),
    ("insert-rows", "file", "{tmp}/sub", "not a readable file"),
    ("qc-files", "files", "{tmp}/a.tsv,{tmp}/sub/../a.tsv", "'..' is not allowed in a path"),
    ("qc-files", "files", "{tmp}/*.nothing", "no file matches"),
    ("qc-files", "files", "{tmp}/a.tsv {tmp}/sub", "not a readable file"),
    ("insert-rows", "table", "t; DROP TABLE t", "letters, digits and _ only"),
    ("insert-rows", "table", "1t", "letters, digits and _ only"),
    ("insert-rows", "database", "{tmp}/sub/../t.sqlite", "'..' is not allowed in a path"),
    ("insert-rows", "database", "sqlite:///{tmp}/sub/../t.sqlite", "'..' is not allowed in a path"),
    ("insert-rows", "database", "-t.sqlite", "a path may not start with '-'"),
    ("insert-rows", "database", "{tmp}/nodir/t.sqlite", "no such directory"),
    ("insert-rows", "database", "{tmp}/sub", "is a directory"),
    ("insert-rows", "database", "http://u:secret@h/db", "unknown database URL 'http://u:***@h/db'"),
]


@pytest.mark.parametrize("job_type, name, bad, says", LAUNCHER_RULES)
def test_each_launcher_rule_alone_rejects_and_creates_nothing(
        store: Store, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        job_type: str, name: str, bad: str | None, says: str) -> None:
    from gn_jobs_tui.core.jobtypes import ParamError, registry

    inputs = launcher_inputs(tmp_path)[job_type]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-rows.tsv").write_bytes((tmp_path / "rows.tsv").read_bytes())
    registry().get(job_type).validate(inputs)  # the inputs pass every rule ...
    params = dict(inputs)
    if bad is None:
        del params[name]
    else:
        params[name] = bad.replace("{tmp}", str(tmp_path))
    with pytest.raises(ParamError) as caught:  # ... but this one
        launch(store, config, job_type, params)
    assert list(caught.value.problems) == [name]
    assert says in caught.value.problems[name]
    assert store.count() == 0


def test_launcher_generic_rules_on_a_text_parameter(store: Store, config: Config) -> None:
    """Length and NUL are checked before any kind: shown on a plain text parameter."""
    from gn_jobs_tui.core.jobtypes import JobType, Param, ParamError, Registry, python_module

    reg = Registry()
    reg.register(JobType("note", "test", (Param("text", "str", required=True),),
                         lambda v: python_module("gn_jobs_tui.jobs.sleep", "--seconds", "0")))
    reg.get("note").validate({"text": "a ; rm -rf / $(x) `y`"})
    for bad, says in (("a\x00b", "contains a NUL byte"), ("x" * 4097, "too long")):
        with pytest.raises(ParamError) as caught:
            launch(store, config, "note", {"text": bad}, reg=reg)
        assert caught.value.problems == {"text": caught.value.problems["text"]}
        assert says in caught.value.problems["text"]
    with pytest.raises(KeyError):
        launch(store, config, "not-registered", {}, reg=reg)
    assert store.count() == 0


def test_path_parameters_are_absolute_at_launch(store: Store, config: Config, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths are resolved where the launcher runs; the job writes exactly there."""
    from gn_jobs_tui.core.jobtypes import registry

    write_matrix(tmp_path / "rows.tsv", 30, 3)
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    job_id = launch(store, config, "insert-rows", {"file": "rows.tsv", "database": "out/t.sqlite"})
    job = final(store, job_id)
    assert job.status == "completed"
    assert job.params["file"] == str(tmp_path / "rows.tsv")
    assert job.params["database"] == str(tmp_path / "out" / "t.sqlite")
    assert str(tmp_path / "out" / "t.sqlite") in job.command
    assert count_rows(tmp_path / "out" / "t.sqlite", "data_rows") == (30, 30)
    # What the launcher form shows beside a field: the resolved value, passwords hidden.
    params = {p.name: p for p in registry().get("insert-rows").params}
    assert params["file"].preview("rows.tsv") == str(tmp_path / "rows.tsv")
    assert params["database"].preview("sqlite:///t.sqlite") == f"sqlite:///{tmp_path}/t.sqlite"
    assert params["database"].preview("postgresql://u:pw@db/x") == "postgresql://u:***@db/x"
    assert params["database"].preview("../t.sqlite") is None
    assert params["numeric"].display(True) == "yes"
