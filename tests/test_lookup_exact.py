"""Finding jobs, exactly (`core/lookup.py`): which jobs, in which order, in which pages.

Written against the mutation run (`.ci/mutation control`). Every job is written
to a real server as its producer writes it: ours through the store (indexed
everywhere), gn-uploader's in a per-user index only, GeneNetwork2's in no index.
"""

from __future__ import annotations

import pytest

from gn_jobs_tui.core import lookup
from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import ReadOnlyError, Store, StoreError, job_fields
from tests.producers import gn2_job, gn2_manager, gn_uploader_job


def ours(store: Store, n: int, *, user: str = "u", status: str = "failed", start: int = 0,
         attempt: bool = True) -> list[str]:
    """`n` jobs of ours, ids `<start+i:04d>ours...`, created 1000+i, newest last."""
    ids = []
    for i in range(start, start + n):
        job_id = f"{i:04d}ours" + "0" * 24
        fields = job_fields(job_id, "sleep", user, ["x"], {}, created=1000.0 + i)
        fields["status"] = status
        if not attempt:
            del fields["attempt"]
        store.create_job(fields, audit=None)
        ids.append(job_id)
    return ids


def plain(store: Store, job_id: str, **fields: str) -> None:
    """A hash another producer wrote in our field names, in no index at all."""
    store.r.hset(store.keys.job(job_id), mapping={"job_id": job_id, **fields})


def pages(it) -> list[list[str]]:
    return [[j.job_id for j in page] for page in it]


# -- pages and sources --------------------------------------------------------------------

def test_indexed_pages_grow_fourfold_from_the_first_size(store: Store) -> None:
    ids = ours(store, 30)
    newest_first = ids[::-1]
    got = pages(lookup.all_sources(store, first=1, others=False))
    assert [len(p) for p in got] == [1, 4, 16, 9]
    assert sum(got, []) == newest_first
    assert [len(p) for p in pages(lookup.all_sources(store, first=0, others=False))] == \
        [1, 4, 16, 9]
    assert [len(p) for p in pages(lookup.all_sources(store, first=10, others=False))] == [10, 20]
    assert pages(lookup.all_sources(store, first=10**6)) == [newest_first]
    assert pages(lookup.all_sources(store, first=21, others=False)) == [newest_first[:21],
                                                                         newest_first[21:]]


def test_a_page_that_ends_exactly_stops_without_an_empty_page(store: Store) -> None:
    ids = ours(store, 5)
    assert pages(lookup.all_sources(store, first=5, others=False)) == [ids[::-1]]
    assert pages(lookup.all_sources(store, first=1, others=False)) == [[ids[4]], ids[3::-1]]


def test_every_source_once_in_its_order(store: Store) -> None:
    p = store.keys.prefix
    mine = ours(store, 2, user="carol")
    up_old = gn_uploader_job(store.r, p, user="alice", job_id="up-old")
    up_new = gn_uploader_job(store.r, p, user="bob", job_id="up-new")
    store.r.zadd(store.keys.user_jobs("alice"), {up_old: 10.0})
    store.r.zadd(store.keys.user_jobs("bob"), {up_new: 20.0})
    store.r.zadd(store.keys.user_jobs("zed"), {up_old: 30.0})  # a second index, later name
    store.r.zadd(store.keys.user_jobs("alice"), {mine[0]: 5.0})  # indexed in P:jobs too
    store.r.zadd(store.keys.user_jobs("alice"), {"expired": 40.0})  # its hash is gone
    plain(store, "gn2-old", status="completed", created="50")
    plain(store, "gn2-new", status="running", created="60")
    gn2_job(store.r, prefix=p, job_id="gn2-none")  # no created: oldest
    plain(store, "gn2-half", status="completed", created="0.5")  # older than any time but none
    gn2_manager(store.r, p)
    plain(store, "junk", colour="blue")  # a hash under P:jobs: with no job field
    got = pages(lookup.all_sources(store))
    assert got[:2] == [mine[::-1], [up_new, up_old]]
    # Unindexed jobs come from a SCAN in slices: newest first within each slice.
    assert sorted(sum(got[2:], [])) == ["gn2-half", "gn2-new", "gn2-none", "gn2-old"]
    created = {"gn2-new": 60.0, "gn2-old": 50.0, "gn2-half": 0.5, "gn2-none": 0.0}
    for page in got[2:]:
        assert page == sorted(page, key=created.__getitem__, reverse=True)
    if len(got) == 3:  # one slice (a small server): the whole order is known
        assert got[2] == ["gn2-new", "gn2-old", "gn2-half", "gn2-none"]
    listed = [j.job_id for j in lookup.listing(store) if j.job_id.startswith("gn2")]
    assert listed == ["gn2-new", "gn2-old", "gn2-half", "gn2-none"]
    jobs = {j.job_id: j for page in lookup.all_sources(store) for j in page}
    assert jobs[up_old].user_id == "alice" and jobs[up_new].user_id == "bob"
    assert pages(lookup.all_sources(store, others=False)) == [mine[::-1]]
    assert pages(lookup.all_sources(store, user="carol")) == [mine[::-1]]
    # One user's index as it is (a missing hash is for the caller to drop).
    assert pages(lookup.all_sources(store, user="alice")) == [["expired", up_old, mine[0]]]


