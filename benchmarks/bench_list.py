"""1. Listing: the store's full listing vs a pipelined-HMGET baseline, and rq."""

from __future__ import annotations

from benchmarks.common import best_of, fill, report, server
from gn_jobs_tui.core import scripts
from gn_jobs_tui.core.model import TABLE_FIELDS, parse_job
from gn_jobs_tui.core.store import PAGE, Store


def naive_raw(store: Store) -> list:
    ids = store.r.zrevrange(store.keys.jobs_index, 0, -1)
    out = []
    for i in range(0, len(ids), PAGE):
        with store.r.pipeline(transaction=False) as pipe:
            for job_id in ids[i : i + PAGE]:
                pipe.hmget(store.keys.job(job_id.decode()), TABLE_FIELDS)
            out.extend(pipe.execute())
    return out


def naive_jobs(store: Store) -> list:
    ids = store.r.zrevrange(store.keys.jobs_index, 0, -1)
    out = []
    for i in range(0, len(ids), PAGE):
        chunk = ids[i : i + PAGE]
        with store.r.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hmget(store.keys.job(job_id.decode()), TABLE_FIELDS)
            for job_id, values in zip(chunk, pipe.execute(), strict=True):
                raw = {k: v for k, v in zip(TABLE_FIELDS, values, strict=True) if v is not None}
                out.append(parse_job(job_id.decode(), raw, partial=True))
    return out


def store_raw(store: Store) -> list:
    out = []
    start = 0
    while True:
        rows = store._script(scripts.LIST_PAGE_RO, [store.keys.jobs_index],
                             store._list_args(start, start + PAGE - 1))
        out.extend(rows)
        if len(rows) < PAGE:
            return out
        start += PAGE


def store_jobs(store: Store) -> list:
    return [j for page in store.iter_jobs() for j in page]


def rq_fetch(conn, ids: list[str]) -> list:
    from rq.job import Job

    out = []
    for i in range(0, len(ids), PAGE):
        out.extend(Job.fetch_many(ids[i : i + PAGE], connection=conn))
    return out


def run(sizes: tuple[int, ...] = (10_000, 100_000)) -> None:
    with server() as srv:
        for n in sizes:
            store = Store.from_url(srv.url, f"list{n}")
            fill(store, n)
            t_naive_raw = best_of(lambda s=store: naive_raw(s))
            t_store_raw = best_of(lambda s=store: store_raw(s))
            t_naive = best_of(lambda s=store: naive_jobs(s))
            t_store = best_of(lambda s=store: store_jobs(s))
            assert len(store_jobs(store)) == n
            report(f"list {n}: store listing, to Job objects", t_store * 1e6 / n, "us/job")
            report(f"list {n}: naive pipelined HMGET, to Job objects", t_naive * 1e6 / n, "us/job")
            report(f"list {n}: ratio store/naive (with parsing)", t_store / t_naive, "x",
                   target="<= 0.6", ok=t_store / t_naive <= 0.6)
            report(f"list {n}: ratio store/naive (transport only)", t_store_raw / t_naive_raw, "x",
                   target="<= 0.6", ok=t_store_raw / t_naive_raw <= 0.6)
            try:
                import rq  # noqa: F401
            except ImportError:
                report(f"list {n}: rq comparison", float("nan"), "", note="rq not installed "
                       "(pip install -e '.[bench]')")
                continue
            from rq.job import Job as RqJob

            ids = []
            with store.r.pipeline(transaction=False) as pipe:
                for i in range(n):
                    job = RqJob.create(func="time.sleep", args=(1,), connection=store.r,
                                       id=f"rq{i:08d}", description="bench")
                    job.save(pipeline=pipe)
                    ids.append(job.id)
                    if i % 5000 == 4999:
                        pipe.execute()
                pipe.execute()
            t_rq = best_of(lambda s=store, i=ids: rq_fetch(s.r, i), repeat=2)
            report(f"list {n}: rq Job.fetch_many", t_rq * 1e6 / n, "us/job")
            report(f"list {n}: ratio store/rq", t_store / t_rq, "x", target="<= 0.2",
                   ok=t_store / t_rq <= 0.2)
            store.r.flushdb()


if __name__ == "__main__":
    run()
