"""The model's exact results: every field, every damage note, both parsing paths.

Written against the mutation run (`.ci/mutation model`): each test pins a
result that a one-token change in `core/model.py` or `core/dialects.py` would
alter. Whole `Job`s are compared (dataclass equality), so a field read from the
wrong name, dropped, or converted differently fails. The listing path is also
read through a real server, as the console reads it.
"""

from __future__ import annotations

import json
import sys

import pytest

from gn_jobs_tui.core import dialects, model
from gn_jobs_tui.core.model import (
    EMPTY_EXTRA,
    LIST_FIELDS,
    MAX_TEXT,
    MISSING,
    Job,
    looks_like_a_job,
    normalise_status,
    parse_job,
    parse_table_row,
    to_text,
)
from gn_jobs_tui.core.store import Store

FULL = {
    "job_id": "j1",
    "job_type": "qc-files",
    "user_id": "alice",
    "status": "running",
    "command": '["python3", "-m", "x", "a b"]',
    "created": "100.5",
    "params": '{"files": ["a.tsv"]}',
    "started": "101.25",
    "finished": "110",
    "host": "node7",
    "pid": "4242",
    "pid_started": "99.5",
    "exit_code": "3",
    "progress": "42.5",
    "message": "checking",
    "children": '["k:0", "k:1"]',
    "retry_of": "j0",
    "retried_by": "j2",
    "attempt": "2",
    "error": "boom",
    "errors": "7",
    "heartbeat": "120.5",
    "kill_requested": "111.5",
    "colour": "blue",
}
FULL_JOB = Job(
    job_id="j1", job_type="qc-files", user_id="alice", status="running", raw_status="running",
    command=["python3", "-m", "x", "a b"], command_text=None, created=100.5,
    params={"files": ["a.tsv"]}, started=101.25, finished=110.0, host="node7", pid=4242,
    pid_started=99.5, exit_code=3, progress=42.5, message="checking", children=["k:0", "k:1"],
    retry_of="j0", retried_by="j2", attempt=2, error="boom", errors=7, heartbeat=120.5,
    heartbeat_alive=True, kill_requested=111.5, damage=(), extra={"colour": "blue"},
)


def as_bytes(fields: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in fields.items()}


def row(fields: dict[str, str | bytes | None]) -> list[bytes | None]:
    """The listing's values (LIST_FIELDS order) of a hash, as the server returns them."""
    out: list[bytes | None] = []
    for name in LIST_FIELDS:
        v = fields.get(name)
        out.append(v.encode() if isinstance(v, str) else v)
    return out


# -- every field of a well-formed hash ------------------------------------------------

def test_every_field_of_our_hash_is_read_exactly() -> None:
    job = parse_job("j1", as_bytes(FULL), heartbeat_alive=True)
    assert job == FULL_JOB
    assert type(job.pid) is int and type(job.exit_code) is int and type(job.attempt) is int
    assert type(job.errors) is int and type(job.created) is float


def test_string_keys_and_values_read_the_same_as_bytes() -> None:
    assert parse_job("j1", FULL, heartbeat_alive=True) == FULL_JOB


def test_no_unknown_field_shares_one_empty_extra() -> None:
    fields = {k: v for k, v in FULL.items() if k != "colour"}
    job = parse_job("j1", fields)
    assert job.extra is EMPTY_EXTRA and job.damage == ()


def test_blank_optional_fields_are_absent_not_damage() -> None:
    fields = {**{k: FULL[k] for k in model.REQUIRED_FIELDS},
              "retry_of": "", "retried_by": "", "error": "", "host": "", "children": "  ",
              "started": "", "params": "", "pid": "", "message": ""}
    job = parse_job("j1", fields)
    assert (job.retry_of, job.retried_by, job.error, job.host) == (None, None, None, None)
    assert job.children == () and job.started is None and job.params is None
    assert job.pid is None and job.message == ""
    assert job.damage == ()


def test_a_field_whose_value_is_none_is_skipped_and_reading_goes_on() -> None:
    job = parse_job("j1", {**FULL, "message": None, "colour": None}, heartbeat_alive=True)
    assert job == Job(**{**{s: getattr(FULL_JOB, s) for s in Job.__slots__},
                         "message": None, "extra": EMPTY_EXTRA})


