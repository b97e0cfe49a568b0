"""Property tests: damaged data of every kind, through every reader and renderer.

Nothing raises; damage is shown. Jobs go through a real server (HSET, then
the store's own scripts read them back), so the Lua side is fuzzed too.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from gn_jobs_tui.core import dialects
from gn_jobs_tui.core.jobtypes import ParamError, registry
from gn_jobs_tui.core.model import LIST_FIELDS, TABLE_FIELDS, parse_job, parse_table_row
from gn_jobs_tui.core.outputs import KeyState, apply_chunk
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.processors import GENERIC, for_type

EXAMPLES = int(os.environ.get("GN_JOBS_FUZZ_EXAMPLES", "400"))
FIELDS = [*TABLE_FIELDS, "command", "params", "children", "pid", "pid_started", "extra_field",
          # Other producers' dialects: their names go through the same tolerant reader.
          *dialects.ALIAS_SOURCES, "stdout", "stderr"]

junk = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(str.encode),
    st.sampled_from([b"", b"nan", b"inf", b"-1", b"1e400", b"101", b"[", b"{}", b"[1,2]",
                     b'["a"]', b"\xff\xfe", b"running", b"success", b"x" * 5000, b"9" * 400]),
    st.floats(allow_nan=True).map(lambda f: repr(f).encode()),
    st.integers().map(lambda i: str(i).encode()),
)
job_hashes = st.dictionaries(st.sampled_from(FIELDS), junk, max_size=len(FIELDS))
settings.register_profile("gn", max_examples=EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.load_profile("gn")


def render(renderable: object) -> str:
    console = Console(width=100, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


@given(job_hashes)
def test_model_never_raises_and_marks_damage(raw: dict[str, bytes]) -> None:
    job = parse_job("j", raw)
    assert isinstance(job.status, str) and isinstance(job.damage, tuple)
    if not raw:
        assert job.is_missing
        return
    names = set(raw)
    foreign = not dialects.DIALECT_MARKERS.isdisjoint(names)
    supplied = {ours for alias, ours in dialects.FIELD_ALIASES.items() if alias in raw}
    for name in ("job_id", "job_type", "user_id", "status", "created"):
        if name in names or name in supplied or (name == "status" and "completion-status" in names):
            continue
        if foreign and name in dialects.OPTIONAL_IN_DIALECTS:
            continue
        assert any(d.startswith(f"{name}: missing") for d in job.damage), (name, job.damage)
    if any(b"\xff" in v for v in raw.values()):
        assert job.damage


@given(job_hashes)
def test_fast_table_path_agrees_with_the_tolerant_one(raw: dict[str, bytes]) -> None:
    values = [raw.get(name) for name in LIST_FIELDS]
    if all(v is None for v in values):
        return
    fast = parse_table_row("j", values, None)
    slow = parse_job("j", {k: v for k, v in zip(LIST_FIELDS, values, strict=True)
                           if v is not None}, partial=True)
    assert fast == slow


@given(job_hashes, st.sampled_from(["qc-files", "insert-rows", "sleep", "other"]))
@example({"error": b"   \n  "}, "other")  # found by hypothesis: the summary of a blank error
@example({"message": b"\x1b[2J\x1b]0;owned\x07"}, "other")  # a terminal escape in a message
def test_processors_render_any_job(raw: dict[str, bytes], job_type: str) -> None:
    job = parse_job("j", {**raw, "job_type": job_type.encode()})
    proc = for_type(job_type)
    assert isinstance(proc.verdict(job).label, str)
    assert isinstance(proc.summary(job), str)
    out = KeyState("k")
    apply_chunk(out, [b"list", [v for v in raw.values()], len(raw)])
    shown = render(proc.job_view(job, out, [out], 1_700_000_000.0))
    assert shown
    # Damage is shown where it is; job text never reaches the terminal as a control code.
    assert ("damaged:" in shown) == bool(job.damage), (job.damage, shown[:300])
    assert "\x1b" not in shown and "\x9b" not in shown
    render(proc.child_view(job, out))
    render(proc.output_view(job, out))


stream_rows = st.lists(st.tuples(st.binary(max_size=8),
                                 st.lists(st.one_of(junk, st.sampled_from(
                                     [b"kind", b"record", b"progress", b"finish", b"start",
                                      b"n", b"line", b"counts", b"done", b"total"])),
                                          max_size=10)), max_size=6)
replies = st.one_of(
    st.tuples(st.just(b"stream"), stream_rows, st.integers(0, 10)),
    st.tuples(st.just(b"list"), st.lists(junk, max_size=6), st.integers(0, 10)),
    st.tuples(st.just(b"string"), st.lists(junk, max_size=1), st.integers(0, 10)),
    st.tuples(st.just(b"hash"), st.lists(junk, max_size=8), st.integers(0, 10)),
    st.tuples(st.sampled_from([b"none", b"zset", b"?"]), st.just([]), st.just(0)),
    st.lists(junk, max_size=3),
)


@given(st.lists(replies, max_size=4))
# Found by hypothesis: a key that was a list (cursor "1") becomes a stream.
@example([(b"list", [b"a"], 1), (b"stream", [(b"1-0", [b"kind", b"start"])], 1)])
def test_child_key_replies_of_every_type_never_raise(chunks: list) -> None:
    state = KeyState("P:jobs:j:children:0")
    for chunk in chunks:
        apply_chunk(state, list(chunk) if isinstance(chunk, tuple) else chunk)
    job = parse_job("j", {"job_type": "qc-files", "status": "running"})
    for proc in (for_type("qc-files"), for_type("insert-rows"), GENERIC):
        render(proc.child_view(job, state))
        render(proc.job_view(job, state, [state], 0.0))
        assert isinstance(proc.child_label(state), str)


@pytest.fixture(scope="module")
def fuzz_store(server) -> Store:
    return Store.from_url(server.url, "fuzz")


@settings(max_examples=max(50, EXAMPLES // 4))
@given(job_hashes, st.sampled_from(["hash", "string", "list", "zset", "stream", "set"]))
def test_any_key_read_through_the_store_never_raises(fuzz_store: Store, raw: dict[str, bytes],
                                                     kind: str) -> None:
    store = fuzz_store
    key = store.keys.job("fz")
    store.r.delete(key, store.keys.output("fz"))
    if kind == "hash" and raw:
        store.r.hset(key, mapping=raw)
    elif kind == "string":
        store.r.set(key, b"".join(raw.values())[:100])
    elif kind == "list":
        store.r.rpush(key, *(raw.values() or [b"x"]))
    elif kind == "zset":
        store.r.zadd(key, {b"m": 1})
    elif kind == "stream":
        store.r.xadd(key, {k: v for k, v in raw.items()} or {"a": "b"})
    elif kind == "set":
        store.r.sadd(key, b"m")
    store.r.zadd(store.keys.jobs_index, {"fz": 1.0})
    [listed] = store.get_jobs(["fz"])
    assert listed.job_id == "fz"
    assert store.list_jobs(count=5)
    full = store.get_job("fz")
    if kind == "hash" and raw:
        # The store reads exactly what the model parses from the same fields (a big hash
        # comes back from the server in its own field order: so may the damage notes).
        expected = parse_job("fz", raw, heartbeat_alive=False)
        assert sorted(full.damage) == sorted(expected.damage)
        assert replace(full, damage=()) == replace(expected, damage=())
    elif kind == "hash":
        assert full is None and listed.is_missing
    else:
        assert full is not None and full.damage == (f"job key is a {kind}, not a hash",)
        assert listed.damage and "WRONGTYPE" in listed.damage[0]
    states = [KeyState(store.keys.output("fz")), KeyState(key)]
    store.read_keys(states)
    shown = render(GENERIC.job_view(listed, states[0], states[1:], 0.0))
    assert ("damaged:" in shown) == bool(listed.damage)


#: Every parameter of every registered job type, fuzzed one at a time over valid others.
LAUNCH_PARAMS = [(jt.name, p.name) for jt in registry().all() for p in jt.params]
#: Inputs near the rules' edges; `{tmp}` is a directory holding a.tsv, rows.tsv and sub/.
EDGES = ["{tmp}/a.tsv", "{tmp}/*.tsv", "{tmp}/sub/../a.tsv", "{tmp}/a.tsv {tmp}/rows.tsv",
         "{tmp}/a.tsv,,{tmp}/a.tsv", "{tmp}/sub", "{tmp}/[ab].tsv", "{tmp}/x.sqlite",
         "sqlite:///{tmp}/x.sqlite", "sqlite:///x.sqlite", "sqlite:///", "postgresql://u:p@h/db",
         "mysql://h/db", "http://h/db", "~/x.sqlite", "-x", "..", "/", ".", "a\x00b", "tab",
         "header,fields", "header,,numeric", "yes", "off", "1e3", "nan", "-0", " 5 ", "0x10",
         "1_000", "9" * 400, "; rm -rf /", "$(touch /tmp/x)", "t1", "_", "a" * 63, "a" * 64]
launch_values = st.one_of(
    st.text(max_size=300),
    st.sampled_from(EDGES),
    st.tuples(st.sampled_from(EDGES), st.text(max_size=20)).map(lambda t: t[0] + t[1]),
)


@pytest.fixture(scope="module")
def launch_dir(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("launch")
    (base / "a.tsv").write_text("id\tS1\nm1\t1\n")
    (base / "rows.tsv").write_text("id\tS1\nm1\t1\n")
    (base / "sub").mkdir()
    return base


def valid_inputs(job_type: str, base) -> dict[str, str]:
    return {
        "sleep": {"seconds": "1", "exit_code": "0"},
        "qc-files": {"files": f"{base}/a.tsv", "workers": "2"},
        "insert-rows": {"file": f"{base}/rows.tsv", "database": f"{base}/t.sqlite", "table": "t1"},
    }.get(job_type, {})


def _clean_path(path: str) -> bool:
    return os.path.isabs(path) and ".." not in path.split(os.sep)


@example(("insert-rows", "database"), "sqlite:///")
@example(("qc-files", "files"), "{tmp}/a.tsv,,{tmp}/a.tsv")
@given(st.sampled_from(LAUNCH_PARAMS), launch_values)
def test_launcher_params_are_rejected_or_literal(launch_dir, pick: tuple[str, str],
                                                 value: str) -> None:
    type_name, name = pick
    jt = registry().get(type_name)
    param = next(p for p in jt.params if p.name == name)
    raw = {**valid_inputs(type_name, launch_dir), name: value.replace("{tmp}", str(launch_dir))}
    try:
        values = jt.validate(raw)
    except ParamError as exc:
        # Rejected: by this parameter alone (the others are valid), with a message.
        assert list(exc.problems) == [name] and exc.problems[name]
        return
    argv = jt.argv(values)
    assert all(isinstance(a, str) for a in argv)
    got = values[name]
    given = raw[name].strip()
    # Accepted: each value is exactly one argv element (or one per file), no shell ever
    # sees it, and every path is absolute, from an input with no '..' and no leading '-'.
    if param.kind in ("path", "paths", "database") and given:
        items = given.replace(",", " ").split() if param.kind == "paths" else [given]
        assert all(".." not in i.split(os.sep) and not i.startswith("-") for i in items)
    if param.kind in ("path", "database") and got:
        assert got in argv
        assert _clean_path(got.removeprefix("sqlite:///")) or got.startswith(
            ("postgresql://", "postgres://", "mysql://", "mariadb://"))
    elif param.kind == "paths":
        assert got and all(f in argv and _clean_path(f) and os.path.isfile(f) for f in got)
    elif param.kind == "choice":
        assert (",".join(got) if param.multiple else got) in argv
    elif param.kind == "bool":
        assert ("yes" if got else "no") in argv
    elif param.kind in ("int", "float"):
        assert str(got) in argv
        assert (param.minimum is None or got >= param.minimum) and \
            (param.maximum is None or got <= param.maximum)
    elif param.kind == "identifier":
        assert got in argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", got)
