"""The console's rows made straight from the listing's reply equal the long way's.

`rows_from_listing` skips the Job of a well-formed row; whatever it makes must
be exactly `Row(job)` of the Job the store's parser makes of the same reply,
for any bytes at all (hypothesis) and for jobs of every shape read back from a
real server by the listing script. The load's pages come through
`AsyncStore.iter_pages`, which asks for the next page while one is parsed:
every job once, in order, and nothing left in flight when the reader stops.
"""

from __future__ import annotations

import asyncio
import time

from hypothesis import given
from hypothesis import strategies as st

from gn_jobs_tui.core.model import LIST_FIELDS, TABLE_FIELDS
from gn_jobs_tui.core.store import AsyncStore, Store, job_fields, jobs_from_listing
from gn_jobs_tui.ui import rows
from gn_jobs_tui.ui.rows import Row, rows_from_listing
from tests.test_properties import junk

NT = len(TABLE_FIELDS)
STRIDE = 3 + len(LIST_FIELDS)


def long_way(flat: list) -> list[Row]:
    return [Row(job) for job in jobs_from_listing(flat)]


def number(low: float, high: float) -> st.SearchStrategy[bytes]:
    return st.floats(low, high, allow_nan=False).map(lambda f: repr(f).encode())


# Rows that are mostly well formed (so the fast path runs), with a bad field now and then.
plausible_fields = st.fixed_dictionaries({
    "job_type": st.sampled_from([b"sleep", b"qc-files", b"insert-rows", b"other", b""]),
    "user_id": st.sampled_from([b"alice", b"bob", b"", b"\xff"]),
    "status": st.sampled_from([b"queued", b"running", b"completed", b"failed", b"killed",
                               b"lost", b"success", b"Running", b"weird"]),
    "created": st.one_of(number(0, 2e9), st.sampled_from([b"", b"nan", b"x"])),
    "started": st.one_of(st.none(), number(0, 2e9), st.sampled_from([b"inf"])),
    "finished": st.one_of(st.none(), number(0, 2e9)),
    "host": st.sampled_from([None, b"", b"node-a", b"node-b"]),
    "progress": st.one_of(st.none(), number(0, 100), st.sampled_from([b"0", b"101", b"-1"])),
    "message": st.one_of(st.none(), st.sampled_from([b"", b"step 1", b" ", b"two\nlines",
                                                      b"\x1b[2J", b"caf\xc3\xa9", b"\xff"])),
    "exit_code": st.sampled_from([None, b"", b"0", b"1", b"-9", b"1e300", b"nan"]),
    "error": st.sampled_from([None, b"", b"boom", b"Traceback (most recent call last):\n x",
                              b"\xff"]),
    "errors": st.sampled_from([None, b"0", b"3", b"nan", b"inf"]),
    "heartbeat": st.sampled_from([None, b"", b"1700000000.5", b"inf"]),
    "attempt": st.sampled_from([None, b"1", b"2", b"nan", b"1e30"]),
    "retry_of": st.sampled_from([None, b"old", b"\xff"]),
    "retried_by": st.sampled_from([None, b"new", b"\xfe"]),
    "kill_requested": st.sampled_from([None, b"", b"0", b"1700000001.0"]),
})


def flat_row(job_id: bytes, fields: dict[str, bytes | None], flag: object = -1,
             score: object = None, stored_id: bytes | None = None) -> list:
    values = [stored_id if stored_id is not None else job_id,
              *(fields.get(name) for name in LIST_FIELDS[1:])]
    return [job_id, score, flag, *values]


@given(st.lists(st.tuples(plausible_fields, st.sampled_from([-1, 0, 1, b"WRONGTYPE x"]),
                          st.sampled_from([b"j1", b"j2", b"", b"\xff"])), max_size=6),
       st.sampled_from([None, b"1700000000", b"x"]))
