"""The top bar: link state, server, filters with "n of N", counts, notes, freshness.

It is one line at any width: each part has a priority, and on a narrow
terminal the least important parts are shortened or left out (the server
name before the counts, the counts before a warning). It repaints only when
its text changes, so an idle console writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from gn_jobs_tui.ui.access import jobs_app


@dataclass
class Part:
    text: Text
    priority: int  # kept longest when space is short
    shrink_to: int = 0  # may be cut down to this many cells (0: all or nothing)


def fit(parts: list[Part], width: int, sep: str = "  ") -> Text:
    """Join the parts in order, dropping or shortening the least important to fit."""
    kept = [p for p in parts if p.text.cell_len]

    def total() -> int:
        return sum(p.text.cell_len for p in kept) + len(sep) * max(0, len(kept) - 1)

    for part in sorted(kept, key=lambda p: p.priority):
        over = total() - width
        if over <= 0:
            break
        if part.shrink_to and part.text.cell_len - over >= part.shrink_to:
            part.text.truncate(part.text.cell_len - over, overflow="ellipsis")
        elif part.shrink_to:
            part.text.truncate(part.shrink_to, overflow="ellipsis")
            if total() > width:
                kept.remove(part)
        else:
            kept.remove(part)
    line = Text(no_wrap=True, overflow="ellipsis")
    for i, part in enumerate(kept):
        if i:
            line.append(sep)
        line.append_text(part.text)
    line.truncate(width, overflow="ellipsis")
    return line


def short_server(label: str) -> str:
    """`redis://ops:***@jobs-db:6379/0` -> `jobs-db:6379/0`: the part that tells servers apart
    (a unix socket: its file name)."""
    scheme, _, rest = label.partition("://")
    if scheme == "unix":
        return "unix:" + rest.split("?", 1)[0].rsplit("/", 1)[-1]
    return (rest or label).rsplit("@", 1)[-1] or label


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $primary-background; color: $text; }
    StatusBar.-down { height: auto; max-height: 4; background: $error; color: $text;
                      text-style: bold; }
    """

    line: reactive[Text] = reactive(Text, layout=False)

    def on_mount(self) -> None:
        self.sync()

    def on_show(self) -> None:
        self.sync()

    def on_resize(self) -> None:
        self.sync()

    def sync(self) -> None:
        app = jobs_app(self)
        down = bool(app.link_state and not app.link_state[0])
        self.set_class(down, "-down")
        text = self.compose_line(max(20, self.size.width or 80))
        if text != self.line:
            self.line = text

    def compose_line(self, width: int) -> Text:
        app = jobs_app(self)
        if app.link_state and not app.link_state[0]:
            _, error, _retry = app.link_state
            shown = ("no data yet" if app.last_data is None else
                     f"the data shown is from {app.freshness()}")
            return Text(f" ⚠ disconnected from {app.server_label} · reconnecting · {shown} · "
                        f"{error}")
        index = app.index
        parts: list[Part] = []
        ok = bool(app.link_state)
        parts.append(Part(Text(" ●" if ok else " ○", style="bold green" if ok else "dim"), 100))
        parts.append(Part(Text(short_server(app.server_label)), 50, shrink_to=10))
        parts.append(Part(Text(app.config.prefix, style="bold"), 45, shrink_to=6))
        if app.config.read_only:
            parts.append(Part(Text("READ-ONLY", style="bold yellow"), 90))
        if app.paused_since is not None:
            waiting = app.waiting_count()
            parts.append(Part(Text(f"⏸ PAUSED {app.paused_for()}" +
                                   (f" · {waiting:,} waiting" if waiting else "") +
                                   " · p resumes", style="bold black on yellow"), 95,
                              shrink_to=12))
        target = index.target
        total = len(index.jobs)
        if target.filtered:
            scope = [f"user:{target.user}"] if target.user else []
            if target.status:
                scope.append(f"status:{target.status}")
            if target.query:
                scope.append(f"“{target.query.text}”")
            shown = "…" if index.building is not None else f"{len(index.order):,}"
            parts.append(Part(Text(f"{' '.join(scope)}: {shown} of {total:,}",
                                   style="bold cyan"), 85, shrink_to=14))
        elif total:
            parts.append(Part(Text(f"{total:,} jobs", style="bold"), 60))
        urgent = index.counts_text(urgent=True)
        rest = index.counts_text(urgent=False)
        label = "all: " if target.filtered else ""
        if urgent:
            parts.append(Part(Text(label + urgent), 70, shrink_to=12))
            label = ""
        if rest:
            parts.append(Part(Text(label + ("· " if urgent else "") + rest, style="dim"), 35,
                              shrink_to=12))
        if not total:
            parts.append(Part(Text("no jobs", style="dim"), 35))
        if not app.loaded_all and ok:
            parts.append(Part(Text(f"loading… {total:,}", style="italic"), 65))
        for note in app.notes:
            warn = note.startswith("!")
            body = note.lstrip("! ").strip()
            parts.append(Part(Text(("⚠ " if warn else "") + body,
                                   style="bold red" if warn else "yellow"),
                              80 if warn else 20, shrink_to=12))
        if app.paused_since is None and ok:
            stale = app.stale_for()
            if stale is not None:
                parts.append(Part(Text(f"updated {app.freshness()}", style="bold yellow"), 75))
        return fit(parts, width)

    def render(self) -> Text:
        return self.line
