"""CLI start-up (issue 11, target 4): `gn-jobs --help` and `list --limit 20` vs `python -c pass`.

Each is the fastest of several runs of the real command (a new interpreter
each time), beside the bare interpreter in the same run. The heaviest
imports of each, from `python -X importtime`, say where the time goes.

    python -m benchmarks.bench_cli
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.common import fill, report, server
from gn_jobs_tui.core.store import Store


def fastest(argv: list[str], repeat: int = 9, env: dict[str, str] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - t)
    return best


def heaviest(argv: list[str], env: dict[str, str], n: int = 5) -> str:
    """The top-level imports that cost most (cumulative), as `name ms` pairs."""
    r = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True,
                       text=True, env=env)
    rows = []
    for line in r.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                rows.append((int(parts[1]), parts[2].strip()))
            except ValueError:
                continue
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:n])


def run() -> None:
    with server() as srv:
        Store.from_url(srv.url, "cli")
        fill(Store.from_url(srv.url, "cli"), 1000)
        # As after an install's first run: bytecode cached (here in a throw-away prefix,
        # and written even where PYTHONDONTWRITEBYTECODE is set, as on this machine).
        env = dict(os.environ, GN_JOBS_REDIS_URL=srv.url, GN_JOBS_PREFIX="cli",
                   PYTHONPYCACHEPREFIX=str(srv.directory / "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for warm in (["--help"], ["list", "--limit", "20"]):
            subprocess.run([sys.executable, "-m", "gn_jobs_tui", *warm], check=True,
                           capture_output=True, env=env)
        bare = fastest([sys.executable, "-c", "pass"], env=env)
        helped = fastest([sys.executable, "-m", "gn_jobs_tui", "--help"], env=env)
        listed = fastest([sys.executable, "-m", "gn_jobs_tui", "list", "--limit", "20"], env=env)
        report("cli: python -c pass", bare * 1000, "ms")
        report("cli: gn-jobs --help", helped * 1000, "ms",
               note=heaviest(["-m", "gn_jobs_tui", "--help"], env))
        report("cli: gn-jobs --help vs python -c pass", helped / bare, "x", target="<= 3",
               ok=helped / bare <= 3)
        report("cli: gn-jobs list --limit 20", listed * 1000, "ms",
               note=heaviest(["-m", "gn_jobs_tui", "list", "--limit", "20"], env))
        report("cli: gn-jobs list --limit 20 vs python -c pass", listed / bare, "x",
               target="<= 8", ok=listed / bare <= 8)
        redis_only = fastest([sys.executable, "-c", "import redis"], env=env)
        report("cli: import redis alone vs python -c pass", redis_only / bare, "x",
               note="redis-py imports its asyncio client and asyncio itself")


if __name__ == "__main__":
    run()
