"""The console's index: what the table shows equals a plain sort and filter, always.

No server here: the index is fed Job objects directly, with builds run at
once or later (as the worker thread would), pages in order or not, changes
arriving while a build runs, and tiny move budgets that force every path.
"""

from __future__ import annotations

import random

import pytest

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.ui import model, ordering
from gn_jobs_tui.ui.model import JobIndex
from gn_jobs_tui.ui.ordering import SORT_KEYS, View, full_key
from gn_jobs_tui.ui.query import Query, fuzzy_id
from gn_jobs_tui.ui.rows import Row

FILTERS = ["", "boom", "status:failed", "user:al type:qc", "-host:a",
           "ok status:running status:failed", "status:error"]


def brute(index: JobIndex) -> list[str]:
    view = index.view
    jobs = sorted((j for j in index.jobs.values() if view.matches(j)),
                  key=full_key(view.sort_key, view.now), reverse=view.reverse)
    return [j.job_id for j in jobs]


def shown(index: JobIndex) -> list[str]:
    return [index.row(i).job_id for i in range(len(index))]


def run_build(index: JobIndex, build: ordering.Build | None) -> None:
    if build is not None:
        build.started = True
        index.finish(build, ordering.run(build, preview=lambda rows: None))


def settle(index: JobIndex) -> None:
    while (build := index.next_build() or (index.building if index.building else None)):
        run_build(index, build)


def random_job(rnd: random.Random, i: int, created: float | None = None) -> Job:
    return Job(job_id=f"{i:04x}" + rnd.choice("abc"), job_type=rnd.choice(["qc", "sleep", "ins"]),
               user_id=rnd.choice(["al", "bo", "cy"]),
               status=rnd.choice(["running", "failed", "completed", "queued"]),
               created=created if created is not None else rnd.choice(
                   [None, float(rnd.randint(0, 50))]),
               started=rnd.choice([None, float(rnd.randint(0, 50))]),
               progress=rnd.choice([None, 10.0, 50.0]),
               message=rnd.choice([None, "x", "boom", "ok"]), host=rnd.choice([None, "a", "b"]))


def random_view(rnd: random.Random) -> View:
    return View(sort_key=rnd.choice(SORT_KEYS), reverse=rnd.random() < 0.5,
                query=Query.parse(rnd.choice(FILTERS)), user=rnd.choice([None, None, "bo"]),
                now=5.0)


