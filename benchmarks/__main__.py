"""`python -m benchmarks [--quick] [--size N] [--strict] [--only NAME ...]`.

Every benchmark, one line per figure, JSON in benchmarks/results/. `--size`
is the large size of the listing, lookup and console benchmarks (1000000 for
the million-job column of the README); `--strict` exits 1 when a figure
misses its target. The figures are ratios measured side by side in one run:
never timed tests.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks import common

#: Each benchmark, in the order they run, with what `--quick` shrinks.
BENCHES = ("list", "lookup", "console", "updates", "output", "launch", "jobs", "outbox",
           "cli", "topology", "load")


def run_one(name: str, size: int, quick: bool) -> None:
    """Import a benchmark only when it runs: each brings its own peers (rq, …)."""
    if name == "list":
        from benchmarks import bench_list
        bench_list.run((10_000, size))
    elif name == "lookup":
        from benchmarks import bench_lookup
        bench_lookup.run((1_000, size))
    elif name == "console":
        from benchmarks import bench_console
        bench_console.run(size)
    elif name == "updates":
        from benchmarks import bench_updates
        bench_updates.run(min(size, 100_000), 200, 3 if quick else 10)
    elif name == "output":
        from benchmarks import bench_output
        bench_output.run(50_000 if quick else 200_000)
    elif name == "launch":
        from benchmarks import bench_launch
        bench_launch.run()
    elif name == "jobs":
        from benchmarks import bench_jobs
        bench_jobs.run(200_000 if quick else 1_500_000)
    elif name == "outbox":
        from benchmarks import bench_outbox
        bench_outbox.run(20_000 if quick else 100_000)
    elif name == "cli":
        from benchmarks import bench_cli
        bench_cli.run()
    elif name == "topology":
        from benchmarks import bench_topology
        bench_topology.run(min(size, 100_000))
    elif name == "load":
        from benchmarks import bench_load
        bench_load.run(quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--size", type=int, default=None,
                        help="the large size (default 100000; 10000 with --quick)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--only", nargs="+", choices=BENCHES, metavar="NAME",
                        help=f"run only these: {', '.join(BENCHES)}")
    # `python -m benchmarks quick` (the old spelling) still works.
    args_in = ["--quick" if a == "quick" else a for a in (sys.argv[1:] if argv is None else argv)]
    args = parser.parse_args(args_in)
    size = args.size or (10_000 if args.quick else 100_000)
    t = time.perf_counter()
    for name in args.only or BENCHES:
        run_one(name, size, args.quick)
    missed = [name for name, fig in common.FIGURES.items() if fig.get("ok") is False]
    print(f"all benchmarks in {time.perf_counter() - t:.0f} s; figures in {common.save()}")
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(missed))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
