"""One typed way for screens and widgets to reach the console app.

Textual types `self.app` as a plain `App`; `jobs_app(self)` gives the
`JobsApp` with its index, feed, config and actions, checked once here rather
than silenced with `type: ignore` at every use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.dom import DOMNode

if TYPE_CHECKING:
    from gn_jobs_tui.ui.app import JobsApp


def jobs_app(node: DOMNode) -> JobsApp:
    from gn_jobs_tui.ui.app import JobsApp

    app = node.app
    if not isinstance(app, JobsApp):
        raise TypeError(f"{type(node).__name__} runs only inside the gn-jobs console")
    return app
