"""The `insert-rows` job: load a large delimited file into a database table.

Any DB-API driver works through the same code path (the SQL is portable and
parameterised; only the placeholder style differs). Rows go in batches, one
transaction per batch, and the count of rows committed is stored in the
same transaction (table `gn_jobs_loads`), so a kill leaves only whole
batches and a retry *resumes* after the last committed row: no duplicates.
A batch with a bad row is never half-inserted: the whole batch is checked
first, then bad rows fail the job or are skipped, as `on_bad_rows` says.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from typing import Any

from gn_jobs_tui.core.jobctx import JobContext
from gn_jobs_tui.jobs.delimited import MISSING, sniff_delimiter

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


#: A job ended by SIGTERM exits 128 + 15, the convention the supervisor records for signal deaths.
KILLED_EXIT = 128 + signal.SIGTERM


class Killed(Exception):
    pass


def connect(database: str) -> tuple[Any, str]:
    """A DB-API connection and its paramstyle; a plain path means SQLite."""
    if database.startswith(("postgresql://", "postgres://")):
        import psycopg  # type: ignore[import-not-found]

        return psycopg.connect(database), "format"
    if database.startswith(("mysql://", "mariadb://")):
        from urllib.parse import urlsplit

        import pymysql  # type: ignore[import-not-found]

        u = urlsplit(database)
        return pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username,
                               password=u.password or "", database=u.path.lstrip("/")), "format"
    path = database.removeprefix("sqlite:///")
    return sqlite3.connect(path, timeout=30), "qmark"


def placeholders(style: str, n: int) -> str:
    return ", ".join(["?"] * n if style == "qmark" else ["%s"] * n)


def count_lines(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def load_key(path: str, table: str) -> str:
    st = os.stat(path)
    return hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{table}".encode(),
                        usedforsecurity=False).hexdigest()


def rows(path: str, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
    """(line number, cells or None if undecodable) per line, the header first."""
    with open(path, "rb") as f:
        header = f.readline()
        sep = sniff_delimiter(header, delimiter).decode()
        yield 1, header.rstrip(b"\r\n").decode("utf-8", errors="replace").split(sep)
        for lineno, raw in enumerate(f, start=2):
            raw = raw.rstrip(b"\r\n")
            if not raw:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield lineno, None
                continue
            yield lineno, text.split(sep)


def bad_reason(cells: list[str] | None, width: int, numeric: bool) -> str | None:
    if cells is None:
        return "not UTF-8"
    if len(cells) != width:
        return f"{len(cells)} fields, header has {width}"
    if not cells[0].strip():
        return "empty id"
    if numeric:
        for v in cells[1:]:
            v = v.strip()
            if v.lower() in MISSING:
                continue
            try:
                float(v)
            except ValueError:
                return f"not a number: {v[:30]!r}"
    return None


def run(path: str, database: str, table: str, batch_size: int, on_bad: str, delimiter: str,
        numeric: bool, max_rate: int = 0) -> int:
    ctx = JobContext.from_env()
    if not IDENT.match(table):
        print(f"bad table name {table!r}", file=sys.stderr)
        return 2
    total = max(0, count_lines(path) - 1)
    conn, style = connect(database)
    cur = conn.cursor()
    it = rows(path, delimiter)
    _, header = next(it)
    assert header is not None
    columns = ["row_id"] + [f"c{i}" for i in range(1, len(header))]
    cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ("  # noqa: S608 - identifier checked above
                + ", ".join(f"{c} VARCHAR(255)" for c in columns) + ")")
    cur.execute("CREATE TABLE IF NOT EXISTS gn_jobs_loads (load_key VARCHAR(64) PRIMARY KEY, "
                "rows_committed INTEGER NOT NULL, lines_done INTEGER NOT NULL)")
    key = load_key(path, table)
    cur.execute(f"SELECT rows_committed, lines_done FROM gn_jobs_loads WHERE load_key = "
                f"{placeholders(style, 1)}", (key,))
    found = cur.fetchone()
    committed, resume_line = (int(found[0]), int(found[1])) if found else (0, 1)
    if found:
        print(f"resuming after line {resume_line}: {committed} rows already committed", flush=True)
    else:
        cur.execute(f"INSERT INTO gn_jobs_loads (load_key, rows_committed, lines_done) VALUES "
                    f"({placeholders(style, 3)})", (key, 0, 1))
    conn.commit()
    insert = (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - checked identifiers
              f"VALUES ({placeholders(style, len(columns))})")
    update = (f"UPDATE gn_jobs_loads SET rows_committed = {placeholders(style, 1)}, lines_done = "
              f"{placeholders(style, 1)} WHERE load_key = {placeholders(style, 1)}")

    stop = {"requested": False}

    def on_term(*_: object) -> None:
        # Only a flag: raising here could land inside a Redis or DB call.
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    bad_rows = 0
    # Rates and the rate limit count the rows of THIS attempt only: a resumed
    # load did not insert the rows committed before it in no time at all.
    committed_before = committed
    start = time.monotonic()
    done_lines = resume_line
    batch: list[list[str]] = []
    last_line = resume_line

    def commit_batch() -> None:
        nonlocal committed, batch, done_lines
        if batch:
            cur.executemany(insert, batch)
        committed += len(batch)
        cur.execute(update, (committed, last_line, key))
        conn.commit()  # the batch and its progress row, in one transaction
        done_lines = last_line
        batch = []
        if max_rate:  # spare a production database: hold the rate down
            while not stop["requested"] and \
                    (committed - committed_before) / max_rate > time.monotonic() - start:
                time.sleep(0.02)
        # Reported after the hold, so a rate-limited load shows the rate it keeps.
        rate = (committed - committed_before) / max(1e-6, time.monotonic() - start)
        pct = 100.0 * min(1.0, (done_lines - 1) / max(1, total))
        ctx.progress(pct, f"{committed} of {total} rows, {rate:,.0f} rows/s",
                     rows_done=committed, rows_total=total, rows_per_s=f"{rate:.0f}",
                     bad_rows=bad_rows, committed=committed)

    try:
        pending_bad: list[tuple[int, str]] = []
        for lineno, cells in it:
            if stop["requested"]:
                raise Killed
            if lineno <= resume_line:
                continue
            reason = bad_reason(cells, len(header), numeric)
            if reason:
                pending_bad.append((lineno, reason))
                print(f"bad row at line {lineno}: {reason}", file=sys.stderr, flush=True)
                bad_rows += 1
                if on_bad == "fail":
                    break
            else:
                assert cells is not None
                batch.append(cells)
            last_line = lineno
            if len(batch) >= batch_size:
                commit_batch()
        if pending_bad and on_bad == "fail":
            # The batch holding the bad row is dropped whole: never half-inserted.
            batch = []
            lines = ", ".join(str(n) for n, _ in pending_bad[:10])
            msg = f"failed at bad row (line {lines}): {pending_bad[0][1]}; {committed} rows committed"
            ctx.set(message=msg, bad_rows=bad_rows, committed=committed, rows_done=committed,
                    rows_total=total)
            print(msg, file=sys.stderr, flush=True)
            return 1
        if stop["requested"]:
            raise Killed
        commit_batch()
    except Killed:
        conn.rollback()
        msg = f"killed: {committed} rows committed (whole batches only)"
        print(msg, flush=True)
        ctx.set(message=msg, committed=committed, rows_done=committed, rows_total=total)
        return KILLED_EXIT
    finally:
        conn.close()
    msg = f"inserted {committed} rows into {table}" + (f", skipped {bad_rows} bad rows" if bad_rows else "")
    ctx.progress(100, msg, rows_done=committed, rows_total=total, bad_rows=bad_rows,
                 committed=committed)
    print(msg, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gn-jobs-insert-rows")
    parser.add_argument("file")
    parser.add_argument("--database", required=True)
    parser.add_argument("--table", default="data_rows")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--on-bad-rows", choices=["fail", "skip"], default="fail")
    parser.add_argument("--delimiter", choices=["auto", "tab", "comma"], default="auto")
    parser.add_argument("--numeric", choices=["yes", "no"], default="yes")
    parser.add_argument("--max-rate", type=int, default=0)
    a = parser.parse_args(argv)
    return run(a.file, a.database, a.table, a.batch_size, a.on_bad_rows, a.delimiter,
               a.numeric == "yes", a.max_rate)


if __name__ == "__main__":
    sys.exit(main())