@pytest.mark.parametrize("seed", range(120))
def test_the_table_always_equals_a_plain_sort_and_filter(seed: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(seed)
    monkeypatch.setattr(model, "MOVE_BUDGET", rnd.choice([10, 1000, 60_000_000]))
    monkeypatch.setattr(ordering, "CHUNK", rnd.choice([3, 7, 20_000]))
    monkeypatch.setattr(ordering, "MERGE_STEP", rnd.choice([2, 5, 1000]))
    index = JobIndex(lambda: 1000.0)
    index.loading = True
    total = rnd.randint(0, 40)
    created = sorted((float(rnd.randint(0, 100)) for _ in range(total)), reverse=True)
    pos = 0
    while pos < total:  # pages, newest first; now and then out of order
        k = rnd.randint(1, 10)
        page = [random_job(rnd, i, created[i]) for i in range(pos, min(total, pos + k))]
        if rnd.random() < 0.2:
            rnd.shuffle(page)
        index.add_page(page)
        pos += k
        if rnd.random() < 0.3:
            build = index.set_view(random_view(rnd))
            if build is not None and rnd.random() < 0.5:
                run_build(index, build)
        if rnd.random() < 0.5:
            run_build(index, index.next_build() or index.building)
    index.loading = False
    for step in range(60):
        op = rnd.random()
        ids = list(index.jobs)
        if op < 0.4 and ids:
            changed = []
            for job_id in rnd.sample(ids, min(len(ids), rnd.randint(1, 5))):
                job = random_job(rnd, 0)
                job.job_id = job_id
                if rnd.random() < 0.7:
                    job.created = index.jobs[job_id].created
                changed.append(job)
            index.upsert(changed)
        elif op < 0.55:
            index.upsert([random_job(rnd, 1000 + step * 10 + t) for t in range(rnd.randint(1, 4))])
        elif op < 0.65 and ids:
            index.remove(rnd.sample(ids, min(len(ids), rnd.randint(1, 5))))
        elif op < 0.85:
            index.set_view(random_view(rnd))
        if index.building is not None and rnd.random() < 0.5:
            run_build(index, index.building)  # else it finishes later, with a log to replay
        if rnd.random() < 0.7:
            settle(index)
        if index.building is None and not index.unsorted:
            assert shown(index) == brute(index), (seed, step)
            assert [j.job_id for j in index.base] == [
                j.job_id for j in sorted(index.jobs.values(), key=ordering.base_key)]
            assert all(index.jobs[j.job_id] is j for j in index.order)  # current objects only
    settle(index)
    assert shown(index) == brute(index)


def pages_of(n: int, size: int = 500) -> list[list[Job]]:
    jobs = [Job(job_id=f"{i:08x}", user_id=f"u{i % 7}", status="completed", created=float(i),
                message=f"m{i}") for i in range(n)]
    jobs.reverse()  # the listing sends the newest first
    return [jobs[i : i + size] for i in range(0, n, size)]


def load(index: JobIndex, pages: list[list[Job]]) -> int:
    """Feed a load the way the app does; returns how many builds ran."""
    index.loading = True
    for page in pages:
        index.add_page(page)
        run_build(index, index.next_build())
    index.loading = False
    settle(index)
    return index.builds


def test_a_load_in_the_default_view_needs_no_sort_at_all() -> None:
    index = JobIndex(lambda: 0.0)
    assert load(index, pages_of(20_000)) == 0
    assert shown(index) == brute(index)


def test_sorts_per_load_are_bounded_not_one_per_page() -> None:
    """Sorted by another column while 80 pages arrive: the lists are rebuilt only when
    what is loaded has doubled, and once at the end (today: not once per page)."""
    for n in (5_000, 40_000):
        index = JobIndex(lambda: 0.0)
        index.set_view(View(sort_key="user", reverse=False))
        pages = pages_of(n)
        builds = load(index, pages)
        assert shown(index) == brute(index)
        assert builds <= 8, (n, len(pages), builds)
    # With a filter too, the default sort still needs no sort: pages are filtered as they come.
    index = JobIndex(lambda: 0.0)
    index.set_view(View(query=Query.parse("user:u3")))
    builds_before = index.builds
    assert load(index, pages_of(20_000)) - builds_before <= 1
    assert shown(index) == brute(index)


def test_one_change_among_many_moves_one_row_without_a_build() -> None:
    index = JobIndex(lambda: 0.0)
    load(index, pages_of(30_000))
    run_build(index, index.set_view(View(sort_key="status", reverse=False)))
    builds = index.builds
    job = index.jobs[f"{12345:08x}"]
    index.upsert([Job(job_id=job.job_id, user_id=job.user_id, status="failed",
                      created=job.created, message=job.message)])
    assert index.builds == builds and index.building is None
    assert index.row_of(job.job_id) is not None and shown(index) == brute(index)


@pytest.mark.parametrize(("text", "hits"), [
    ("user:alice", {"a1", "a2"}), ("type:qc", {"a1", "b1"}), ("status:failed", {"a2"}),
    ("status:error", {"a2"}), ("host:node-a", {"a1", "b1"}), ("-user:alice", {"b1", "c1"}),
    ("user:alice status:failed status:running", {"a1", "a2"}), ("boom", {"a2"}),
    ("9cff", {"a1"}), ("id:c1", {"c1"}), ("bad", {"c1"}), ("nothing:here", set()),
])
def test_filter_tokens(text: str, hits: set[str]) -> None:
    jobs = {
        "a1": Job(job_id="9c0ffee0a1", job_type="qc-files", user_id="alice", status="running",
                  host="node-a.example.org"),
        "a2": Job(job_id="fa11ed00a2", job_type="sleep", user_id="alice", status="failed",
                  message="boom"),
        "b1": Job(job_id="b0b00000b1", job_type="qc-files", user_id="bob", status="completed",
                  host="node-a"),
        "c1": Job(job_id="c1000000c1", job_type="sleep", user_id="carol", status="queued",
                  host="node-ab", message="bad input"),
    }
    query = Query.parse(text)
    assert {k for k, j in jobs.items() if query.matches(Row(j))} == hits


def test_fuzzy_ids_need_the_first_letter_and_the_rest_in_order() -> None:
    assert fuzzy_id("9cff", "9c0ffee000")
    assert not fuzzy_id("cff", "9c0ffee000")  # not anchored: no
    assert not fuzzy_id("9fc", "9c0ffee000")  # out of order: no
    assert not Query.parse("cafe").matches(Row(Job(job_id="c0a0f0e0")))  # hex, but no digit


def test_an_index_that_starts_filtered_and_sorted_loads_right() -> None:
    """`gn-jobs --user alice`: the view is set before the first job arrives."""
    index = JobIndex(lambda: 0.0)
    index.reset(View(sort_key="user", reverse=False, user="u3"))
    load(index, pages_of(3_000))
    assert len(index) == len([j for j in index.jobs.values() if j.user_id == "u3"]) > 0
    assert shown(index) == brute(index)
