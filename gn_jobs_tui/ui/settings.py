"""The console's own settings (columns, time style), kept in the user's config dir.

`$XDG_CONFIG_HOME/gn-jobs/console.json` (default `~/.config/...`). A file that
cannot be read is never overwritten silently: it is kept as `console.json.bad`
before new settings are written, and the console says so in one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gn_jobs_tui.ui.columns import COLUMNS, DEFAULT_COLUMNS

ENV_CONFIG = "XDG_CONFIG_HOME"


def default_path() -> Path:
    base = os.environ.get(ENV_CONFIG) or str(Path.home() / ".config")
    return Path(base) / "gn-jobs" / "console.json"


@dataclass
class Settings:
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))
    relative_times: bool = True
    problem: str = ""  # why the file could not be used, shown once

    def to_json(self) -> str:
        return json.dumps({"columns": self.columns, "relative_times": self.relative_times},
                          indent=1) + "\n"


def load(path: Path) -> Settings:
    """Settings from `path`; defaults (with `problem` set) if it is missing or bad."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        return Settings(problem=f"cannot read {path}: {exc.strerror or exc}")
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        columns = data.get("columns", list(DEFAULT_COLUMNS))
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ValueError("columns is not a list of names")
        known = [c for c in dict.fromkeys(columns) if c in COLUMNS]
        if "id" not in known:
            known.insert(0, "id")
        relative = data.get("relative_times", True)
        return Settings(known, bool(relative))
    except ValueError as exc:
        return Settings(problem=f"ignored {path}: {exc}")


def save(settings: Settings, path: Path) -> str | None:
    """Write settings atomically; returns a one-line error instead of raising."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if settings.problem and path.exists():
            path.replace(path.with_name(path.name + ".bad"))  # keep what we could not read
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(settings.to_json(), encoding="utf-8")
        tmp.replace(path)
        settings.problem = ""
        return None
    except OSError as exc:
        return f"cannot save console settings to {path}: {exc.strerror or exc}"
