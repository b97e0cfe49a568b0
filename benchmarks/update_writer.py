"""Writer process for the latency benchmark: RATE status/message changes a second."""

from __future__ import annotations

import json
import random
import sys
import time

from gn_jobs_tui.core.store import Store


def main(url: str, prefix: str, rate: int, seconds: float, ids_file: str) -> None:
    ids = json.loads(open(ids_file).read())
    store = Store.from_url(url, prefix)
    rng = random.Random(7)
    last: dict[str, str] = {}
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate)
        while n < due:
            job_id = rng.choice(ids)
            msg = f"t={time.time():.6f} n={n}"
            store.update(job_id, "status", status="running", message=msg)
            last[job_id] = msg
            n += 1
        time.sleep(0.001)
    print(json.dumps({"writes": n, "last": last}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