def test_an_empty_field_name_is_kept_as_it_is() -> None:
    job = parse_job("j1", {**as_bytes(FULL), b"": b"v"})
    assert job.extra == {"colour": "blue", "": "v"} and job.damage == ()


# -- damage, each note exactly -------------------------------------------------------

def test_missing_required_fields_are_each_noted_in_order() -> None:
    job = parse_job("x", {"message": "hello"})
    assert job.damage == ("job_id: missing", "job_type: missing", "user_id: missing",
                          "status: missing", "command: missing", "created: missing")
    assert (job.job_type, job.user_id, job.status, job.raw_status) == \
        ("unknown", "unknown", "unknown", None)


def test_each_required_field_is_checked_after_one_that_is_present() -> None:
    job = parse_job("x", {"job_id": "x"})
    assert job.damage == ("job_type: missing", "user_id: missing", "status: missing",
                          "command: missing", "created: missing")
    job = parse_job("x", {"job_id": "x", "job_type": "t", "user_id": "u"}, partial=True)
    assert job.damage == ("status: missing", "created: missing")


def test_partial_rows_do_not_miss_the_command() -> None:
    job = parse_job("x", {"message": "hello"}, partial=True)
    assert "command: missing" not in job.damage
    assert "created: missing" in job.damage


def test_not_a_hash_and_missing_hashes() -> None:
    for raw in (None, {}):
        job = parse_job("gone", raw)
        assert job == Job(job_id="gone", damage=(MISSING,)) and job.is_missing
    assert parse_job("odd", [("status", "running")]) == Job(  # type: ignore[arg-type]
        job_id="odd", damage=("job key is not a hash",))


def test_job_id_field_that_disagrees_with_the_key() -> None:
    job = parse_job("j1", {**FULL, "job_id": "other" + "z" * 60})
    assert job.damage == ("job_id: field says " + repr("other" + "z" * 35),)
    assert job.job_id == "j1"


@pytest.mark.parametrize("name", ["created", "started", "finished", "pid_started", "heartbeat",
                                  "kill_requested"])
def test_bad_numbers_are_noted_and_dropped(name: str) -> None:
    job = parse_job("j1", {**FULL, name: "soon" + "!" * 40})
    assert getattr(job, name) is None
    assert job.damage == (f"{name}: not a number ({('soon' + '!' * 26)!r})",)
    job = parse_job("j1", {**FULL, name: "inf"})
    assert getattr(job, name) is None and job.damage == (f"{name}: not finite",)
    job = parse_job("j1", {**FULL, name: "nan"})
    assert job.damage == (f"{name}: not finite",)


@pytest.mark.parametrize("name", ["pid", "exit_code", "attempt", "errors"])
def test_whole_numbers_and_their_range(name: str) -> None:
    assert getattr(parse_job("j1", {**FULL, name: "12.9"}), name) == 12
    assert getattr(parse_job("j1", {**FULL, name: "-2"}), name) == -2
    edge = parse_job("j1", {**FULL, name: str(2**62)})
    assert getattr(edge, name) == 2**62 and edge.damage == ()
    for big in (str(2**63), str(-(2**63))):
        job = parse_job("j1", {**FULL, name: big})
        assert getattr(job, name) is None and job.damage == (f"{name}: out of range",)
    job = parse_job("j1", {**FULL, name: "x"})
    assert getattr(job, name) is None and job.damage == (f"{name}: not a number ('x')",)


def test_progress_that_is_not_a_number() -> None:
    job = parse_job("j1", {**FULL, "progress": "half"})
    assert job.progress is None and job.damage == ("progress: not a number ('half')",)


def test_progress_outside_0_to_100_is_clamped_and_noted() -> None:
    for text, value in (("0", 0.0), ("100", 100.0)):
        job = parse_job("j1", {**FULL, "progress": text})
        assert job.progress == value and job.damage == ()
    for text, value in (("101", 100.0), ("-0.5", 0.0)):
        job = parse_job("j1", {**FULL, "progress": text})
        assert job.progress == value and job.damage == ("progress: outside 0..100",)


def test_params_must_be_a_json_object() -> None:
    for text, note in (("[1]", "params: not a JSON dict"), ("{", "params: not JSON"),
                       ("[" * 100_000, "params: not JSON")):
        job = parse_job("j1", {**FULL, "params": text})
        assert job.params is None and job.damage == (note,)


