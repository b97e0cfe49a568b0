"""Streaming checks of one delimited text file, in bounded memory.

A file is a header row (an id column name, then sample names) and data rows
(an id, then values). Lines are read one at a time; duplicate ids are found
with a fixed-size Bloom filter plus an exact second look at the few
suspects, so memory does not grow with the file.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

CHECKS = ("header", "fields", "numeric", "missing", "duplicates")
MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "-", "."})
RECORDS_PER_CHECK = 1000  # beyond this a check only counts
BLOOM_BITS = 1 << 26  # 8 MiB: ~1% false positives at 6M ids; suspects are re-checked exactly


@dataclass
class Problem:
    file: str
    line: int
    column: str
    check: str
    value: str
    message: str


@dataclass
class FileResult:
    path: str
    lines: int = 0
    bytes: int = 0
    counts: Counter[str] = field(default_factory=Counter)


class Bloom:
    def __init__(self, bits: int = BLOOM_BITS) -> None:
        self.bits = bits
        self.array = bytearray(bits // 8)

    def add(self, item: bytes) -> bool:
        """Add; True if it may have been there already."""
        digest = hashlib.blake2b(item, digest_size=16).digest()
        seen = True
        for i in range(0, 16, 4):
            bit = int.from_bytes(digest[i : i + 4], "little") % self.bits
            byte, mask = bit >> 3, 1 << (bit & 7)
            if not self.array[byte] & mask:
                seen = False
                self.array[byte] |= mask
        return seen


def sniff_delimiter(first_line: bytes, delimiter: str) -> bytes:
    if delimiter == "tab":
        return b"\t"
    if delimiter == "comma":
        return b","
    return b"\t" if first_line.count(b"\t") >= first_line.count(b",") else b","


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_file(path: str, checks: tuple[str, ...] = CHECKS, *, delimiter: str = "auto",
               missing_threshold: float = 0.5, counts: Counter[str] | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> Iterator[Problem]:
    """Yield problems as found, at most RECORDS_PER_CHECK per check; `counts` gets all."""
    counts = counts if counts is not None else Counter()
    for problem in _check(path, checks, delimiter, missing_threshold, on_progress):
        counts[problem.check] += 1
        if counts[problem.check] <= RECORDS_PER_CHECK:
            yield problem


def _check(path: str, checks: tuple[str, ...], delimiter: str, missing_threshold: float,
           on_progress: Callable[[int, int], None] | None) -> Iterator[Problem]:
    try:
        size = os.path.getsize(path)
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally below
    except OSError as exc:
        yield Problem(path, 0, "", "unreadable", "", f"cannot read: {exc.strerror or exc}")
        return
    bloom = Bloom() if "duplicates" in checks else None
    suspects: set[bytes] = set()
    try:
        header_raw = handle.readline()
        done = len(header_raw)
        if not header_raw:
            yield Problem(path, 1, "", "header", "", "the file is empty")
            return
        sep = sniff_delimiter(header_raw, delimiter)
        try:
            header = header_raw.rstrip(b"\r\n").decode("utf-8").split(sep.decode())
        except UnicodeDecodeError as exc:
            yield Problem(path, 1, "", "decode", "", f"header is not UTF-8 ({exc.reason})")
            return
        width = len(header)
        if "header" in checks:
            if width < 2:
                yield Problem(path, 1, "", "header", header[0][:60],
                              "header has fewer than 2 columns (wrong delimiter?)")
            seen_names: set[str] = set()
            for col, name in enumerate(header):
                if not name.strip():
                    yield Problem(path, 1, str(col + 1), "header", name, "empty column name")
                elif name in seen_names:
                    yield Problem(path, 1, str(col + 1), "header", name, "duplicate column name")
                seen_names.add(name)
        lineno = 1
        for raw in handle:
            lineno += 1
            done += len(raw)
            if on_progress is not None and lineno % 5000 == 0:
                on_progress(done, size)
            raw = raw.rstrip(b"\r\n")
            if not raw:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Problem(path, lineno, "", "decode", repr(raw[exc.start:exc.start + 8]),
                                        "line is not UTF-8")
                continue
            cells = text.split(sep.decode())
            if "fields" in checks and len(cells) != width:
                yield Problem(path, lineno, "", "fields", str(len(cells)),
                                        f"{len(cells)} fields, header has {width}")
            if bloom is not None and bloom.add(cells[0].encode()):
                suspects.add(cells[0].encode())
            values = cells[1:]
            missing = 0
            for col, value in enumerate(values, start=2):
                v = value.strip()
                if v.lower() in MISSING:
                    missing += 1
                elif "numeric" in checks and not _is_number(v):
                    yield Problem(path, lineno, header[col - 1] if col <= width else str(col),
                                            "numeric", v[:60], "not a number")
            if "missing" in checks and values and missing / len(values) > missing_threshold:
                yield Problem(path, lineno, "", "missing", f"{missing}/{len(values)}",
                                        f"{missing} of {len(values)} values missing")
        if on_progress is not None:
            on_progress(done, size)
        if suspects:
            yield from _confirm_duplicates(path, sep, suspects)
    finally:
        handle.close()


def _confirm_duplicates(path: str, sep: bytes, suspects: set[bytes]) -> Iterator[Problem]:
    """Second look at the Bloom filter's suspects: only true duplicates are reported."""
    first: dict[bytes, int] = {}
    with open(path, "rb") as handle:
        handle.readline()
        for lineno, raw in enumerate(handle, start=2):
            ident = raw.split(sep, 1)[0].rstrip(b"\r\n")
            if ident not in suspects:
                continue
            if ident in first:
                value = ident.decode("utf-8", errors="replace")
                yield Problem(path, lineno, "", "duplicates", value[:60],
                                        f"id already on line {first[ident]}")
            else:
                first[ident] = lineno
