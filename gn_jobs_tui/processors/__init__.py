"""Output processors, looked up by job type: built-ins, then entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from gn_jobs_tui.processors.base import Processor, Verdict

ENTRY_POINT_GROUP = "gn_jobs_tui.processors"
GENERIC = Processor()
_BUILTINS: dict[str, Processor] = {}
_LOADED: dict[str, Processor] | None = None
load_errors: list[str] = []


def register(job_type: str, processor: Processor) -> None:
    _BUILTINS[job_type] = processor


def _all() -> dict[str, Processor]:
    global _LOADED
    if _LOADED is None:
        from gn_jobs_tui.processors import builtin  # noqa: F401 - registers built-ins

        table = dict(_BUILTINS)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in table:
                continue  # built-ins first
            try:
                obj = ep.load()
                table[ep.name] = obj() if isinstance(obj, type) else obj
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the console
                load_errors.append(f"{ep.name}: {exc}")
        _LOADED = table
    return _LOADED


def for_type(job_type: str) -> Processor:
    """The processor of a job type; the generic one for unknown types."""
    return _all().get(job_type, GENERIC)


__all__ = ["Processor", "Verdict", "for_type", "register", "GENERIC"]
