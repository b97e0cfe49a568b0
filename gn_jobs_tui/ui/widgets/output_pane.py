"""A job's output tail: search (`/`, `n`/`N`), wrap on or off, follow, first traceback.

It draws only the lines on screen. Following (new lines scroll into view)
stops by itself when the reader scrolls up or jumps to a match, and starts
again at the end; the state is posted so the screen's header can show it.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

TRACEBACK = "Traceback (most recent call last):"


class OutputPane(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    OutputPane { background: $surface; }
    OutputPane > .output-pane--match { background: $warning 50%; color: $text; }
    OutputPane > .output-pane--current { background: $accent; color: $text; text-style: bold; }
    """
    COMPONENT_CLASSES = {"output-pane--match", "output-pane--current"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "top", "Top", show=False),
        Binding("end", "bottom", "Bottom (follow)", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    class StateChanged(Message):
        """Follow, wrap or search changed (the screen redraws its header)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[Text] = []
        self.wrap = False
        self.follow = True
        self.query_text = ""
        self.matches: list[int] = []
        self.current = -1
        self._match_set: set[int] = set()
        self._rows: list[tuple[int, Text]] = []
        self._first_row: list[int] = []
        self._built_width = -1
        self._target: int | str | None = None

    # -- content --------------------------------------------------------------
    def set_lines(self, lines: list[Text]) -> None:
        self.lines = lines
        self._rebuild()
        if self.query_text:
            self._find()
        if self.follow:
            self._go("end")
        self.refresh()

    def _go(self, target: int | str) -> None:
        """Scroll to a row (or "end") once the pane is laid out: a pane just switched to
        has no size yet, so scrolling now would be clamped to nothing."""
        self._target = target
        self.call_after_refresh(self._scroll_target)

    def _scroll_target(self) -> None:
        target, self._target = self._target, None
        if target == "end":
            self.scroll_end(animate=False, immediate=True)
        elif isinstance(target, int):
            self.scroll_to(y=target, animate=False, immediate=True)

    def _rebuild(self) -> None:
        width = max(10, self.scrollable_content_region.width)
        rows: list[tuple[int, Text]] = []
        first: list[int] = []
        console = self.app.console
        for i, line in enumerate(self.lines):
            first.append(len(rows))
            if self.wrap and line.cell_len > width:
                rows.extend((i, part) for part in line.wrap(console, width, overflow="fold"))
            else:
                rows.append((i, line))
        self._rows, self._first_row, self._built_width = rows, first, width
        wide = width if self.wrap else max([width, *(t.cell_len for _, t in rows)])
        self.virtual_size = Size(wide, len(rows))

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap and self.scrollable_content_region.width != self._built_width:
            self._rebuild()
            self.refresh()

    # -- reading aids ------------------------------------------------------------
    def toggle_wrap(self) -> None:
        top_line = self._rows[int(self.scroll_offset.y)][0] if self._rows else 0
        self.wrap = not self.wrap
        self._rebuild()
        if not self.follow:
            self._go(self._first_row[top_line] if self._first_row else 0)
        self.refresh()
        self.post_message(self.StateChanged())

    def set_follow(self, on: bool) -> None:
        if on != self.follow:
            self.follow = on
            self.post_message(self.StateChanged())
        if on:
            self._go("end")

    def search(self, text: str) -> int:
        """Highlight `text` (case-insensitive); jump to the first match. Returns the count."""
        self.query_text = text.strip()
        self._find()
        if self.matches:
            self.current = 0
            self._show_line(self.matches[0])
        self.refresh()
        self.post_message(self.StateChanged())
        return len(self.matches)

    def _find(self) -> None:
        needle = self.query_text.lower()
        self.matches = [i for i, line in enumerate(self.lines) if needle in line.plain.lower()] \
            if needle else []
        self._match_set = set(self.matches)
        if self.current >= len(self.matches):
            self.current = len(self.matches) - 1

    def step(self, delta: int) -> bool:
        """Next (1) or previous (-1) match, wrapping around; False if there is none."""
        if not self.matches:
            return False
        self.current = (self.current + delta) % len(self.matches)
        self._show_line(self.matches[self.current])
        self.refresh()
        self.post_message(self.StateChanged())
        return True

    def first_traceback(self) -> bool:
        for i, line in enumerate(self.lines):
            if line.plain.lstrip().startswith(TRACEBACK):
                self._show_line(i)
                return True
        return False

    def _show_line(self, i: int) -> None:
        self.set_follow(False)
        row = self._first_row[i] if i < len(self._first_row) else 0
        self._go(max(0, row - 2))

    def status(self) -> str:
        parts = [("● following (f)" if self.follow else "○ not following (f, End)"),
                 "wrap on (w)" if self.wrap else "wrap off (w)"]
        if self.query_text:
            if self.matches:
                parts.append(f"“{self.query_text}” {self.current + 1}/{len(self.matches)} (n/N)")
            else:
                parts.append(f"“{self.query_text}”: no match")
        return " · ".join(parts)

    # -- moving ---------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        if delta < 0:
            self.set_follow(False)
        self.scroll_relative(y=delta, animate=False)
        self._follow_at_end()

    def action_page(self, direction: int) -> None:
        if direction < 0:
            self.set_follow(False)
        self.scroll_relative(y=direction * max(1, self.size.height - 1), animate=False)
        self._follow_at_end()

    def action_top(self) -> None:
        self.set_follow(False)
        self.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.set_follow(True)

    def _follow_at_end(self) -> None:
        if self.scroll_offset.y >= self.max_scroll_y:
            self.set_follow(True)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.set_follow(False)

    # -- drawing ----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_offset.y) + y
        if row >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        i, text = self._rows[row]
        if self.query_text and i in self._match_set:
            text = text.copy()
            current = self.current >= 0 and self.matches[self.current] == i
            style = self.get_component_rich_style(
                "output-pane--current" if current else "output-pane--match")
            text.highlight_words([self.query_text], style=style, case_sensitive=False)
        text = text.copy()
        text.end = ""
        strip = Strip(list(text.render(self.app.console, end="")))
        x = int(self.scroll_offset.x)
        return strip.crop_extend(x, x + width, Style.null()).apply_style(self.rich_style)
