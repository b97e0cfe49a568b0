"""The store against a real server: create, list, pages, users, discovery, cleanup."""

from __future__ import annotations

import time

from gn_jobs_tui.core.outputs import KeyState
from gn_jobs_tui.core.store import AsyncStore, Store, job_fields, new_job_id
from tests.helpers import run_async


def make(store: Store, n: int, user: str = "u1", t0: float = 1_700_000_000.0) -> list[str]:
    ids = []
    for i in range(n):
        f = job_fields(new_job_id(), "sleep", user, ["true"], {"i": i}, created=t0 + i)
        ids.append(store.create_job(f, audit=None))
    return ids


def test_create_is_indexed_for_all_and_user(store: Store) -> None:
    [job_id] = make(store, 1, user="alice")
    assert store.r.zscore(store.keys.jobs_index, job_id) is not None
    assert store.r.zscore(store.keys.user_jobs("alice"), job_id) is not None
    job = store.get_job(job_id)
    assert job is not None and job.status == "queued" and job.attempt == 1 and not job.damage


def test_listing_newest_first_in_pages_and_in_full(store: Store) -> None:
    ids = make(store, 23)
    page = store.list_jobs(start=0, count=10)
    assert [j.job_id for j in page] == ids[::-1][:10]
    assert [j.job_id for j in store.list_jobs(start=20, count=10)] == ids[::-1][20:]
    every = [j.job_id for p in store.iter_jobs(page=7) for j in p]
    assert every == ids[::-1]


def test_listing_is_one_call_per_page_not_per_job(store: Store) -> None:
    make(store, 300)
    before = store.r.info("commandstats")
    list(store.iter_jobs(page=5000))
    after = store.r.info("commandstats")

    def calls(stats: dict, name: str) -> int:
        return stats.get(f"cmdstat_{name}", {}).get("calls", 0)

    # 300 jobs, one page: one script call from the client (HMGETs run inside it).
    scripted = sum(calls(after, n) - calls(before, n)
                   for n in ("evalsha_ro", "eval_ro", "evalsha", "eval"))
    assert scripted == 1
    assert calls(after, "hmget") - calls(before, "hmget") == 300  # inside the script


def test_user_filter_and_counts(store: Store) -> None:
    make(store, 3, user="alice")
    make(store, 2, user="bob")
    assert store.users() == {"alice": 3, "bob": 2}
    assert {j.user_id for j in store.list_jobs(user="bob", count=100)} == {"bob"}


def test_foreign_job_is_discovered_listed_and_shown(store: Store) -> None:
    """A hash written by hand: list-typed children, legacy status, bad UTF-8."""
    key = store.keys.job("legacy1")
    store.r.hset(key, mapping={"job_id": "legacy1", "job_type": "qc-old", "user_id": "u9",
                               "status": "success", "created": "1700000000",
                               "command": '["x"]', "message": b"caf\xe9 bad bytes",
                               "children": f'["{key}:children:0"]'})
    store.r.rpush(f"{key}:children:0", '{"kind": "record", "file": "a.tsv", "check": "x"}',
                  "plain text line")
    store.r.set(f"{key}:children:1", "not a job")  # a sub-key must not be taken for a job
    _, found = store.discover()
    assert found == ["legacy1"]
    [job] = store.get_jobs(found)
    assert job.effective_status == "completed" and job.raw_status == "success"
    assert any("not UTF-8" in d for d in job.damage)
    full = store.get_job("legacy1")
    assert full is not None and full.children == [f"{key}:children:0"]
    child = KeyState(full.children[0])
    store.read_keys([child])
    assert child.kind == "list" and child.seen == 2 and child.groups[("a.tsv", "x")] == 1


def test_wrong_type_job_key_is_damaged_not_fatal(store: Store) -> None:
    ids = make(store, 2)
    store.r.delete(store.keys.job(ids[0]))
    store.r.set(store.keys.job(ids[0]), "oops")  # a string where a hash belongs
    jobs = {j.job_id: j for j in store.list_jobs(count=10)}
    assert jobs[ids[0]].is_damaged and "WRONGTYPE" in jobs[ids[0]].damage[0]
    assert not jobs[ids[1]].is_damaged


def test_incremental_read_returns_only_new_entries(store: Store) -> None:
    key = store.keys.child("j", 0)
    state = KeyState(key)
    store.read_keys([state])
    assert state.kind == "none"
    for i in range(3):
        store.r.xadd(key, {"kind": "record", "file": "f", "check": "c", "i": str(i)})
    store.read_keys([state])
    assert state.seen == 3
    store.r.xadd(key, {"kind": "finish", "status": "completed"})
    store.read_keys([state])
    assert state.seen == 4 and state.state_label() == "completed"
    store.read_keys([state])
    assert state.seen == 4  # nothing new, nothing re-read


def test_cleanup_removes_only_old_finished_jobs(store: Store) -> None:
    now = time.time()
    old_done, old_running, new_done = (make(store, 1, t0=now - 10_000)[0],
                                       make(store, 1, t0=now - 10_000)[0], make(store, 1, t0=now)[0])
    for job_id in (old_done, new_done):
        store.update(job_id, "status", status="completed")
    store.update(old_running, "status", status="running")
    store.r.xadd(store.keys.output(old_done), {"line": "x"})
    assert store.cleanup(older_than=3600) == 1
    assert store.get_job(old_done) is None
    assert not store.r.exists(store.keys.output(old_done))
    assert store.get_job(old_running) is not None and store.get_job(new_done) is not None
    assert store.r.zscore(store.keys.user_jobs("u1"), old_done) is None


def test_async_store_reads_the_same(store: Store, config) -> None:
    ids = make(store, 5)

    async def go() -> tuple[list[str], dict[str, int]]:
        astore = AsyncStore.from_url(config.url, config.prefix)
        try:
            jobs = await astore.list_jobs(count=3)
            return [j.job_id for j in jobs], await astore.users()
        finally:
            await astore.aclose()

    listed, users = run_async(go())
    assert listed == ids[::-1][:3] and users == {"u1": 5}


def test_every_write_publishes_an_event(store: Store) -> None:
    pubsub = store.r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(store.keys.events_channel)
    [job_id] = make(store, 1)
    store.update(job_id, "progress", progress=50.0)
    got = []
    deadline = time.monotonic() + 3
    while len(got) < 2 and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.2)
        if msg:
            got.append(msg["data"])
    pubsub.close()
    assert len(got) == 2 and all(job_id.encode() in g for g in got)