def test_bytes_that_are_not_utf8_are_replaced_and_noted() -> None:
    raw = {**as_bytes(FULL), b"message": b"ok \xff done", b"\xfekey": b"v"}
    job = parse_job("j1", raw)
    assert job.message == "ok \ufffd done"
    assert job.extra == {"colour": "blue", "\ufffdkey": "v"}
    assert job.damage == ("message: not UTF-8", "field name: not UTF-8")


def test_to_text_exactly() -> None:
    damage: list[str] = []
    assert to_text(None, damage, "f") is None
    assert to_text(b"caf\xc3\xa9", damage, "f") == "café"
    assert to_text(12, damage, "f") == "12"
    assert damage == []
    assert to_text(b"\xff", damage, "f") == "\ufffd" and damage == ["f: not UTF-8"]
    assert to_text(b"\xff") == "\ufffd"  # no damage list: nothing noted, no error
    assert to_text("x" * MAX_TEXT) == "x" * MAX_TEXT
    assert to_text("x" * (MAX_TEXT + 1)) == "x" * MAX_TEXT + "…[truncated]"
    assert to_text(b"y" * (MAX_TEXT + 5)) == "y" * MAX_TEXT + "…[truncated]"


# -- statuses, commands, children -----------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    (None, "unknown"), ("", "unknown"), ("   ", "unknown"), (" Success ", "completed"),
    ("PENDING", "queued"), ("error", "failed"), ("Aborted", "killed"), ("Running", "running"),
    ("Paused ", "paused"),
])
def test_normalise_status(raw: str | None, expected: str) -> None:
    assert normalise_status(raw) == expected


def test_raw_status_is_kept_as_written() -> None:
    job = parse_job("j1", {**FULL, "status": " Success "})
    assert (job.status, job.raw_status) == ("completed", " Success ")


def test_commands_ours_and_other_producers() -> None:
    job = parse_job("j1", {**FULL, "command": '  ["a", 2, null]'})
    assert job.command == ["a", "2", "None"] and job.command_text is None
    assert job.command_display == "a 2 None"
    job = parse_job("j1", {**FULL, "command": "python3 run.py 'a b.zip'"})
    assert job.command is None and job.command_text == "python3 run.py 'a b.zip'"
    assert job.command_display == "python3 run.py 'a b.zip'"
    job = parse_job("j1", {**FULL, "command": "[broken"})
    assert (job.command, job.command_text) == (None, None)
    assert job.damage == ("command: not JSON",) and job.command_display == ""
    job = parse_job("j1", {**FULL, "command": '{"a": 1}'})  # not a list: a shell string
    assert (job.command, job.command_text, job.damage) == (None, '{"a": 1}', ())
    job = parse_job("j1", {**FULL, "command": ""})
    assert (job.command, job.command_text, job.command_display) == (None, None, "")
    assert FULL_JOB.command_display == "python3 -m x 'a b'"


def test_children_every_way_they_are_written() -> None:
    def kids(text: str) -> tuple[object, tuple[str, ...]]:
        job = parse_job("j1", {**FULL, "children": text})
        return job.children, job.damage

    assert kids(' ["a", "b"]') == (["a", "b"], ())
    assert kids('["a", 3]') == (["a", "3"], ("children: not all names are strings",))
    assert kids("[oops") == ((), ("children: not JSON",))
    assert kids('{"a": 1}') == (['{"a":', '1}'], ())
    assert kids("[]") == ((), ())
    assert kids("k:0, k:1  k:2") == (["k:0", "k:1", "k:2"], ())
    assert kids(" , ") == ((), ())
    assert dialects.split_children("a,,b c") == ["a", "b", "c"]
    assert dialects.split_children(", ,") is None


# -- other producers' dialects ---------------------------------------------------------

def test_gn_uploader_dialect_fields_are_read_as_ours() -> None:
    raw = {"jobid": "u1", "job-type": "qc-rqtl2", "status": "success", "percent": "31",
           "command": "python3 -m qc 'bundle.zip'", "stdout": "x", "stderr": ""}
    job = parse_job("u1", raw, user_hint="alice")
    assert (job.job_id, job.job_type, job.user_id, job.status, job.progress) == \
        ("u1", "qc-rqtl2", "alice", "completed", 31.0)
    assert job.command_text == "python3 -m qc 'bundle.zip'"
    assert job.damage == ()  # no user or created field: optional in this dialect
    assert job.extra == {"stdout": "x", "stderr": ""}  # aliases are not extras


