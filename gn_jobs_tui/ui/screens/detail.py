"""Drill-down: the tree of a job's keys, and the pane of the selected node.

The tree holds the job hash, its output stream and one node per child key
(added as soon as the parent records them). The pane is drawn by the job
type's output processor. A worker of this screen reads only what is new in
each key (cursors) and posts it; the screen just draws.
"""

from __future__ import annotations

import asyncio

import redis
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import KeyState
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.processors import for_type
from gn_jobs_tui.ui.messages import DetailData
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

REFRESH = 0.5


class DetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("k", "kill", "Kill"),
        Binding("r", "retry", "Retry"),
        Binding("f", "follow", "Follow output"),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: Job | None = None
        self.output: KeyState | None = None
        self.children_states: list[KeyState] = []
        self.selected = "job"
        self.follow = True
        self._wake = asyncio.Event()
        self._child_nodes: dict[str, TreeNode[str]] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Horizontal(id="detail"):
            tree: Tree[str] = Tree(f"job {self.job_id[:8]}", data="job", id="keys")
            tree.show_root = True
            yield tree
            with VerticalScroll(id="pane"):
                yield Static(Text("loading…", style="dim"), id="pane-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        tree = self.query_one("#keys", Tree)
        tree.root.expand()
        self._hash_node = tree.root.add_leaf("hash", data="job")
        self._output_node = tree.root.add_leaf("output", data="output")
        self._children_node = tree.root.add("children", data="children", expand=True)
        tree.focus()
        self.refresh_loop()

    def poke(self) -> None:
        """A change event for this job arrived: read now rather than at the next tick."""
        self._wake.set()

    @work(exclusive=True, group="detail")
    async def refresh_loop(self) -> None:
        store = self.app.feed.store  # type: ignore[attr-defined]
        keys = store.keys
        output = KeyState(keys.output(self.job_id))
        children: dict[str, KeyState] = {}
        while True:
            try:
                job = await store.get_job(self.job_id)
                for name in job.children if job else []:
                    children.setdefault(name, KeyState(name))
                states = [output, *children.values()]
                await store.read_keys(states)
                self.post_message(DetailData(job, output, list(children.values())))
            except (redis.RedisError, OSError) as exc:
                msg = redact_text(f"{type(exc).__name__}: {exc}", self.app.config.url)  # type: ignore[attr-defined]
                self.query_one("#pane-body", Static).update(
                    Text(f"disconnected, retrying: {msg}", style="bold red"))
            try:
                await asyncio.wait_for(self._wake.wait(), REFRESH)
            except TimeoutError:
                pass  # the regular tick
            self._wake.clear()

    def on_detail_data(self, message: DetailData) -> None:
        self.job, self.output, self.children_states = message.job, message.output, message.children
        proc = for_type(self.job.job_type) if self.job else None
        tree = self.query_one("#keys", Tree)
        if self.job is None:
            self.query_one("#pane-body", Static).update(
                Text(f"job {self.job_id} no longer exists", style="bold red"))
            return
        assert proc is not None
        verdict = proc.verdict(self.job)
        tree.root.set_label(Text.assemble(f"{self.job.job_type} {self.job_id[:8]} ",
                                          (verdict.label, verdict.style)))
        self._output_node.set_label(f"output ({message.output.seen} lines)"
                                    if message.output.kind != "none" else "output (none yet)")
        for i, child in enumerate(message.children):
            label = Text(f"child {i}: {proc.child_label(child)}")
            node = self._child_nodes.get(child.key)
            if node is None:
                self._child_nodes[child.key] = self._children_node.add_leaf(label, data=child.key)
            else:
                node.set_label(label)
        self._children_node.set_label(f"children ({len(message.children)})")
        self.draw_pane()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self.selected = event.node.data or "job"
        self.draw_pane()

    def draw_pane(self) -> None:
        if self.job is None:
            return
        proc = for_type(self.job.job_type)
        now = self.app.clock()  # type: ignore[attr-defined]
        body = self.query_one("#pane-body", Static)
        if self.selected == "output":
            body.update(proc.output_view(self.job, self.output))
            if self.follow:
                self.query_one("#pane", VerticalScroll).scroll_end(animate=False)
            return
        child = next((c for c in self.children_states if c.key == self.selected), None)
        if child is not None:
            body.update(proc.child_view(self.job, child))
            return
        body.update(proc.job_view(self.job, self.output, self.children_states, now))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.notify("following output" if self.follow else "not following output")

    def action_kill(self) -> None:
        if self.job is not None:
            self.app.ask_kill([self.job])  # type: ignore[attr-defined]

    def action_retry(self) -> None:
        if self.job is not None:
            self.app.ask_retry([self.job])  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("kill", "retry") and self.app.config.read_only:  # type: ignore[attr-defined]
            return False
        return True
