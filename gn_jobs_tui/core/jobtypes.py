"""The job types registry: what can be launched, and with which parameters.

A job type has a name, a description, a parameter schema and a function
that builds its argv from validated parameters. The launcher starts only
registered types, and argv is always a list (never a shell string), so a
parameter with shell metacharacters is just a literal argument.

Path parameters (`path`, `paths`, `database`) follow one rule: no `..`
component, no leading `-`, `~` expanded, and the value is made absolute at
launch (validation), so a job never depends on the launcher's working
directory and the form can show exactly which file is meant.
"""

from __future__ import annotations

import glob as globmod
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from gn_jobs_tui.core.redact import redact_url

ENTRY_POINT_GROUP = "gn_jobs_tui.job_types"
MAX_VALUE_LEN = 4096


class ParamError(ValueError):
    """Bad launcher input; `problems` maps parameter name -> message."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class Param:
    """One launcher parameter.

    `kind`: int, float, str, bool, choice, identifier; path (an existing
    file), paths (files or globs), database (a DB URL, or a SQLite file path
    whose directory exists).
    """

    name: str
    kind: str = "str"
    default: Any = None
    required: bool = False
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    multiple: bool = False  # for choice: comma-separated subset

    def convert(self, raw: Any) -> Any:
        """Raw text (or a value) -> checked value; raises ValueError with a clear message."""
        if isinstance(raw, str) and len(raw) > MAX_VALUE_LEN:
            raise ValueError(f"too long ({len(raw)} characters, at most {MAX_VALUE_LEN})")
        if isinstance(raw, str) and "\x00" in raw:
            raise ValueError("contains a NUL byte")
        if self.kind == "int":
            value: Any = _number(raw, int)
        elif self.kind == "float":
            value = _number(raw, float)
        elif self.kind == "bool":
            value = _bool(raw)
        elif self.kind == "choice":
            value = self._choice(raw)
        elif self.kind == "path":
            value = _path(raw)
            if not os.path.isfile(value):
                raise ValueError(f"not a readable file: {value}")
        elif self.kind == "paths":
            value = _paths(raw)
        elif self.kind == "database":
            value = _database(raw)
        elif self.kind == "identifier":
            value = str(raw).strip()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
                raise ValueError("letters, digits and _ only, not starting with a digit")
        else:
            value = str(raw)
        if self.kind in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"must be at least {_fmt(self.minimum)}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"must be at most {_fmt(self.maximum)}")
        return value

    def display(self, value: Any) -> str:
        """A checked value as the form and `show` print it: paths absolute, passwords hidden."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, tuple)):
            return ", ".join(self.display(v) for v in value)
        if self.kind == "database":
            return redact_url(str(value))
        return str(value)

    def preview(self, raw: Any) -> str | None:
        """What the launcher will use for this input (e.g. the resolved path), or None if it is bad."""
        try:
            return self.display(self.convert(raw))
        except ValueError:
            return None

    def _choice(self, raw: Any) -> Any:
        items = raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",") if s.strip()]
        if not self.multiple and len(items) != 1:
            raise ValueError(f"choose one of {', '.join(self.choices)}")
        bad = [i for i in items if i not in self.choices]
        if bad:
            raise ValueError(f"{bad[0]!r} is not one of {', '.join(self.choices)}")
        return items if self.multiple else items[0]


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _number(raw: Any, kind: type) -> Any:
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{str(raw)[:40]!r} is not {what}") from None
    if kind is float and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError("must be a finite number")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n", ""):
        return False
    raise ValueError(f"{str(raw)[:40]!r} is not yes/no")


def _path(raw: Any) -> str:
    """The one rule of every path parameter: no '..', no leading '-', made absolute."""
    text = str(raw).strip()
    if not text:
        raise ValueError("is empty")
    if text.startswith("-"):
        raise ValueError("a path may not start with '-'")
    if ".." in text.split(os.sep):
        raise ValueError("'..' is not allowed in a path")
    return os.path.abspath(os.path.expanduser(text))