def test_gn2_verdict_overrules_status_and_return_code_is_the_exit_code() -> None:
    raw = {"job_id": "g1", "status": "completed", "completion-status": " error ",
           "return-code": "2", "command": "gn2 run"}
    job = parse_job("g1", raw)
    assert (job.status, job.raw_status, job.exit_code) == ("failed", "error", 2)
    blank = parse_job("g1", {**raw, "completion-status": "  "})
    assert blank.status == "completed"


def test_an_alias_fills_a_field_only_when_ours_is_absent_or_empty() -> None:
    assert dialects.canonical({"job_id": "ours", "jobid": "theirs"})["job_id"] == "ours"
    assert dialects.canonical({"job_id": "", "jobid": "theirs"})["job_id"] == "theirs"
    assert dialects.canonical({"jobid": "first", "job-id": "second"})["job_id"] == "first"
    assert dialects.canonical({"returncode": "4"}) == {"returncode": "4", "exit_code": "4"}
    assert dialects.canonical({"status": "running"}) == {"status": "running"}
    fields = {"percent": "5"}
    dialects.canonical(fields)
    assert fields == {"percent": "5"}  # the caller's dict is not changed


def test_user_hint_only_fills_a_missing_user() -> None:
    assert parse_job("j1", FULL, user_hint="bob").user_id == "alice"
    assert parse_job("j1", {**FULL, "user_id": ""}, user_hint="bob").user_id == "bob"
    assert parse_job("j1", {**FULL, "user_id": ""}, user_hint=None).user_id == "unknown"


def test_a_dialect_marker_excuses_only_the_optional_fields() -> None:
    job = parse_job("d1", {"stdout": "x"})
    assert job.damage == ("job_id: missing", "status: missing")


# -- the fast listing path ------------------------------------------------------------

def test_well_formed_rows_take_the_fast_path_and_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    values = row(FULL)
    slow = parse_job("j1", {k: v for k, v in zip(LIST_FIELDS, values, strict=True)
                            if v is not None}, heartbeat_alive=False, partial=True)

    def no_slow_path(*args: object, **kwargs: object) -> Job:
        raise AssertionError("a well-formed row went to the tolerant parser")

    monkeypatch.setattr(model, "parse_job", no_slow_path)
    fast = parse_table_row("j1", values, False)
    assert fast == slow
    assert fast == Job(
        job_id="j1", job_type="qc-files", user_id="alice", status="running",
        raw_status="running", created=100.5, started=101.25, finished=110.0, host="node7",
        progress=42.5, message="checking", exit_code=3, error="boom", errors=7,
        heartbeat=120.5, heartbeat_alive=False, attempt=2, retry_of="j0", retried_by="j2",
        kill_requested=111.5)
    assert fast.is_lost
    # The bounds are inclusive on the fast path too (no detour through the slow one).
    for change in ({"progress": "0"}, {"progress": "100"}, {"exit_code": str(2**62)},
                   {"errors": str(-(2**62))}, {"attempt": "1"}, {"message": "m" * MAX_TEXT},
                   {"started": ""}, {"finished": ""}, {"host": ""}, {"heartbeat": ""},
                   {"kill_requested": ""}, {"error": ""}, {"retry_of": ""}):
        assert parse_table_row("j1", row({**FULL, **change}), None) == slow_of({**FULL, **change})
    bare = {k: FULL[k] for k in ("job_id", "job_type", "user_id", "status", "created")}
    assert parse_table_row("j1", row(bare), None) == Job(
        job_id="j1", job_type="qc-files", user_id="alice", status="running",
        raw_status="running", created=100.5)


def slow_of(fields: dict[str, str | bytes | None]) -> Job:
    """What the tolerant parser makes of a listing row of these fields."""
    values = row(fields)
    return parse_job("j1", {k: v for k, v in zip(LIST_FIELDS, values, strict=True)
                            if v is not None}, partial=True)


