"""The column chooser: show, hide and reorder the job table's columns (kept in settings)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

from gn_jobs_tui.ui.columns import COLUMNS

HINT = "Space shows/hides · [ ] or Shift+↑/↓ move · Enter keeps · Esc"


class ColumnsScreen(ModalScreen[list[str] | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "keep", "Keep", priority=True),
        Binding("left_square_bracket,shift+up", "move(-1)", "Move up"),
        Binding("right_square_bracket,shift+down", "move(1)", "Move down"),
    ]

    def __init__(self, shown: list[str]) -> None:
        super().__init__()
        self.order = [k for k in shown if k in COLUMNS] + [k for k in COLUMNS if k not in shown]
        self.shown = set(shown) | {"id"}

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Columns of the job table", id="dialog-title")
            yield SelectionList[str](*self._options(), id="columns")
            yield Label(HINT, id="dialog-hint")

    def _options(self) -> list[Selection[str]]:
        return [Selection(COLUMNS[k].title.lower() + (" (always shown)" if k == "id" else ""),
                          k, k in self.shown, disabled=k == "id") for k in self.order]

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        self.shown = set(event.selection_list.selected) | {"id"}

    def action_move(self, delta: int) -> None:
        sl: SelectionList[str] = self.query_one(SelectionList)
        i = sl.highlighted
        if i is None or not 0 <= i + delta < len(self.order):
            return
        self.order[i], self.order[i + delta] = self.order[i + delta], self.order[i]
        sl.clear_options()
        sl.add_options(self._options())
        sl.highlighted = i + delta

    def action_keep(self) -> None:
        self.dismiss([k for k in self.order if k in self.shown])

    def action_cancel(self) -> None:
        self.dismiss(None)
