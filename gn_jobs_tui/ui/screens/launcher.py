"""The launcher form: built from the job type's parameter schema.

Each field is one line with its help under it and its error under that, so
at 80x24 several fields show at once and an error is never out of sight:
submitting with problems names the fields, scrolls to the first and puts the
cursor in it. Every field is checked as it is typed; submit checks all of
them again and returns the raw values; the app launches through the core
launcher in a thread worker. Bad input creates nothing.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, Switch

from gn_jobs_tui.core.jobtypes import JobType, Param, ParamError, Registry
from gn_jobs_tui.core.store import whoami


def _default_text(p: Param) -> str:
    if p.default is None:
        return ""
    if isinstance(p.default, list):
        return ",".join(str(x) for x in p.default)
    return str(p.default)


def _help(p: Param) -> str:
    bits = [p.help] if p.help else []
    if p.kind in ("int", "float") and (p.minimum is not None or p.maximum is not None):
        low = "" if p.minimum is None else f"{p.minimum:g}"
        high = "" if p.maximum is None else f"{p.maximum:g}"
        bits.append(f"{p.kind} {low}…{high}")
    elif p.choices:
        bits.append(("any of: " if p.multiple else "one of: ") + ", ".join(p.choices))
    elif p.kind in ("path", "paths") and not p.help:
        bits.append("a file" if p.kind == "path" else "files, comma-separated, globs allowed")
    if p.required:
        bits.append("required")
    return " · ".join(bits)


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
            with Horizontal(classes="field"):
                yield Label("type", classes="field-name")
                yield Select([(n, n) for n in self.registry.names()], value=self.job_type,
                             allow_blank=False, id="job-type", compact=True)
            yield Static("", id="type-help")
            yield VerticalScroll(id="fields", can_focus=False)  # Tab goes to the fields
            with Horizontal(classes="field"):
                yield Label("user *", classes="field-name")
                yield Input(value=whoami(), id="user", compact=True)
            yield Static("", id="err-user", classes="field-error")
            yield Static("", id="form-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Launch (Ctrl+S)", variant="primary", id="launch", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

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
                editor: Widget = Switch(value=bool(p.default), id=f"p-{p.name}")
            elif p.kind == "choice" and not p.multiple:
                editor = Select([(c, c) for c in p.choices], value=p.default, allow_blank=False,
                                id=f"p-{p.name}", compact=True)
            else:
                editor = Input(value=_default_text(p), id=f"p-{p.name}", compact=True)
            label = p.name + (" *" if p.required else "")
            rows.append(Vertical(
                Horizontal(Label(label, classes="field-name"), editor, classes="field"),
                Static(_help(p), classes="field-help"),
                Static("", id=f"err-{p.name}", classes="field-error"),
                id=f"row-{p.name}", classes="field-row"))
        await fields.mount_all(rows)

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "job-type" and event.value != self.job_type:
            self.job_type = str(event.value)
            await self._build_fields()

    def raw_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for p in self.current.params:
            widget = self.query_one(f"#p-{p.name}")
            if isinstance(widget, (Switch, Select, Input)):
                values[p.name] = widget.value
        return values

    def _set_error(self, name: str, problem: str) -> None:
        box = self.query_one(f"#err-{name}", Static)
        box.update(f"✗ {problem}" if problem else "")
        box.set_class(bool(problem), "-shown")

    def show_problems(self, problems: dict[str, str]) -> None:
        for p in self.current.params:
            self._set_error(p.name, problems.get(p.name, ""))
        self._set_error("user", problems.get("user", ""))
        names = [p.name for p in self.current.params if p.name in problems]
        names += ["user"] if "user" in problems else []
        noun = "field needs" if len(names) == 1 else "fields need"
        form = self.query_one("#form-error", Static)
        form.update(f"{len(names)} {noun} attention: {', '.join(names)}" if names else "")
        form.set_class(bool(names), "-shown")
        if names:
            first = names[0]
            if first != "user":
                self.query_one("#fields", VerticalScroll).scroll_to_widget(
                    self.query_one(f"#row-{first}"), animate=False)
            self.query_one(f"#p-{first}" if first != "user" else "#user").focus()

    def validate(self) -> dict[str, str]:
        try:
            self.current.validate(self.raw_values())
        except ParamError as exc:
            return exc.problems
        return {}

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("p-"):
            name = event.input.id[2:]
            self._set_error(name, self.validate().get(name, ""))

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
