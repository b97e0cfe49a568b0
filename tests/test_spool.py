"""The supervisor's spill buffer and spooled records, replayed into a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gn_jobs_tui.core import scripts, spool, wire
from gn_jobs_tui.core.connection import parse_url
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store, job_fields, new_job_id


def test_buffer_keeps_order_through_memory_and_spill_then_counts_drops(tmp_path: Path) -> None:
    path = tmp_path / "x.spill"
    buf = spool.OutputBuffer(path, memory_max=10 * (5 + spool.LINE_OVERHEAD), spill_max=400)
    for i in range(100):
        buf.add("out", f"l{i:03d}")
    assert path.exists() and buf.dropped > 0
    kept = len(buf)
    assert kept + buf.dropped == 100
    got: list[str] = []
    while len(buf):
        first, batch = buf.peek(max_lines=7)
        assert first == len(got) + 1  # numbers follow the lines, no gaps
        got.extend(line for _, line in batch)
        buf.commit(len(batch))
        buf.add("err", "late")  # arrives while draining: after everything older
        if len(got) > 200:
            break
    assert got[:kept] == [f"l{i:03d}" for i in range(kept)]  # the oldest are kept, in order
    assert set(got[kept:]) <= {"late"}
    buf.close()
    assert not path.exists()


def test_lines_a_server_lost_are_put_back_from_the_recent_window(tmp_path: Path) -> None:
    buf = spool.OutputBuffer(tmp_path / "z.spill")
    for i in range(10):
        buf.add("out", f"{i}")
    first, batch = buf.peek()
    buf.commit(len(batch))  # all 10 written...
    buf.add("out", "10")
    assert buf.rewind(7) == 0  # ...but the server kept only n <= 6
    first, batch = buf.peek()
    assert first == 7 and [line for _, line in batch] == ["6", "7", "8", "9", "10"]
    buf.commit(len(batch))
    spool.RECENT_MAX, saved = 3 * (2 + spool.LINE_OVERHEAD), spool.RECENT_MAX
    try:
        for i in range(11, 20):
            buf.add("out", f"{i}")
        buf.commit(len(buf.peek()[1]))
        assert buf.rewind(1) == 17  # only the last 3 are still held: 17 are gone for good
        assert buf.peek()[0] == 18
    finally:
        spool.RECENT_MAX = saved
    buf.close()


def test_buffer_drain_gives_memory_then_spill(tmp_path: Path) -> None:
    buf = spool.OutputBuffer(tmp_path / "y.spill", memory_max=3 * (2 + spool.LINE_OVERHEAD))
    for i in range(10):
        buf.add("out", f"{i:02d}")
    assert [line for _, line in buf.drain()] == [f"{i:02d}" for i in range(10)]
    buf.close()


def _record(store: Store, job_id: str, claim: str, fields: dict[str, str], status: str,
            identity: str, lines: list[str], first_n: int = 1) -> Path:
    rec = spool.Record(identity=identity, prefix=store.prefix, job_id=job_id, claim=claim,
                       snapshot={**fields, "supervisor": claim},
                       final={"status": status, "exit_code": "0", "finished": "1.5"},
                       first_n=first_n)
    return spool.save(rec, [("out", ln) for ln in lines], spool.record_path(job_id, 4242))


def test_replay_writes_a_claimed_job_once_and_recreates_a_missing_one(server: EmbeddedServer,
                                                                      store: Store) -> None:
    identity = parse_url(server.url).identity
    client = wire.Client(parse_url(server.url), name="replay-test")
    # 1. the job exists, claimed by the spooling supervisor, two lines already written
    ours = job_fields(new_job_id(), "sleep", "ann", ["true"], {})
    store.create_job(ours)
    store.r.hset(store.keys.job(ours["job_id"]), mapping={"supervisor": "h:1:1", "status": "running"})
    client.call(*spool.append_cmd(store.keys, ours["job_id"], 1, [("out", "a"), ("out", "b")], 100))
    p1 = _record(store, ours["job_id"], "h:1:1", ours, "completed", identity, ["b", "c", "d"], 2)
    # 2. the job is gone (a new server): re-created whole
    lost = job_fields(new_job_id(), "sleep", "bob", ["true"], {})
    p2 = _record(store, lost["job_id"], "h:2:2", lost, "failed", identity, ["x"])
    # 3. someone else holds the job: dropped, untouched
    other = job_fields(new_job_id(), "sleep", "cy", ["true"], {})
    store.create_job(other)
    store.r.hset(store.keys.job(other["job_id"]), mapping={"supervisor": "h:9:9", "status": "running"})
    p3 = _record(store, other["job_id"], "h:3:3", other, "completed", identity, ["y"])
    # 4. another server's record: left alone
    p4 = _record(store, new_job_id(), "h:4:4", lost, "completed", "single:/elsewhere//0", ["z"])
    notes: list[str] = []
    assert spool.replay(client, identity, store.prefix, notes.append) == 3
    assert not p1.exists() and not p2.exists() and not p3.exists() and p4.exists()
    p4.unlink()

    job = store.get_job(ours["job_id"])
    assert job.status == "completed" and job.exit_code == 0 and job.extra.get("replayed")
    out = [(int(f[b"n"]), f[b"line"].decode()) for _, f in store.r.xrange(store.keys.output(job.job_id))]
    assert out == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]  # "b" was there already: not doubled
    assert store.r.zscore(store.keys.status_index("completed"), job.job_id) is not None

    again = store.get_job(lost["job_id"])
    assert again and not again.damage and again.status == "failed" and again.user_id == "bob"
    assert again.command == ["true"] and again.created == pytest.approx(float(lost["created"]))
    for key in (store.keys.jobs_index, store.keys.user_jobs("bob"), store.keys.ids,
                store.keys.status_index("failed")):
        assert store.r.zscore(key, lost["job_id"]) is not None, key

    held = store.get_job(other["job_id"])
    assert held.status == "running" and not store.r.exists(store.keys.output(other["job_id"]))
    assert any("another supervisor" in n for n in notes)

    # Replaying the same record again changes nothing (idempotent).
    p1 = _record(store, ours["job_id"], "h:1:1", ours, "completed", identity, ["b", "c", "d"], 2)
    spool.replay(client, identity, store.prefix, notes.append)
    assert store.r.xlen(store.keys.output(ours["job_id"])) == 4
    client.close()


def test_a_fenced_write_to_a_gone_hash_creates_nothing(server: EmbeddedServer, store: Store) -> None:
    client = wire.Client(parse_url(server.url), name="fence-test")
    job_id = new_job_id()
    code, _ = client.call(*spool.fenced_cmd(store.keys, job_id, "h:1:1", {"progress": "50"}))
    assert code == scripts.FENCE_GONE and not store.r.exists(store.keys.job(job_id))
    client.close()


def test_a_record_file_is_plain_json_lines(tmp_path: Path, store: Store) -> None:
    path = _record(store, "j1", "c", {"job_id": "j1"}, "completed", "single:/x//0", ["\udcff bytes"])
    head, line = path.read_text().splitlines()
    assert json.loads(head)["final"]["status"] == "completed"
    assert json.loads(line) == ["out", "\udcff bytes"]  # undecodable bytes survive the round trip
    path.unlink()
