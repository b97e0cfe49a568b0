"""Bounded lookups (issue 11, target 2) and the cost of reading without scripts (issue 10).

Short-id lookups and `list --status/--user ... --limit N` must cost the same
with a million jobs as with a thousand: at most 2x a full-id `show`, measured
in the same run, and `--limit N` reads about N jobs. Each figure is the best
of several runs (seconds on a shared machine move) and the server commands it
took (INFO commandstats, commands inside scripts included: counts don't move).

    python -m benchmarks.bench_lookup              # 1,000 and 100,000 jobs
    python -m benchmarks.bench_lookup --size 1000000
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from benchmarks.common import best_of, commands_spent, fill, report, server
from gn_jobs_tui.core import lookup
from gn_jobs_tui.core.store import Store


def figures(store: Store, ids: list[str]) -> dict[str, tuple[float, int]]:
    """name -> (seconds, server commands) for each lookup."""
    full = ids[len(ids) // 2]
    short = full[:8]
    cases: dict[str, Callable[[], object]] = {
        "show by full id": lambda: lookup.find(store, full),
        "show by 8-char id": lambda: lookup.find(store, short),
        "list --status lost --limit 1 (no match)": lambda: lookup.listing(store, status="lost",
                                                                          limit=1),
        "list --status failed --limit 1": lambda: lookup.listing(store, status="failed", limit=1),
        "list --user user3 --limit 1": lambda: lookup.listing(store, user="user3", limit=1),
        "list --limit 1": lambda: lookup.listing(store, limit=1),
        "list --status failed --limit 20": lambda: lookup.listing(store, status="failed", limit=20),
        "list --limit 20": lambda: lookup.listing(store, limit=20),
    }
    out = {}
    for name, fn in cases.items():
        seconds = best_of(fn, repeat=5)
        out[name] = (seconds, commands_spent(store.r, fn))
    assert lookup.find(store, short).job_id == full
    assert len(lookup.listing(store, status="failed", limit=20)) == 20
    return out


def run(sizes: tuple[int, ...] = (1_000, 100_000)) -> None:
    with server() as srv:
        results = {}
        for n in sizes:
            store = Store.from_url(srv.url, f"lk{n}")
            ids = fill(store, n)
            results[n] = figures(store, ids)
            base_s, base_c = results[n]["show by full id"]
            for name, (s, c) in results[n].items():
                report(f"lookup {n}: {name}", s * 1000, "ms", note=f"{c} server commands")
                if name != "show by full id" and "--limit 20" not in name:
                    report(f"lookup {n}: {name} vs full-id show", s / base_s, "x",
                           target="<= 2", ok=s / base_s <= 2)
        small, large = sizes[0], sizes[-1]
        for name in results[small]:
            cs, cl = results[small][name][1], results[large][name][1]
            report(f"lookup: {name}, commands at {large} vs {small}", cl / max(1, cs), "x",
                   target="<= 1.2", ok=cl <= 1.2 * cs)
        # Reads without scripts (an ACL user without @scripting, or a Cluster): the cost.
        store = Store.from_url(srv.url, f"lk{large}")
        scripted = best_of(lambda: [j for p in store.iter_jobs() for j in p], repeat=2)
        store.caps.scripting = False
        piped = best_of(lambda: [j for p in store.iter_jobs() for j in p], repeat=2)
        report(f"list {large}: reads without scripts (pipelines) vs with", piped / scripted, "x",
               note=f"{scripted * 1e6 / large:.1f} vs {piped * 1e6 / large:.1f} us/job")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000, help="the large size")
    args = parser.parse_args()
    run((1_000, args.size))
