"""Processors on fixed inputs, compared as plain text (Rich console export)."""

from __future__ import annotations

from rich.console import Console

from gn_jobs_tui.core.model import parse_job
from gn_jobs_tui.core.outputs import KeyState, apply_chunk
from gn_jobs_tui.processors import GENERIC, for_type

NOW = 1_700_000_600.0
BASE = {"job_id": "0123456789abcdef", "user_id": "alice", "created": "1700000000",
        "started": "1700000001", "command": '["python", "-m", "job"]', "host": "node1"}


def render(renderable: object) -> str:
    console = Console(width=100, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(renderable)
    return console.export_text()


def stream(key: str, entries: list[dict[str, str]]) -> KeyState:
    state = KeyState(key)
    flat = [[f"{i + 1}-0".encode(), [x for kv in e.items() for x in (kv[0].encode(), kv[1].encode())]]
            for i, e in enumerate(entries)]
    apply_chunk(state, [b"stream", flat, len(flat)])
    return state


def qc_children() -> list[KeyState]:
    a = stream("P:jobs:j:children:0", [
        {"kind": "start", "files": '["a.tsv"]'},
        {"kind": "progress", "done": "500", "total": "1000"},
        {"kind": "record", "file": "a.tsv", "line": "12", "column": "", "check": "fields",
         "value": "3", "message": "3 fields, header has 5"},
        {"kind": "record", "file": "a.tsv", "line": "40", "column": "S002", "check": "numeric",
         "value": "abc", "message": "not a number"},
        {"kind": "record", "file": "a.tsv", "line": "41", "column": "S003", "check": "numeric",
         "value": "x", "message": "not a number"},
    ])
    b = stream("P:jobs:j:children:1", [
        {"kind": "start", "files": '["b.tsv"]'},
        {"kind": "record", "file": "b.tsv", "line": "7", "column": "", "check": "duplicates",
         "value": "m1", "message": "id already on line 2"},
        {"kind": "finish", "status": "completed", "counts": '{"duplicates": 1}'},
    ])
    damaged = KeyState("P:jobs:j:children:2")
    apply_chunk(damaged, [b"list", [b'{"kind": "record", "file": "c.tsv"', b"\xff\xfe"], 2])
    return [a, b, damaged]


def test_qc_job_view(snapshot) -> None:
    job = parse_job("0123456789abcdef", {**BASE, "job_type": "qc-files", "status": "running",
                                         "progress": "40", "children": '["a","b","c"]'})
    text = render(for_type("qc-files").job_view(job, None, qc_children(), NOW))
    assert "4 problems" in text and "damaged" not in text.split("workers")[0]
    assert text == snapshot


def test_qc_child_view_with_damaged_entries(snapshot) -> None:
    job = parse_job("0123456789abcdef", {**BASE, "job_type": "qc-files", "status": "running"})
    children = qc_children()
    text = render(for_type("qc-files").child_view(job, children[2]))
    assert "damaged" in text
    assert text == snapshot
    assert render(for_type("qc-files").child_view(job, children[0])) == snapshot


def test_qc_verdict_completed_with_errors_even_on_exit_zero() -> None:
    job = parse_job("j", {**BASE, "job_type": "qc-files", "status": "completed",
                          "exit_code": "0", "errors": "7"})
    verdict = for_type("qc-files").verdict(job)
    assert verdict.label == "done, 7 errors" and verdict.status == "completed"


def test_insert_view(snapshot) -> None:
    job = parse_job("0123456789abcdef", {**BASE, "job_type": "insert-rows", "status": "running",
                                         "progress": "25", "rows_done": "25000",
                                         "rows_total": "100000", "rows_per_s": "5000",
                                         "committed": "25000", "bad_rows": "2"})
    output = stream("P:jobs:j:output", [{"n": "1", "stream": "err",
                                         "line": "bad row at line 17: not a number: 'x'"}])
    text = render(for_type("insert-rows").job_view(job, output, [], NOW))
    assert "25,000 of 100,000 (25%)" in text and "eta" in text
    assert text == snapshot


def test_generic_view_of_a_foreign_damaged_job(snapshot) -> None:
    job = parse_job("legacy", {b"job_id": b"legacy", b"status": b"success", b"job_type": b"old",
                               b"message": b"caf\xe9", b"created": b"soon"})
    output = KeyState("P:jobs:legacy:output")
    apply_chunk(output, [b"list", [b"line one", b"Traceback (most recent call last):",
                                   b'  File "x.py", line 1', b"ValueError: boom"], 4])
    view = render(GENERIC.job_view(job, output, [], NOW))
    assert "damaged" in view and "not a success" in view
    assert view == snapshot
    assert render(GENERIC.output_view(job, output)) == snapshot


def test_generic_verdicts() -> None:
    ok = parse_job("a", {**BASE, "job_type": "x", "status": "completed", "exit_code": "0"})
    tb = parse_job("b", {**BASE, "job_type": "x", "status": "completed",
                         "error": "Traceback (most recent call last):\nValueError"})
    weird = parse_job("c", {**BASE, "job_type": "x", "status": "paused"})
    assert GENERIC.verdict(ok).label == "completed"
    assert GENERIC.verdict(tb).label == "failed (traceback)"
    assert GENERIC.verdict(weird).label == "paused"


def test_truncated_output_is_marked() -> None:
    out = stream("P:jobs:j:output", [{"n": "501", "line": "late line"}])
    job = parse_job("j", {**BASE, "job_type": "x", "status": "running"})
    assert "500 earlier lines truncated" in render(GENERIC.output_view(job, out))
