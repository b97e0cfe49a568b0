"""The top bar: server (password hidden), prefix, counts by status, link state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $primary-background; color: $text; }
    StatusBar.-down { height: auto; max-height: 4; }
    StatusBar.-down { background: $error; color: $text; text-style: bold; }
    """

    line: reactive[Text] = reactive(Text, layout=False)

    def on_mount(self) -> None:
        self.sync()

    def on_show(self) -> None:
        self.sync()

    def sync(self) -> None:
        app = self.app
        state = getattr(app, "link_state", None)
        self.set_class(bool(state and not state[0]), "-down")
        self.line = app.status_text()  # type: ignore[attr-defined]

    def render(self) -> Text:
        return self.line
