"""Incremental reading of a job's output and child keys, whatever their type.

A child key may be a stream (ours), a list, a string or a hash, or not exist
yet. `KeyState` keeps a cursor so each refresh reads only what is new, and a
bounded tail plus running counts, so a child with millions of records costs
constant memory in the console.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from gn_jobs_tui.core.model import to_text

TAIL = 500
EXAMPLES_PER_GROUP = 3
READ_BATCH = 2000


@dataclass
class Entry:
    """One item of a key: a dict of fields (stream/hash/JSON) or a text."""

    fields: dict[str, str]
    text: str | None = None
    damaged: str | None = None

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


@dataclass
class KeyState:
    key: str
    kind: str = "none"  # stream | list | string | hash | none | error
    cursor: str = ""
    length: int = 0
    seen: int = 0
    first_seq: int | None = None
    tail: deque[Entry] = field(default_factory=lambda: deque(maxlen=TAIL))
    kinds: Counter[str] = field(default_factory=Counter)
    groups: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    progress: Entry | None = None
    start: Entry | None = None
    finish: Entry | None = None
    damaged: int = 0
    error: str | None = None
    #: When set, every entry read is also appended here (for `logs`, which
    #: prints all of them; the tail keeps only the last TAIL).
    sink: list[Entry] | None = None

    @property
    def records(self) -> int:
        return self.kinds.get("record", 0)

    @property
    def truncated(self) -> int:
        """Lines dropped from the front of a capped output stream."""
        if self.first_seq is None:
            return 0
        return max(0, self.first_seq - 1)

    def state_label(self) -> str:
        """Short state for a tree node: pending, running, done/failed or type."""
        if self.kind == "none":
            return "pending"
        if self.finish is not None:
            return self.finish.get("status", "finished") or "finished"
        if self.start is not None:
            return "running"
        return self.kind


def _pairs(flat: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(flat) - 1, 2):
        out[to_text(flat[i]) or ""] = to_text(flat[i + 1]) or ""
    return out


def _entry_from_text(raw: Any) -> Entry:
    damage: list[str] = []
    text = to_text(raw, damage, "value") or ""
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            return Entry({}, text=text, damaged="not JSON")
        if isinstance(data, dict):
            return Entry({str(k): _scalar(v) for k, v in data.items()})
    return Entry({}, text=text, damaged=damage[0] if damage else None)


def _scalar(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _ingest(state: KeyState, entry: Entry) -> None:
    state.seen += 1
    if state.sink is not None:
        state.sink.append(entry)
    if entry.damaged:
        state.damaged += 1
    kind = entry.fields.get("kind", "line" if "line" in entry.fields else "item")
    state.kinds[kind] += 1
    seq = entry.fields.get("n")
    if seq and state.first_seq is None:
        try:
            state.first_seq = int(seq)
        except ValueError:
            state.damaged += 1
    if kind == "progress":
        state.progress = entry
        return
    if kind == "start":
        state.start = entry
    elif kind == "finish":
        state.finish = entry
    elif kind == "record":
        group = (entry.get("file", "?"), entry.get("check", "?"))
        state.groups[group] += 1
        examples = state.examples.setdefault(group, [])
        if len(examples) < EXAMPLES_PER_GROUP:
            examples.append(entry)
    state.tail.append(entry)


def apply_chunk(state: KeyState, row: Any) -> None:
    """Fold one READ_KEYS reply row ({type, payload, length}) into the state."""
    try:
        kind = to_text(row[0]) or "none"
        payload = row[1] if isinstance(row[1], list) else []
        length = int(row[2]) if isinstance(row[2], int) else 0
    except (IndexError, TypeError, ValueError):
        state.kind, state.error = "error", "unreadable reply"
        return
    if kind != state.kind and state.kind != "none":
        # The key changed type (deleted and rewritten): start over.
        fresh = KeyState(state.key)
        fresh.sink = state.sink
        state.__dict__.update(fresh.__dict__)
    state.kind, state.length = kind, length
    if kind == "stream":
        for item in payload:
            try:
                entry_id, flat = item[0], item[1]
                state.cursor = to_text(entry_id) or state.cursor
                _ingest(state, Entry(_pairs(flat)))
            except (IndexError, TypeError):
                state.damaged += 1
    elif kind == "list":
        for raw in payload:
            _ingest(state, _entry_from_text(raw))
        try:
            start = int(state.cursor or 0)
        except ValueError:
            start = 0  # a cursor from another type: count from here
        state.cursor = str(start + len(payload))
    elif kind in ("string", "hash"):
        # Whole-value types: replace, don't accumulate.
        fresh = KeyState(state.key, kind=kind, length=length, sink=state.sink)
        entry = _entry_from_text(payload[0]) if kind == "string" and payload else None
        if kind == "hash":
            entry = Entry(_pairs(payload))
        if entry is not None:
            _ingest(fresh, entry)
            if kind == "hash" and "status" in entry.fields:
                fresh.finish = entry if entry.get("status") not in ("running", "") else None
        state.__dict__.update(fresh.__dict__)


def read_args(states: list[KeyState]) -> tuple[list[str], list[str]]:
    """KEYS and ARGV for the READ_KEYS script."""
    return [s.key for s in states], [s.cursor for s in states] + [str(READ_BATCH)]


def more_to_read(states: list[KeyState], before: list[int]) -> bool:
    """After one read: did any stream or list return a full batch (so more may follow)?"""
    return any(s.kind in ("stream", "list") and s.seen - b >= READ_BATCH
               for s, b in zip(states, before, strict=False))


def field_lines(job: Any) -> list[Entry]:
    """Output that other producers keep in hash fields (`stdout`, `stderr`), as entries.

    gn-uploader and GeneNetwork2 write a job's output into its hash; `stdout`
    grows in place while it runs, so this is rebuilt from each fresh read.
    """
    from gn_jobs_tui.core.dialects import OUTPUT_FIELDS

    extra = getattr(job, "extra", {}) or {}
    return [Entry({"stream": stream, "line": line}) for name, stream in OUTPUT_FIELDS
            for line in (extra.get(name) or "").splitlines()]


def output_from_fields(job: Any) -> KeyState | None:
    """`field_lines` as a KeyState, for processors that draw an output pane."""
    lines = field_lines(job)
    if not lines:
        return None
    state = KeyState(f"{job.job_id}:fields", kind="fields")
    for entry in lines:
        _ingest(state, entry)
    state.length = state.seen
    return state
