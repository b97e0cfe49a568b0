"""The launcher form: built from the job type's parameter schema.

Every field is checked as it is typed (the message shows under it); submit
checks all of them again and returns the raw values, and the app launches
through the core launcher in a thread worker. Bad input creates nothing.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from gn_jobs_tui.core.jobtypes import JobType, Param, ParamError, Registry
from gn_jobs_tui.core.store import whoami


def _default_text(p: Param) -> str:
    if p.default is None:
        return ""
    if isinstance(p.default, list):
        return ",".join(str(x) for x in p.default)
    return str(p.default)


class LaunchRequest:
    def __init__(self, job_type: str, params: dict[str, Any], user: str) -> None:
        self.job_type, self.params, self.user = job_type, params, user


class LauncherScreen(ModalScreen[LaunchRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Launch")]

    def __init__(self, registry: Registry, job_type: str | None = None) -> None:
        super().__init__()
        self.registry = registry
        names = registry.names()
        self.job_type = job_type if job_type in names else (names[0] if names else "")

    def compose(self) -> ComposeResult:
        with Vertical(id="launcher"):
            yield Label("Launch a job", id="dialog-title")
            yield Select([(n, n) for n in self.registry.names()], value=self.job_type,
                         allow_blank=False, id="job-type")
            yield Static("", id="type-help")
            yield VerticalScroll(id="fields", can_focus=False)  # Tab goes to the fields
            with Horizontal(classes="field"):
                yield Label("user", classes="field-name")
                yield Input(value=whoami(), id="user")
            yield Static("", id="form-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Launch", variant="primary", id="launch")
                yield Button("Cancel", id="cancel")

    async def on_mount(self) -> None:
        await self._build_fields()

    @property
    def current(self) -> JobType:
        return self.registry.get(self.job_type)

    async def _build_fields(self) -> None:
        fields = self.query_one("#fields", VerticalScroll)
        await fields.remove_children()
        jt = self.current
        self.query_one("#type-help", Static).update(jt.description)
        rows = []
        for p in jt.params:
            if p.kind == "bool":
                editor: Any = Switch(value=bool(p.default), id=f"p-{p.name}")
            elif p.kind == "choice" and not p.multiple:
                editor = Select([(c, c) for c in p.choices], value=p.default, allow_blank=False,
                                id=f"p-{p.name}")
            else:
                editor = Input(value=_default_text(p), placeholder=p.help, id=f"p-{p.name}")
            label = p.name + (" *" if p.required else "")
            row = Vertical(Horizontal(Label(label, classes="field-name"), editor, classes="field"),
                           Static("", id=f"err-{p.name}", classes="field-error"),
                           classes="field-row")
            rows.append(row)
        await fields.mount_all(rows)

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "job-type" and event.value != self.job_type:
            self.job_type = str(event.value)
            await self._build_fields()

    def raw_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for p in self.current.params:
            widget = self.query_one(f"#p-{p.name}")
            if isinstance(widget, Switch):
                values[p.name] = widget.value
            elif isinstance(widget, Select):
                values[p.name] = widget.value
            elif isinstance(widget, Input):
                values[p.name] = widget.value
        return values

    def show_problems(self, problems: dict[str, str]) -> None:
        for p in self.current.params:
            self.query_one(f"#err-{p.name}", Static).update(problems.get(p.name, ""))
        self.query_one("#form-error", Static).update(
            f"{len(problems)} field(s) need attention" if problems else "")

    def validate(self) -> dict[str, str]:
        try:
            self.current.validate(self.raw_values())
        except ParamError as exc:
            return exc.problems
        return {}

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("p-"):
            name = event.input.id[2:]
            problems = self.validate()
            self.query_one(f"#err-{name}", Static).update(problems.get(name, ""))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        problems = self.validate()
        user = self.query_one("#user", Input).value.strip()
        if not user:
            problems["user"] = "is required"
        self.show_problems(problems)
        if problems:
            return
        self.dismiss(LaunchRequest(self.job_type, self.raw_values(), user))

    def action_cancel(self) -> None:
        self.dismiss(None)