def test_keys_that_only_look_like_user_indexes_break_nothing(store: Store) -> None:
    p = store.keys.prefix
    [mine] = ours(store, 1)
    # Strings, not sorted sets: one read before the real indexes (they are read in
    # name order), one after; the ones after it are still read.
    store.r.set(store.keys.user_jobs("a-weird"), "a string, not a sorted set")
    store.r.set(store.keys.user_jobs("weird"), "a string, not a sorted set")
    gn_uploader_job(store.r, p, user="", job_id="anon-1", ttl=0)  # P:users::jobs
    gn_uploader_job(store.r, p, user="ann", job_id="up-1", ttl=0)
    store.r.zadd(store.keys.user_jobs("ann"), {b"bad\xffid": 1.0})  # not UTF-8, no hash
    listed = {j.job_id: j for j in lookup.listing(store)}
    assert set(listed) == {mine, "anon-1", "up-1"}
    assert listed["anon-1"].user_id == "unknown" and listed["up-1"].user_id == "ann"
    assert lookup.find(store, "up-1").user_id == "ann"  # ZSCORE on the string: no error


def test_per_user_only_jobs_are_read_a_page_at_a_time(store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    p = store.keys.prefix
    for i in range(5):
        gn_uploader_job(store.r, p, user="alice", job_id=f"up{i}", ttl=0)
        store.r.zadd(store.keys.user_jobs("alice"), {f"up{i}": float(i)})
    monkeypatch.setattr(lookup, "PAGE", 2)
    assert pages(lookup._user_only(store, {"up3"})) == [["up4", "up2"], ["up1", "up0"]]


# -- listing ----------------------------------------------------------------------------

def test_listing_filters_limits_and_sorts(store: Store) -> None:
    failed = ours(store, 3, user="ann", status="failed")
    done = ours(store, 2, user="ben", status="completed", start=3)
    plain(store, "gn2-x", status="success", created="2000")  # in no index, completed
    plain(store, "gn2-y", status="success", created="2500", user_id="ben")
    assert [j.job_id for j in lookup.listing(store)] == \
        ["gn2-y", "gn2-x", *done[::-1], *failed[::-1]]
    # A limit stops reading early: the first source (the all-jobs index) is enough.
    assert [j.job_id for j in lookup.listing(store, limit=2)] == done[::-1]
    assert [j.job_id for j in lookup.listing(store, user="ann")] == failed[::-1]
    assert [j.job_id for j in lookup.listing(store, user="ann", limit=1)] == [failed[2]]
    assert [j.job_id for j in lookup.listing(store, user="ben")] == done[::-1]
    # A status: our indexes cover every indexed job, so only they are read...
    assert [j.job_id for j in lookup.listing(store, status="completed")] == done[::-1]
    assert [j.job_id for j in lookup.listing(store, status="completed", limit=1)] == [done[1]]
    assert [j.job_id for j in lookup.listing(store, status="failed", user="ben")] == []
    # ...unless every source is asked for, and no user is named (a user: that index only).
    assert [j.job_id for j in lookup.listing(store, status="completed", all_sources_too=True)] \
        == ["gn2-y", "gn2-x", *done[::-1]]
    assert [j.job_id for j in lookup.listing(store, status="completed", user="ben",
                                             all_sources_too=True)] == done[::-1]
    assert [j.job_id for j in lookup.listing(store, status="completed", limit=1,
                                             all_sources_too=True)] == [done[1]]


def test_listing_by_status_reads_everything_when_indexes_do_not_cover(store: Store) -> None:
    done = ours(store, 2, status="completed")
    store.r.zadd(store.keys.jobs_index, {"loose": 3000.0, "newest": 4000.0})  # no status index
    plain(store, "loose", status="completed", job_type="t", user_id="u", created="3000")
    plain(store, "newest", status="running", job_type="t", user_id="u", created="4000")
    assert [j.job_id for j in lookup.listing(store, status="completed")] == \
        ["loose", *done[::-1]]


def test_a_job_passed_over_does_not_end_its_page(store: Store) -> None:
    ann = ours(store, 2, user="ann", status="failed")
    ben = ours(store, 1, user="ben", status="failed", start=2)  # the newest
    assert [j.job_id for j in lookup.listing(store, status="failed", user="ann")] == ann[::-1]
    store.r.delete(store.keys.job(ben[0]))  # the newest is gone: skipped, the rest listed
    assert [j.job_id for j in lookup.listing(store)] == ann[::-1]


def test_status_pages_grow_and_lapsed_heartbeats_come_first(store: Store) -> None:
    ids = ours(store, 12, status="running")
    for job_id in ids:
        store.r.hset(store.keys.job(job_id), "heartbeat", "1")
    store.r.zadd(store.keys.heartbeats, {ids[0]: 1.0, ids[1]: 2.0})  # lapsed long ago
    got = pages(lookup._by_status(store, "running", first=2))
    assert got[0] == [ids[0], ids[1]]
    assert [len(p) for p in got[1:]] == [2, 8]
    assert sum(got[1:], []) == [i for i in ids[::-1] if i not in ids[:2]]
    assert [len(p) for p in pages(lookup._by_status(store, "running", first=0))] == [2, 1, 4, 5]
    assert lookup._by_status(store, "running", first=10**6) is not None
    store.r.zadd(store.keys.jobs_index, {"loose": 1.0})
    assert lookup._by_status(store, "running") is None


def test_status_pages_read_each_slice_once(store: Store) -> None:
    ids = ours(store, 30, status="completed")
    got = pages(lookup._by_status(store, "completed", first=1))
    assert [len(p) for p in got] == [1, 4, 16, 9] and sum(got, []) == ids[::-1]


def test_lost_jobs_are_written_back_when_listed(store: Store) -> None:
    [job_id] = ours(store, 1, status="running")
    store.r.hset(store.keys.job(job_id), "heartbeat", "1")  # supervised, heartbeat gone
    store.r.zadd(store.keys.heartbeats, {job_id: 1.0})
    [lost] = lookup.listing(store, status="lost")
    assert lost.job_id == job_id and lost.effective_status == "lost"
    assert store.r.hget(store.keys.job(job_id), "status") == b"lost"
    assert lookup.listing(store, status="running") == []
    assert [j.job_id for j in lookup.listing(store, status="lost")] == [job_id]


def test_missing_hashes_are_not_listed(store: Store) -> None:
    ids = ours(store, 2)
    store.r.delete(store.keys.job(ids[0]))
    assert [j.job_id for j in lookup.listing(store)] == [ids[1]]
    assert [j.job_id for j in lookup.listing(store, status="failed")] == [ids[1]]


# -- find ----------------------------------------------------------------------------------

def test_find_by_full_id_unique_prefix_and_exact_short_id(store: Store) -> None:
    [a, b] = ours(store, 2)
    assert lookup.find(store, f"  {a}\n").job_id == a
    assert lookup.find(store, b[:4]).job_id == b
    plain(store, "abc", status="failed", job_type="t", user_id="u", created="1")
    plain(store, "abcd", status="failed", job_type="t", user_id="u", created="1")
    store.r.zadd(store.keys.ids, {"abc": 0, "abcd": 0})
    assert lookup.find(store, "abc").job_id == "abc"  # an id that prefixes another
    assert lookup.find(store, "abcd").job_id == "abcd"
    with pytest.raises(StoreError, match=r"^ambiguous job id 'ab': 2 jobs match$"):
        lookup.find(store, "ab")


def test_find_refusals_word_for_word(store: Store) -> None:
    for blank in ("", "   "):
        with pytest.raises(StoreError, match=r"^no job id given$"):
            lookup.find(store, blank)
    ours(store, 11)
    with pytest.raises(StoreError, match=r"^ambiguous job id '00': more than 10 jobs match$"):
        lookup.find(store, "00")
    store.r.delete(store.keys.job("0010ours" + "0" * 24))
    store.r.zrem(store.keys.ids, "0010ours" + "0" * 24)
    with pytest.raises(StoreError, match=r"^ambiguous job id '00': 10 jobs match$"):
        lookup.find(store, "00")
    with pytest.raises(StoreError, match=r"^no such job: ffff$"):
        lookup.find(store, "ffff")
    with pytest.raises(StoreError, match=r"^no such job: " + "f" * 32 + "$"):
        lookup.find(store, "f" * 32)


def test_find_searches_jobs_the_id_index_lacks(store: Store) -> None:
    p = store.keys.prefix
    up = gn_uploader_job(store.r, p, user="alice", job_id="upjob-1")
    store.r.zadd(store.keys.user_jobs("alice"), {up: 77.0})
    gn2_job(store.r, prefix=p, job_id="gn2job-1")
    gn2_job(store.r, prefix=p, job_id="gn2job-2")
    gn2_job(store.r, prefix=p, job_id="gn2job-3")
    job = lookup.find(store, "upj")
    assert (job.job_id, job.user_id, job.created) == (up, "alice", 77.0)
    assert lookup.find(store, "gn2job-1").job_id == "gn2job-1"
    with pytest.raises(StoreError, match=r"^ambiguous job id 'gn2': 3 jobs match$"):
        lookup.find(store, "gn2")


def test_an_id_index_entry_whose_hash_is_gone(store: Store) -> None:
    store.r.zadd(store.keys.ids, {"ghost-1": 0})
    with pytest.raises(StoreError, match=r"^no such job: ghost$"):
        lookup.find(store, "ghost")


def test_find_names_the_user_of_a_hash_without_one(store: Store) -> None:
    """Our dialect, no user_id and no created: the per-user index that lists it says both."""
    plain(store, "nouser-1", status="failed", job_type="t", command="[]", progress="200")
    store.r.zadd(store.keys.user_jobs("bea"), {"nouser-1": 123.5})
    job = lookup.find(store, "nouser-1")
    assert (job.user_id, job.created) == ("bea", 123.5)
    assert job.damage == ("progress: outside 0..100",)  # only the two it answered are gone
    plain(store, "known-1", status="failed", job_type="t", user_id="cy", command="[]",
          created="5")
    store.r.zadd(store.keys.user_jobs("bea"), {"known-1": 9.0})
    job = lookup.find(store, "known-1")
    assert (job.user_id, job.created) == ("cy", 5.0)
    plain(store, "dated-1", status="failed", job_type="t", command="[]", created="7")
    store.r.zadd(store.keys.user_jobs("dee"), {"dated-1": 9.0})
    job = lookup.find(store, "dated-1")
    assert (job.user_id, job.created, job.damage) == ("dee", 7.0, ())
    plain(store, "orphan-1", status="failed", job_type="t", command="[]")
    job = lookup.find(store, "orphan-1")
    assert job.user_id == "unknown"
    assert job.damage == ("user_id: missing", "created: missing")


def test_find_on_a_large_server_trusts_the_id_index(tmp_path) -> None:
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    try:
        store = Store.from_url(srv.url, "big")
        [mine] = ours(store, 1)
        plain(store, "lonely-1", status="failed", job_type="t", user_id="u", created="1")
        filler = lookup.SMALL_KEYSPACE - int(store.r.dbsize())
        store.r.eval("for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'fill:' .. i, '') end",
                     0, filler)
        assert store.r.dbsize() == lookup.SMALL_KEYSPACE
        assert lookup.find(store, "lonel").job_id == "lonely-1"  # at the bound: still scanned
        store.r.set("fill:one-more", "")
        with pytest.raises(StoreError, match=r"^no such job: lonel \(the id index has none; "
                                             r"jobs that no index lists are searched only on "
                                             r"small servers: give the full id\)$"):
            lookup.find(store, "lonel")
        assert lookup.find(store, "lonely-1").job_id == "lonely-1"  # the full id: read directly
        assert lookup.find(store, mine[:4]).job_id == mine
        # Listing still finds the unindexed job: the SCAN goes on slice after slice.
        assert [j.job_id for j in lookup.listing(store)] == [mine, "lonely-1"]
        # An indexed job the id index lacks: the indexes do not cover, so scan anyway.
        store.r.zrem(store.keys.ids, mine)
        assert lookup.find(store, mine[:4]).job_id == mine
        # A user who may not ask DBSIZE: the server is taken as large.
        store.r.zadd(store.keys.ids, {mine: 0})
        store.r.acl_setuser("nodbsize", enabled=True, passwords=["+pw"], keys=["*"],
                            channels=["*"], commands=["+@all", "-dbsize"])
        limited = Store.from_url(f"unix://nodbsize:pw@{srv.socket}", "big")
        with pytest.raises(StoreError, match=r"^no such job: lonel$"):
            lookup.find(limited, "lonel")
        assert lookup.find(limited, mine[:4]).job_id == mine
        # Nothing found and nothing scanned: a plain "no such job", whatever the text's
        # length, and for an id the index lists whose hash is gone.
        with pytest.raises(StoreError, match=r"^no such job: f{32}$"):
            lookup.find(limited, "f" * 32)
        store.r.zadd(store.keys.ids, {"ghost-1": 0})
        with pytest.raises(StoreError, match=r"^no such job: ghost-1$"):
            lookup.find(limited, "ghost-1")
        limited.r.close()
    finally:
        srv.stop()


def test_a_status_listing_from_every_source_keeps_to_its_limit(store: Store) -> None:
    """Sources are read one after another; the last may add past the limit: cut to it."""
    p = store.keys.prefix
    ours(store, 1, status="killed")  # our status indexes cover the all-jobs index
    for i in range(3):  # listed per user only, newest last
        gn_uploader_job(store.r, p, user="ann", job_id=f"up-{i}", status="failed", ttl=0)
    plain(store, "loose-1", status="failed", job_type="t", user_id="u", created="1")  # no index
    listed = lookup.listing(store, status="failed", limit=2, all_sources_too=True)
    everything = lookup.listing(store, status="failed", all_sources_too=True)
    # gn-uploader's hashes carry no creation time: undated, they sort after loose-1.
    assert [j.job_id for j in everything] == ["loose-1", "up-2", "up-1", "up-0"]
    assert [j.job_id for j in listed] == ["loose-1", "up-2"]


# -- reindex --------------------------------------------------------------------------------

def test_reindex_files_ids_for_all_and_statuses_for_ours(store: Store) -> None:
    p = store.keys.prefix
    mine = ours(store, 2, status="killed")
    old = ours(store, 1, status="completed", start=2, attempt=False)  # before `attempt` existed
    up = gn_uploader_job(store.r, p, user="alice", job_id="up-r", status="success")
    store.r.zadd(store.keys.user_jobs("alice"), {"gone-r": 1.0})  # listed, hash missing
    store.r.zadd(store.keys.jobs_index, {"gone-i": 5000.0, "theirs-i": 3.0})  # gone: newest
    plain(store, "undated-i", status="failed", job_type="t", user_id="ann", attempt="1")
    store.r.zadd(store.keys.user_jobs("ann"), {"undated-i": 7.0})  # listed per user only
    plain(store, "theirs-i", status="success", job_type="t", user_id="u", created="3",
          attempt="1")  # our field names, another producer's status word
    store.r.delete(store.keys.ids, *(store.keys.status_index(s) for s in
                                     ("killed", "completed", "queued")))
    assert lookup.reindex(store) == 6
    assert sorted(x.decode() for x in store.r.zrange(store.keys.ids, 0, -1)) == \
        sorted([*mine, *old, up, "theirs-i", "undated-i"])
    assert store.r.zscore(store.keys.status_index("failed"), "undated-i") == 0.0
    assert [x.decode() for x in store.r.zrange(store.keys.status_index("killed"), 0, -1)] == mine
    assert store.r.zscore(store.keys.status_index("killed"), mine[1]) == 1001.0
    assert store.r.zcard(store.keys.status_index("completed")) == 0


def test_reindex_refuses_a_read_only_store(store: Store, config) -> None:
    ro = Store.from_url(config.url, config.prefix, read_only=True)
    with pytest.raises(ReadOnlyError, match=r"^read-only mode: reindex is not allowed$"):
        lookup.reindex(ro)
    ro.r.close()


def test_with_user_leaves_a_named_user_alone(store: Store) -> None:
    job = Job(job_id="x", user_id="zoe", damage=("user_id: missing",))
    assert lookup._with_user(store, job) is job and job.damage == ("user_id: missing",)