def test_plausible_rows_equal_the_long_way(specs: list, score: bytes | None) -> None:
    flat = [v for fields, flag, job_id in specs for v in flat_row(job_id, fields, flag, score)]
    # Twice: the first pass teaches the table of verdicts, the second takes the fast path.
    assert rows_from_listing(flat) == long_way(flat)
    assert rows_from_listing(flat) == long_way(flat)


@given(st.dictionaries(st.sampled_from(LIST_FIELDS), junk, max_size=len(LIST_FIELDS)),
       st.sampled_from([-1, 0, 1, b"ERR"]))
def test_any_bytes_make_the_same_row_as_the_long_way(raw: dict[str, bytes], flag: object) -> None:
    flat = flat_row(b"j", raw, flag, stored_id=raw.get("job_id", b"j"))
    assert rows_from_listing(flat) == long_way(flat)
    assert rows_from_listing(flat) == long_way(flat)


def test_a_reply_that_is_not_a_list_is_no_rows() -> None:
    assert rows_from_listing(b"ERR") == [] == long_way(b"ERR")  # type: ignore[arg-type]


def write_shapes(store: Store, n: int) -> list[str]:
    """N jobs of many shapes, written the way producers write them."""
    ids = []
    t0 = 1_700_000_000.0
    with store.r.pipeline(transaction=False) as pipe:
        for i in range(n):
            job_id = f"{i:08x}" + "r" * 24
            kind = i % 10
            f = job_fields(job_id, ["sleep", "qc-files", "insert-rows"][i % 3], f"u{i % 4}",
                           ["python", "-m", "x"], {}, created=t0 + i)
            f.update(status=["completed", "failed", "running", "queued", "killed"][i % 5],
                     started=repr(t0 + i + 1), progress=str(i % 101), host=f"h{i % 2}",
                     message=f"step {i}")
            if kind == 1:
                f["message"] = "two\nlines"
            elif kind == 2:
                f.update(exit_code="3", error="Traceback (most recent call last):\n boom")
            elif kind == 3:  # ours, running: its heartbeat alive (half of them) or lapsed
                f.update(status="running", heartbeat=repr(t0), kill_requested=repr(t0 + 5))
            elif kind == 4:
                f.update(progress="250", errors="2")
            elif kind == 5:
                f["status"] = "success"  # another producer's word
            elif kind == 6:
                del f["message"]
                f["retried_by"] = "x" * 32
            elif kind == 7:
                f["percent"] = "40"  # another producer's dialect
            elif kind == 8:
                f["created"] = "not a time"
            elif kind == 9:  # no attempt: a heartbeat alone says it is ours (not polled)
                del f["attempt"]
                f["status"] = "queued"
                if i % 20 == 9:
                    f["heartbeat"] = repr(t0)
            pipe.hset(store.keys.job(job_id), mapping=f)
            pipe.zadd(store.keys.jobs_index, {job_id: t0 + i})
            if kind == 3 and i % 20 == 3:
                pipe.set(store.keys.heartbeat(job_id), "1", ex=60)
            ids.append(job_id)
        pipe.execute()
    return ids


def test_rows_from_a_real_listing_equal_the_long_way_and_most_go_fast(store: Store,
                                                                       config) -> None:
    write_shapes(store, 3000)
    before = rows.long_way

    async def read() -> list[list[Row]]:
        astore = AsyncStore.from_url(config.url, config.prefix)
        try:
            return [page async for page in astore.iter_pages(None, 0, 1000,
                                                             parse=rows_from_listing)]
        finally:
            await astore.aclose()

    pages = asyncio.run(read())
    assert [len(p) for p in pages] == [1000, 1000, 1000]
    got = [r for p in pages for r in p]
    assert got == [Row(j) for j in store.list_jobs(None, 0, 3000)]
    assert {r.effective_status for r in got} >= {"running", "lost", "queued", "completed"}
    assert {r.polled for r in got} == {True, False}
    # The QC and insert jobs (not the generic verdict), and the sleep jobs with a two-line
    # message, damage or another producer's dialect (kinds 1, 4, 5, 7, 8) take the long
    # way: 2,500 rows. The other 500 go fast once their verdict is known.
    slow = rows.long_way - before
    assert 2500 <= slow <= 2540


