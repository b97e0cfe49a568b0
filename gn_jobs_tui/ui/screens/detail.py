"""Drill-down: the tree of a job's keys, and the pane of the selected node.

The tree holds the job hash, its output stream and one node per child key
(`#0`, `#1`, ...: added as soon as the parent records them). The pane is drawn by the job
type's output processor; the output node gets a pane of its own with search,
wrap, follow and a jump to the first traceback. A worker of this screen
reads only what is new in each key (cursors) and posts it; the screen draws,
and only when something it shows changed.
"""

from __future__ import annotations

import asyncio

import redis
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Static, Tree
from textual.widgets.tree import TreeNode

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import KeyState, output_from_fields
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.processors import for_type
from gn_jobs_tui.processors.base import Visible, entry_line
from gn_jobs_tui.ui.access import jobs_app
from gn_jobs_tui.ui.messages import DetailData
from gn_jobs_tui.ui.widgets.footer import JobsFooter
from gn_jobs_tui.ui.widgets.output_pane import OutputPane
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

REFRESH = 0.5


def output_lines(output: KeyState | None) -> list[Text]:
    """The output tail as lines (what the generic processor shows), notes first."""
    if output is None or output.kind == "none":
        return [Text("no output yet", style="dim")]
    lines: list[Text] = []
    if output.truncated:
        lines.append(Text(f"… {output.truncated:,} earlier lines truncated", style="dim italic"))
    tail = list(output.tail)
    if output.seen > len(tail) and not output.truncated:
        lines.append(Text(f"… {output.seen - len(tail):,} earlier lines not shown",
                          style="dim italic"))
    lines.extend(entry_line(e) for e in tail)
    if output.damaged:
        lines.append(Text(f"{output.damaged} damaged entries", style="red"))
    return lines


class DetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("k", "kill", "Kill"),
        Binding("r", "retry", "Retry"),
        Binding("f", "follow", "Follow"),
        Binding("slash", "search", "Search output"),
        Binding("n", "next_match(1)", "Next match", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("w", "wrap", "Wrap output", show=False),
        Binding("e", "traceback", "First traceback", show=False),
        Binding("c", "copy_id", "Copy full id", show=False),
        Binding("y", "copy_command", "Copy gn-jobs show command", show=False),
        Binding("question_mark", "app.help", "Help"),
        Binding("k,r", "refuse_write", "", show=False),
    ]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: Job | None = None
        self.output: KeyState | None = None
        self.children_states: list[KeyState] = []
        self.selected = "job"
        self._wake = asyncio.Event()
        self._child_nodes: dict[str, TreeNode[str]] = {}
        self._drawn: object = None
        self._lines_seen = -1

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Horizontal(id="detail"):
            tree: Tree[str] = Tree(f"job {self.job_id[:8]}", data="job", id="keys")
            tree.show_root = True
            yield tree
            with ContentSwitcher(initial="pane", id="panes"):
                with ScrollableContainer(id="pane", can_focus=False):
                    yield Static(Text("loading…", style="dim"), id="pane-body")
                with Vertical(id="output-area"):
                    yield Static("", id="output-head")
                    yield OutputPane(id="output")
                    yield Input(placeholder="search the output (Enter finds, Esc closes)",
                                id="output-search")
        yield JobsFooter()

    @property
    def follow(self) -> bool:
        return self.query_one(OutputPane).follow

    def on_mount(self) -> None:
        tree = self.query_one("#keys", Tree)
        tree.root.expand()
        self._hash_node = tree.root.add_leaf("hash", data="job")
        self._output_node = tree.root.add_leaf("output", data="output")
        tree.focus()
        self.refresh_loop()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        read_only = jobs_app(self).config.read_only
        if action == "refuse_write":
            return read_only
        if action in ("kill", "retry") and read_only:
            return False
        return True

    def poke(self) -> None:
        """A change event for this job arrived: read now rather than at the next tick."""
        self._wake.set()

    @work(exclusive=True, group="detail")
    async def refresh_loop(self) -> None:
        app = jobs_app(self)
        store = app.feed.store
        output = KeyState(store.keys.output(self.job_id))
        children: dict[str, KeyState] = {}
        while True:
            try:
                job = await store.get_job(self.job_id)
                for name in job.children if job else []:
                    children.setdefault(name, KeyState(name))
                states = [output, *children.values()]
                await store.read_keys(states)
                # Other producers keep the output in the job's hash (`stdout`, `stderr`).
                shown = output_from_fields(job) if output.kind == "none" and job else None
                self.post_message(DetailData(job, shown or output, list(children.values())))
            except (redis.RedisError, OSError) as exc:
                msg = redact_text(f"{type(exc).__name__}: {exc}", app.config.url)
                self.query_one("#pane-body", Static).update(
                    Text(f"disconnected, retrying: {msg}", style="bold red"))
                self._drawn = None
            try:
                await asyncio.wait_for(self._wake.wait(), REFRESH)
            except TimeoutError:
                pass  # the regular tick
            self._wake.clear()

    def on_detail_data(self, message: DetailData) -> None:
        self.job, self.output, self.children_states = message.job, message.output, message.children
        if self.job is None:
            self.query_one("#pane-body", Static).update(
                Text(f"job {self.job_id} no longer exists", style="bold red"))
            return
        proc = for_type(self.job.job_type)
        tree = self.query_one("#keys", Tree)
        verdict = proc.verdict(self.job)
        tree.root.set_label(Text.assemble(f"{self.job.job_type} {self.job_id[:8]} ",
                                          (verdict.label, verdict.style)))
        self._output_node.set_label(f"output ({message.output.seen:,} lines)"
                                    if message.output.kind != "none" else "output (none yet)")
        for i, child in enumerate(message.children):
            label = Text(f"#{i} {proc.child_label(child)}")
            node = self._child_nodes.get(child.key)
            if node is None:
                self._child_nodes[child.key] = tree.root.add_leaf(label, data=child.key)
            else:
                node.set_label(label)
        self.draw_pane()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self.selected = event.node.data or "job"
        self._drawn = None
        self.draw_pane()

    def draw_pane(self) -> None:
        if self.job is None:
            return
        switcher = self.query_one("#panes", ContentSwitcher)
        if self.selected == "output":
            switcher.current = "output-area"
            seen = self.output.seen if self.output else -1
            if seen != self._lines_seen or self._drawn != "output":
                self._lines_seen = seen
                self._drawn = "output"
                self.query_one(OutputPane).set_lines(output_lines(self.output))
            self._draw_head()
            return
        switcher.current = "pane"
        proc = for_type(self.job.job_type)
        now = jobs_app(self).clock()
        child = next((c for c in self.children_states if c.key == self.selected), None)
        running = not self.job.is_terminal
        # Redraw only when what the pane shows could differ (an idle screen sends nothing).
        signature = (self.selected, self.job, self.output.seen if self.output else 0,
                     tuple((c.key, c.seen, c.kind) for c in self.children_states),
                     int(now) if running else 0)
        if signature == self._drawn:
            return
        self._drawn = signature
        body = self.query_one("#pane-body", Static)
        if child is not None:
            body.update(Visible(proc.child_view(self.job, child)))
        else:
            body.update(Visible(proc.job_view(self.job, self.output, self.children_states, now)))

    def _draw_head(self) -> None:
        pane = self.query_one(OutputPane)
        seen = self.output.seen if self.output else 0
        head = Text.assemble((f" output · {seen:,} lines ", "bold"), pane.status())
        self.query_one("#output-head", Static).update(head)

    @on(OutputPane.StateChanged)
    def output_state(self) -> None:
        self._draw_head()

    # -- output tools ------------------------------------------------------------------
    def _to_output(self) -> None:
        if self.selected != "output":
            self.query_one("#keys", Tree).move_cursor(self._output_node)
            self.selected = "output"
            self._drawn = None
            self.draw_pane()

    def action_search(self) -> None:
        self._to_output()
        box = self.query_one("#output-search", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#output-search")
    def search_done(self, event: Input.Submitted) -> None:
        found = self.query_one(OutputPane).search(event.value)
        if event.value.strip():
            self.notify(f"{found} lines match" if found else "no line matches", timeout=2)
        else:
            event.input.remove_class("-shown")
        self.query_one(OutputPane).focus()

    def action_next_match(self, delta: int) -> None:
        pane = self.query_one(OutputPane)
        if not pane.step(delta):
            self.notify("no search: press / to search the output", severity="warning",
                        timeout=2)

    def action_wrap(self) -> None:
        self._to_output()
        self.query_one(OutputPane).toggle_wrap()

    def action_follow(self) -> None:
        self._to_output()
        pane = self.query_one(OutputPane)
        pane.set_follow(not pane.follow)

    def action_traceback(self) -> None:
        self._to_output()
        if not self.query_one(OutputPane).first_traceback():
            self.notify("no traceback in the output shown", timeout=2)

    def action_copy_id(self) -> None:
        jobs_app(self).copy_job(self.job, command=False)

    def action_copy_command(self) -> None:
        jobs_app(self).copy_job(self.job, command=True)

    def action_back(self) -> None:
        """Esc closes the search box first (its matches stay marked), then goes back."""
        box = self.query_one("#output-search", Input)
        if box.has_class("-shown"):
            box.remove_class("-shown")
            self.query_one(OutputPane).focus()
            return
        self.app.pop_screen()

    def action_kill(self) -> None:
        if self.job is not None:
            jobs_app(self).ask_kill([self.job])

    def action_retry(self) -> None:
        if self.job is not None:
            jobs_app(self).ask_retry([self.job])

    def action_refuse_write(self) -> None:
        self.notify("read-only mode: kill and retry are not offered (the console was started "
                    "with --read-only)", severity="warning")
