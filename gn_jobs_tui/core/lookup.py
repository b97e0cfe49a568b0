"""Finding jobs: every source of job ids, and bounded lookups where indexes allow.

Job ids come from three sources (DESIGN.md §1 and the dialects):
1. the all-jobs sorted set `P:jobs` (ours, and producers that write it);
2. the per-user sets `P:users:<u>:jobs`, found by a SCAN of that pattern
   (gn-uploader's own job code indexes only there);
3. job hashes nobody indexed, found by a SCAN of `P:jobs:*` (GeneNetwork2).

Sources are read lazily, cheapest first, so `--limit N` stops after about N
jobs. Short ids and `--status` use the indexes this project keeps (`P:ids`,
`P:status:<s>`, `P:heartbeats`), which make them cost the same at a million
jobs as at a thousand. Jobs of other producers are not in those indexes: the
slower sources are searched as well when the indexes do not cover every
indexed job, or when the server is small enough that it costs little.
"""

from __future__ import annotations

from collections.abc import Iterator

from gn_jobs_tui.core import errors
from gn_jobs_tui.core.keys import OUR_STATUSES
from gn_jobs_tui.core.model import Job, looks_like_a_job
from gn_jobs_tui.core.store import PAGE, Store, StoreError

#: Up to this many keys, also search what no index covers (a full SCAN is cheap).
SMALL_KEYSPACE = 200_000
SCAN_COUNT = 5000


def _user_only(store: Store, seen: set[str]) -> Iterator[list[Job]]:
    """Jobs listed only in per-user indexes, newest first, a page at a time."""
    scored: dict[str, tuple[float, str]] = {}
    for index in store.user_indexes():
        user = store.keys.user_of(index) or ""
        try:
            members = store.client.zrange(index, 0, -1, withscores=True)
        except errors.reply() as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            continue  # a key that only looks like a user index: not one
        for raw, score in members:
            job_id = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if job_id not in seen and job_id not in scored:
                scored[job_id] = (float(score), user)
    ids = [i for i, known in zip(scored, store.in_index(list(scored)), strict=False) if not known]
    ids.sort(key=lambda i: scored[i][0], reverse=True)
    for start in range(0, len(ids), PAGE):
        chunk = ids[start:start + PAGE]
        jobs = store.get_jobs(chunk, {i: scored[i][1] for i in chunk})
        seen.update(chunk)
        yield [j for j in jobs if not j.is_missing]


def _unindexed(store: Store, seen: set[str]) -> Iterator[list[Job]]:
    """Job hashes no index lists (a full SCAN pass), newest first within each batch."""
    cursor = 0
    while True:
        cursor, found = store.discover(cursor, budget=10, count=SCAN_COUNT)
        fresh = [i for i in found if i not in seen]
        if fresh:
            seen.update(fresh)
            jobs = [j for j in store.get_jobs(fresh) if looks_like_a_job(j)]
            yield sorted(jobs, key=lambda j: j.created or 0.0, reverse=True)
        if cursor == 0:
            return


def all_sources(store: Store, user: str | None = None, *, first: int = PAGE,
                others: bool = True) -> Iterator[list[Job]]:
    """Pages of jobs from every source, cheapest first; each job once.

    `first`: the size of the first page (`--limit N` reads about N jobs);
    pages grow from there. `others`: also the per-user-only and unindexed jobs.
    """
    seen: set[str] = set()
    start, size = 0, max(1, min(first, PAGE))
    while True:
        page = store.list_jobs(user, start, size)
        fresh = [j for j in page if j.job_id not in seen]
        seen.update(j.job_id for j in fresh)
        if fresh:
            yield fresh
        if len(page) < size:
            break
        start += size
        size = min(PAGE, size * 4)
    if user or not others:
        return
    yield from _user_only(store, seen)
    yield from _unindexed(store, seen)


def _by_status(store: Store, status: str, first: int = PAGE) -> Iterator[list[Job]] | None:
    """Candidates for one status from our status index (and lapsed heartbeats for
    lost/running), or None when those indexes do not cover every indexed job."""
    size = max(1, min(first, PAGE))
    covered, ids, lapsed = store.status_probe(status, size)
    if not covered:
        return None

    def pages() -> Iterator[list[Job]]:
        seen = set(lapsed)
        if lapsed:
            yield store.get_jobs(lapsed)
        start, batch, page_ids = 0, size, ids
        while page_ids:
            fresh = [i for i in page_ids if i not in seen]
            seen.update(fresh)
            if fresh:
                yield store.get_jobs(fresh)
            if len(page_ids) < batch:
                return
            start += batch
            batch = min(PAGE, batch * 4)
            page_ids = store.status_ids(status, start, batch)

    return pages()


