"""Small modal dialogs: confirm, pick a user, type a value, help."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmScreen(ModalScreen[bool]):
    """Says what will happen; `y` (or Enter on the action) confirms, `n`/Esc cancels.

    Left/Right (and Tab) move between the buttons; the safe one has the focus.
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("left", "app.focus_previous", "Previous button", show=False),
        Binding("right", "app.focus_next", "Next button", show=False),
    ]

    def __init__(self, title: str, body: str | Text, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text, self.body, self.yes = title, body, yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            with VerticalScroll(id="dialog-scroll", can_focus=False):
                yield Static(self.body, id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")
            yield Label("y confirms · n or Esc cancels · ←/→ move between buttons",
                        id="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class UserScreen(ModalScreen[str | None]):
    """Pick one user (with job counts) or all users."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    ALL = "\x00all"

    def __init__(self, users: list[tuple[str, int]], total: int, current: str | None) -> None:
        super().__init__()
        self.users, self.total, self.current = users, total, current

    def compose(self) -> ComposeResult:
        options = [Option(f"All users ({self.total:,})", id=self.ALL)]
        options += [Option(f"{u} ({n:,})", id=u) for u, n in self.users]
        with Vertical(id="dialog"):
            yield Label("Show jobs of", id="dialog-title")
            yield OptionList(*options, id="users")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ids = [self.ALL] + [u for u, _ in self.users]
        if self.current in ids:
            ol.highlighted = ids.index(self.current)
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(None if event.option.id == self.ALL else event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(self.current)


class AskScreen(ModalScreen[str | None]):
    """One line of input (a job id, an age); `check` may refuse it with a reason."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", *, hint: str = "",
                 check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.title_text, self.placeholder, self.hint, self.check = title, placeholder, hint, check

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Input(placeholder=self.placeholder, id="ask")
            yield Static("", id="ask-error")
            yield Label(self.hint or "Enter accepts · Esc cancels", id="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        problem = self.check(value) if self.check and value else None
        if problem:
            self.query_one("#ask-error", Static).update(Text(problem, style="bold red"))
            return
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every binding of the screen it was opened from, then what the server told us."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, screen: Screen, notes: tuple[str, ...] = (),
                 read_only: bool = False) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.notes, self.read_only = notes, read_only
        seen: set[str] = set()
        own = {b.action for b in type(screen).BINDINGS if hasattr(b, "action")}

        def rank(active: ActiveBinding) -> int:
            node, binding = active.node, active.binding
            if node is screen and binding.action in own:
                return 0
            return 1 if node is screen.app else 2

        # The screen's own actions first, then the app's, then the focused widget's keys.
        for active in sorted(screen.active_bindings.values(), key=rank):
            binding = active.binding
            if not binding.description or binding.action in seen:
                continue  # actions hidden by check_action (read-only) are not listed at all
            seen.add(binding.action)
            self.rows.append((screen.app.get_key_display(binding), binding.description))

    def compose(self) -> ComposeResult:
        text = Text()
        if self.read_only:
            text.append("Read-only: launch, kill, retry and clean-up are not offered "
                        "(started with --read-only).\n\n", style="yellow")
        if self.notes:
            text.append("Server notes\n", style="bold")
            for note in self.notes:
                warn = note.startswith("!")
                text.append(("  ⚠ " if warn else "  · ") + note.lstrip("! ").strip() + "\n",
                            style="red" if warn else "")
            text.append("\n")
        for key, desc in self.rows:
            text.append(f"{key:>10}  ", style="bold")
            text.append(f"{desc}\n")
        with Vertical(id="dialog"):
            yield Label("Keys", id="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(text, id="help-body")
            yield Label("Esc closes · Ctrl+P: command palette", id="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