def fast_and_slow(fields: dict[str, str | bytes | None], hint: str | None = None
                  ) -> tuple[Job, Job]:
    values = row(fields)
    fast = parse_table_row("j1", values, True, hint)
    slow = parse_job("j1", {k: v for k, v in zip(LIST_FIELDS, values, strict=True)
                            if v is not None}, heartbeat_alive=True, partial=True, user_hint=hint)
    return fast, slow


@pytest.mark.parametrize("change", [
    {"status": "success"},              # another producer's word
    {"status": "Running"},              # not exactly ours
    {"job_id": "j9"},                   # the field disagrees with the key
    {"job_type": ""},                   # a required field empty
    {"user_id": ""},
    {"created": "soon"},                # bad numbers
    {"started": "nan"},
    {"progress": "100.5"},
    {"progress": "-1"},
    {"exit_code": str(2**63)},
    {"errors": str(-(2**63))},
    {"attempt": "1e400"},
    {"message": "m" * (MAX_TEXT + 1)},  # huge text
    {"error": b"\xff"},                 # not UTF-8
    {"jobid": "j1"},                    # another dialect's field
    {"completion-status": "error"},
    {"created": None},                  # a required field absent
])
def test_unusual_rows_fall_back_to_the_tolerant_parser(change: dict) -> None:
    fast, slow = fast_and_slow({**FULL, **change})
    assert fast == slow


def test_fallback_keeps_the_user_hint() -> None:
    fast, slow = fast_and_slow({**FULL, "user_id": None, "percent": "5"}, hint="carol")
    assert fast == slow and fast.user_id == "carol"


# -- what the listing reads from a real server ---------------------------------------

def test_listing_and_get_job_read_a_real_hash_exactly(store: Store) -> None:
    fields = {**FULL, "job_id": "f" * 32}
    key = store.keys.job("f" * 32)
    store.r.hset(key, mapping=fields)
    store.r.zadd(store.keys.jobs_index, {"f" * 32: 100.5})
    [listed] = store.list_jobs()
    full = store.get_job("f" * 32)
    assert full is not None
    assert full == Job(**{**{s: getattr(FULL_JOB, s) for s in Job.__slots__},
                          "job_id": "f" * 32, "heartbeat_alive": False})
    for name in model.TABLE_FIELDS:
        if name != "job_id":
            assert getattr(listed, name) == getattr(full, name), name
    assert listed.job_id == "f" * 32 and listed.is_lost and full.is_lost


# -- Job's own methods -------------------------------------------------------------------

def test_elapsed_running_finished_and_clock_skew() -> None:
    assert Job(job_id="a").elapsed(50.0) is None
    assert Job(job_id="a", started=10.0).elapsed(50.0) == 40.0
    assert Job(job_id="a", started=10.0, finished=12.5).elapsed(50.0) == 2.5
    assert Job(job_id="a", started=10.0, finished=0.0).elapsed(50.0) == 0.0
    assert Job(job_id="a", started=60.0).elapsed(50.0) == 0.0


def test_to_dict_is_json_ready_with_the_shown_status() -> None:
    job = parse_job("j1", FULL, heartbeat_alive=False)
    data = job.to_dict()
    assert set(data) == set(Job.__slots__)
    assert data["status"] == "lost" and data["raw_status"] == "running"
    assert data["extra"] == {"colour": "blue"} and type(data["extra"]) is dict
    assert data["children"] == ["k:0", "k:1"] and data["pid"] == 4242
    json.dumps(data)


def test_what_looks_like_a_job() -> None:
    assert not looks_like_a_job(parse_job("manager", {"stderr": "runner error", "status": "x"}))
    assert not looks_like_a_job(Job(job_id="k"))
    assert not looks_like_a_job(parse_job("k", {"colour": "blue"}))
    for fields in ({"status": ""}, {"job_type": "qc"}, {"command": "[]"}, {"command": "run"},
                   {"created": "1"}):
        assert looks_like_a_job(parse_job("k", fields)), fields


def test_interned_names_are_shared() -> None:
    a = parse_job("a", {**FULL, "host": "".join(["no", "de7"])})
    b = parse_job("b", {**FULL, "host": "".join(["node", "7"])})
    assert a.host is b.host and a.job_type is b.job_type and a.status is b.status
    assert a.host is sys.intern("node7")
