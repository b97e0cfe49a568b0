"""The footer, showing the less essential keys only where they fit.

Every action is in `?` help and in the command palette; the footer shows the
ones an operator needs first, and adds the others on a wider terminal.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer

#: Shown only at WIDE columns or more.
WIDE_ONLY = frozenset({"users", "pause", "hosts", "pulse", "columns", "audit"})
WIDE = 120


class JobsFooter(Footer):
    DEFAULT_CSS = """
    JobsFooter.-narrow FooterKey.-wide { display: none; }
    """

    def __init__(self) -> None:
        super().__init__(compact=True)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            # Footer keys carry the action they run (FooterKey is not exported by Textual).
            if getattr(widget, "action", None) in WIDE_ONLY:
                widget.add_class("-wide")
            yield widget

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < WIDE, "-narrow")