#: Database URLs taken as they are (the job's driver reads them).
DB_URL_SCHEMES = ("postgresql://", "postgres://", "mysql://", "mariadb://")
SQLITE_URL = "sqlite:///"


def _database(raw: Any) -> str:
    """A DB URL as is, or a SQLite file (plain path or sqlite:///PATH) made absolute."""
    text = str(raw).strip()
    low = text.lower()
    if low.startswith(DB_URL_SCHEMES):
        return text
    sqlite_url = low.startswith(SQLITE_URL)
    if sqlite_url:
        text = text[len(SQLITE_URL):]  # sqlite:////abs/file, or sqlite:///relative/file
    elif "://" in text:
        raise ValueError(f"unknown database URL {redact_url(text)[:60]!r} (use postgresql://, "
                         "mysql://, mariadb://, sqlite:///PATH or a file path)")
    path = _path(text)
    if os.path.isdir(path):
        raise ValueError(f"is a directory, not a database file: {path}")
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError(f"no such directory: {os.path.dirname(path)}")
    return SQLITE_URL + path if sqlite_url else path


def _paths(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [s for s in str(raw).replace(",", " ").split() if s]
    if not items:
        raise ValueError("no files given")
    out: list[str] = []
    for item in items:
        path = _path(item)
        matches = sorted(globmod.glob(path)) if any(c in path for c in "*?[") else [path]
        if not matches:
            raise ValueError(f"no file matches {item!r}")
        out.extend(matches)
    for path in out:
        if not os.path.isfile(path):
            raise ValueError(f"not a readable file: {path}")
    return out


@dataclass(frozen=True)
class JobType:
    name: str
    description: str
    params: tuple[Param, ...]
    build_argv: Callable[[dict[str, Any]], list[str]]

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Check every parameter; all problems are reported at once."""
        problems: dict[str, str] = {}
        known = {p.name for p in self.params}
        for name in raw:
            if name not in known:
                problems[name] = f"unknown parameter (known: {', '.join(sorted(known)) or 'none'})"
        values: dict[str, Any] = {}
        for p in self.params:
            given = raw.get(p.name)
            if given is None or (isinstance(given, str) and given.strip() == "" and p.kind != "str"):
                if p.required:
                    problems[p.name] = "is required"
                    continue
                values[p.name] = p.default
                continue
            try:
                values[p.name] = p.convert(given)
            except ValueError as exc:
                problems[p.name] = str(exc)
        if problems:
            raise ParamError(problems)
        return values

    def argv(self, values: dict[str, Any]) -> list[str]:
        argv = self.build_argv(values)
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise TypeError(f"job type {self.name}: argv must be a list of strings")
        return argv

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "params": [{"name": p.name, "kind": p.kind, "default": p.default,
                            "required": p.required, "help": p.help, "minimum": p.minimum,
                            "maximum": p.maximum, "choices": list(p.choices)} for p in self.params]}


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs a module of ours with this interpreter."""
    return [sys.executable, "-m", module, *args]


class Registry:
    """Built-ins first, then the `gn_jobs_tui.job_types` entry point group."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self.load_errors: list[str] = []

    def register(self, job_type: JobType) -> None:
        self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            raise KeyError(f"unknown job type {name!r} (registered: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def all(self) -> list[JobType]:
        return [self._types[n] for n in self.names()]

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._types:
                continue  # built-ins win
            try:
                obj = ep.load()
                self.register(obj() if callable(obj) and not isinstance(obj, JobType) else obj)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the console
                self.load_errors.append(f"{ep.name}: {exc}")


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        reg = Registry()
        from gn_jobs_tui.jobs import BUILTIN_TYPES

        for jt in BUILTIN_TYPES:
            reg.register(jt)
        reg.load_entry_points()
        _REGISTRY = reg
    return _REGISTRY
