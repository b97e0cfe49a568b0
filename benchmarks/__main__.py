"""`python -m benchmarks [quick]`: every benchmark, one line per figure, JSON in results/."""

from __future__ import annotations

import sys
import time

from benchmarks import (
    bench_console,
    bench_jobs,
    bench_launch,
    bench_list,
    bench_output,
    bench_updates,
    common,
)


def main() -> None:
    quick = "quick" in sys.argv[1:]
    t = time.perf_counter()
    bench_list.run((10_000,) if quick else (10_000, 100_000))
    bench_console.run(10_000 if quick else 100_000)
    bench_updates.run(10_000 if quick else 100_000, 200, 3 if quick else 10)
    bench_output.run(50_000 if quick else 200_000)
    bench_launch.run()
    bench_jobs.run(200_000 if quick else 1_500_000)
    print(f"all benchmarks in {time.perf_counter() - t:.0f} s; figures in {common.save()}")


if __name__ == "__main__":
    main()