def listing(store: Store, *, user: str | None = None, status: str | None = None,
            limit: int = 0, all_sources_too: bool = False) -> list[Job]:
    """Jobs newest first, filtered; at most `limit` (0: all). Lost jobs are written back.

    With a status, and our status indexes covering the all-jobs index, only
    those indexes are read (bounded); jobs that only other producers' per-user
    indexes list, or that nobody indexed, are searched too with
    `all_sources_too` (a SCAN of the key space), or when the indexes do not
    cover every job (e.g. a server only other producers write to).
    """
    jobs: list[Job] = []
    taken: set[str] = set()

    def take(pages: Iterator[list[Job]]) -> bool:
        for page in pages:
            for job in page:
                if job.job_id in taken or job.is_missing:
                    continue
                if job.is_lost:
                    store.mark_lost(job)
                if status and job.effective_status != status:
                    continue
                if user and job.user_id != user:
                    continue
                taken.add(job.job_id)
                jobs.append(job)
                if limit and len(jobs) >= limit:
                    return True
        return False

    first = limit or PAGE
    indexed = _by_status(store, status, first) if status else None
    if indexed is not None:
        if not take(indexed) and all_sources_too and not user:
            seen: set[str] = set()  # _user_only skips what the all-jobs index holds
            take(_user_only(store, seen))
            take(_unindexed(store, seen))
    else:
        take(all_sources(store, user, first=first))
    jobs.sort(key=lambda j: j.created or 0.0, reverse=True)
    return jobs[:limit] if limit else jobs


def _with_user(store: Store, job: Job) -> Job:
    """A job whose hash names no user (gn-uploader's): the user index listing it says."""
    if job.user_id != "unknown":
        return job
    names = store.user_indexes()
    scores = store._run([("ZSCORE", n, job.job_id) for n in names], transaction=False,
                        raise_on_error=False)
    for name, score in zip(names, scores, strict=False):
        if score is not None and not isinstance(score, Exception):
            job.user_id = store.keys.user_of(name) or job.user_id
            if job.created is None:
                job.created = float(score)
            job.damage = tuple(d for d in job.damage if d not in ("user_id: missing",
                                                                  "created: missing"))
            break
    return job


def find(store: Store, text: str) -> Job:
    """A job by its full id or a unique prefix of one; StoreError says why not.

    A short text asks the lexical id index first (one command); a full-length
    id is read directly. Jobs the id index lacks (other producers') are found
    by a SCAN for their key, unless the server is large and the index covers
    every indexed job.
    """
    text = text.strip()
    if not text:
        raise StoreError("no job id given")
    hits: list[str] = []
    if len(text) < 32:
        hits = store.ids_by_prefix(text, limit=11)
        if text in hits:
            hits = [text]
    if not hits:
        job = store.get_job(text)
        if job is not None:
            return _with_user(store, job)
        counts = store.index_counts()
        if counts["ids"] < counts["jobs"] or 0 <= counts["keys"] <= SMALL_KEYSPACE:
            hits = store.scan_prefix(text, limit=11)
        elif counts["keys"] > SMALL_KEYSPACE:
            raise StoreError(f"no such job: {text} (the id index has none; jobs that no index "
                             "lists are searched only on small servers: give the full id)")
    if len(hits) == 1:
        job = store.get_job(hits[0])
        if job is not None:
            return _with_user(store, job)
    if len(hits) > 1:
        many = f"{len(hits)}" if len(hits) <= 10 else "more than 10"
        raise StoreError(f"ambiguous job id {text!r}: {many} jobs match")
    raise StoreError(f"no such job: {text}")


def reindex(store: Store) -> int:
    """File existing jobs in `P:ids` (all of them) and in the status indexes (ours).

    For jobs written before those indexes existed. Only jobs written in our own
    dialect go into the status indexes: other producers change a status without
    telling those indexes, so filing them there would make `--status` miss them.
    """
    store.check_writable("reindex")
    filed = 0
    for page in all_sources(store):
        cmds: list[tuple[object, ...]] = []
        for job in page:
            if job.is_missing:
                continue
            cmds.append(("ZADD", store.keys.ids, "0", job.job_id))
            ours = job.raw_status in OUR_STATUSES and job.attempt is not None
            if ours:
                cmds += store.keys.status_moves(job.job_id, job.status, job.created or 0.0)
            filed += 1
        if cmds:
            store._run(cmds, transaction=False)
    return filed
