"""A job's text is shown, never obeyed: control sequences become visible.

Output lines, messages and errors come from job programs and other
producers. Written raw to a terminal, `ESC[2J` clears the operator's screen
and `ESC]0;...` retitles it. Everywhere job text reaches a terminal it goes
through `visible`: tab and newline stay, every other C0 control, DEL and
every C1 control is shown in caret (`^[`) or `\\x9b` notation, so an escape
sequence is readable, not executed. `logs --raw` is the one way to get the
bytes as they are.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _show(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return f"\\x{code:02x}"


def visible(text: str | None, *, newlines: bool = True) -> str:
    """`text` with control characters made visible (tab kept; newline kept unless told)."""
    if not text:
        return text or ""
    shown = _CONTROL.sub(_show, text)
    if not newlines:
        shown = shown.replace("\n", "⏎")
    return shown


def has_controls(text: str) -> bool:
    return bool(_CONTROL.search(text))


def plural(n: int, word: str) -> str:
    """`1 file`, `3 files`, `1,200 files`: counts in messages people read."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
