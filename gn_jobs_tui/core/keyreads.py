"""Reading output and child keys of any type with plain commands, no script.

The READ_KEYS script does this in one call; these build the same rows from
pipelines for servers or users that may not run scripts, and for a Cluster
(a key's children live in many slots). Two round trips: TYPE of each key,
then the reads each type needs.
"""

from __future__ import annotations

from typing import Any

from gn_jobs_tui.core.model import to_text
from gn_jobs_tui.core.outputs import READ_BATCH, KeyState

STRING_MAX = 262_143


def read_cmds(states: list[KeyState], kinds: list[Any]) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """The commands that read what is new in each key, and how to fold the replies."""
    cmds: list[tuple[Any, ...]] = []
    plan: list[tuple[str, int, str]] = []
    for state, raw_kind in zip(states, kinds, strict=False):
        kind = "none" if isinstance(raw_kind, Exception) else (to_text(raw_kind) or "none")
        at = len(cmds)
        if kind == "stream":
            if state.cursor and state.cursor != "0":
                # Inclusive start, drop the cursor's own entry (no '(' before Redis 6.2).
                cmds.append(("XRANGE", state.key, state.cursor, "+", "COUNT", READ_BATCH + 1))
            else:
                cmds.append(("XRANGE", state.key, "-", "+", "COUNT", READ_BATCH))
            cmds.append(("XLEN", state.key))
        elif kind == "list":
            try:
                start = int(state.cursor or 0)
            except ValueError:
                start = 0
            cmds.append(("LRANGE", state.key, start, start + READ_BATCH - 1))
            cmds.append(("LLEN", state.key))
        elif kind == "string":
            cmds.append(("GETRANGE", state.key, 0, STRING_MAX))
            cmds.append(("STRLEN", state.key))
        elif kind == "hash":
            cmds.append(("HGETALL", state.key))
            cmds.append(("HLEN", state.key))
        plan.append((kind, at, state.cursor))
    return cmds, plan


def _flat(value: Any) -> list[Any]:
    if isinstance(value, dict):
        out: list[Any] = []
        for k, v in value.items():
            out.extend((k, v))
        return out
    return list(value) if isinstance(value, (list, tuple)) else []


def rows(plan: list[Any], replies: list[Any]) -> list[list[Any]]:
    """Rows shaped like READ_KEYS's: {type, payload, length}."""
    out: list[list[Any]] = []
    for kind, at, cursor in plan:
        if kind not in ("stream", "list", "string", "hash"):
            out.append([kind.encode(), [], 0])
            continue
        payload, length = replies[at], replies[at + 1]
        if isinstance(payload, Exception) or isinstance(length, Exception):
            out.append([b"error", [], 0])
            continue
        if kind == "stream":
            entries = [[entry_id, _flat(fields)] for entry_id, fields in (payload or [])]
            if cursor and cursor != "0":
                if entries and (to_text(entries[0][0]) or "") == cursor:
                    entries = entries[1:]
                entries = entries[:READ_BATCH]
            payload = entries
        elif kind == "string":
            payload = [payload]
        elif kind == "hash":
            payload = _flat(payload)
        out.append([kind.encode(), payload, int(length or 0)])
    return out
