"""The `sleep` job: runs for a given time, reporting progress; for tests and demos."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from gn_jobs_tui.core.jobctx import JobContext


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gn-jobs-sleep")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args(argv)
    # Killed, it exits 128 + 15 through sys.exit, so its last progress is still flushed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    ctx = JobContext.from_env()
    start = time.monotonic()
    tick = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.seconds:
            break
        pct = 100.0 * elapsed / args.seconds if args.seconds else 100.0
        print(f"tick {tick}: {elapsed:.1f}s of {args.seconds:g}s", flush=True)
        ctx.progress(pct, f"sleeping, {args.seconds - elapsed:.0f}s left")
        tick += 1
        time.sleep(min(1.0, max(0.0, args.seconds - elapsed)))
    ctx.progress(100.0, "done" if args.exit_code == 0 else f"ending with {args.exit_code}")
    print("done", flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