def test_pages_come_in_order_once_each_and_none_is_left_in_flight(store: Store, config) -> None:
    ids = write_shapes(store, 2500)

    async def read(stop_after: int | None) -> tuple[list[str], int]:
        astore = AsyncStore.from_url(config.url, config.prefix)
        try:
            got: list[str] = []
            pages = astore.iter_pages(None, 0, 1000)
            async for page in pages:
                got.extend(j.job_id for j in page)
                if stop_after is not None and len(got) >= stop_after:
                    break
            await pages.aclose()
            await asyncio.sleep(0.05)
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            return got, len(pending)
        finally:
            await astore.aclose()

    got, pending = asyncio.run(read(None))
    assert got == sorted(ids, reverse=True) and pending == 0
    # Stopped after the first page while the second was being read: nothing left running.
    got, pending = asyncio.run(read(1000))
    assert got == sorted(ids, reverse=True)[:1000] and pending == 0


def test_an_empty_index_is_no_page(config) -> None:
    async def read() -> list[list]:
        astore = AsyncStore.from_url(config.url, config.prefix)
        try:
            return [p async for p in astore.iter_pages(None, 0, 100)]
        finally:
            await astore.aclose()

    assert asyncio.run(read()) == []


def test_a_job_added_while_loading_shifts_the_pages_and_none_is_missed(store: Store, config) -> None:
    """A newer job shifts every later page by one: a job may come twice (the feed skips
    the repeat by id), none is missed."""
    ids = write_shapes(store, 300)

    async def read() -> list[str]:
        astore = AsyncStore.from_url(config.url, config.prefix)
        try:
            got: list[str] = []
            async for page in astore.iter_pages(None, 0, 100):
                got.extend(j.job_id for j in page)
                if len(got) == 100:
                    f = job_fields("z" * 32, "sleep", "u", ["x"], {}, created=time.time())
                    store.r.hset(store.keys.job("z" * 32), mapping=f)
                    store.r.zadd(store.keys.jobs_index, {"z" * 32: time.time()})
            return got
        finally:
            await astore.aclose()

    got = asyncio.run(read())
    assert set(got) == set(ids) and "z" * 32 not in got


def zmscores(store: Store) -> int:
    stats = store.r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_zmscore",
                                                                 "cmdstat_zscore"))


def test_the_key_space_pass_asks_the_index_only_about_ids_not_held(store: Store,
                                                                  config) -> None:
    """A load's pass over the key space finds a million indexed hashes: the ones the
    console already holds are not sent back to the server to be looked up."""
    ids = write_shapes(store, 500)
    f = job_fields("u" * 32, "sleep", "u", ["x"], {}, created=1.0)
    store.r.hset(store.keys.job("u" * 32), mapping=f)  # written by a producer, indexed by none

    async def discover(skip: object) -> tuple[list[str], int]:
        astore = AsyncStore.from_url(config.url, config.prefix)
        try:
            before = zmscores(store)
            cursor, found = 0, []
            while True:
                cursor, more = await astore.discover(cursor, budget=5, count=200,
                                                     skip=skip)  # type: ignore[arg-type]
                found += more
                if cursor == 0:
                    return found, zmscores(store) - before
        finally:
            await astore.aclose()

    held = set(ids)
    found, asked = asyncio.run(discover(held.__contains__))
    assert found == ["u" * 32] and asked <= 1  # only the unindexed one was asked about
    found, asked = asyncio.run(discover(None))
    assert found == ["u" * 32] and asked >= 3  # every SCAN step's ids, without `skip`
