"""The launcher's validation, rule by rule (`core/jobtypes.py`).

Each rule is tested with an input that passes every other rule, so the rule
alone decides (a rejected `../x` names a file that exists; a rejected table
name is given with a file that exists), and every message is pinned exactly.
Written against the mutation run (`.ci/mutation jobtypes`). Files and
directories are real (tmp_path); plugins are real installed distributions.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gn_jobs_tui.core import jobtypes
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.jobtypes import (
    MAX_VALUE_LEN,
    JobType,
    Param,
    ParamError,
    Registry,
    python_module,
    registry,
)
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a.tsv, b.tsv, sub/c.tsv and a folder db.d."""
    (tmp_path / "a.tsv").write_text("id\tx\n")
    (tmp_path / "b.tsv").write_text("id\tx\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.tsv").write_text("id\tx\n")
    (tmp_path / "db.d").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    return tmp_path


def problem(param: Param, raw: object) -> str:
    with pytest.raises(ValueError) as err:
        param.convert(raw)
    return str(err.value)


# -- every kind --------------------------------------------------------------------

def test_length_and_nul_come_first() -> None:
    p = Param("n", "str")
    assert p.convert("x" * MAX_VALUE_LEN) == "x" * MAX_VALUE_LEN
    assert problem(p, "x" * (MAX_VALUE_LEN + 1)) == \
        f"too long ({MAX_VALUE_LEN + 1} characters, at most {MAX_VALUE_LEN})"
    assert problem(p, "a\x00b") == "contains a NUL byte"
    assert problem(Param("n", "int"), "1\x00") == "contains a NUL byte"
    assert p.convert(12) == "12" and p.convert("  x ") == "  x "


def test_whole_numbers() -> None:
    p = Param("n", "int", minimum=1, maximum=64)
    assert p.convert("1") == 1 and p.convert(" 64 ") == 64 and p.convert(7) == 7
    assert type(p.convert("5")) is int
    assert problem(p, "0") == "must be at least 1"
    assert problem(p, "65") == "must be at most 64"
    assert problem(p, "1.5") == "'1.5' is not a whole number"
    assert problem(p, "y" * 50) == repr("y" * 40) + " is not a whole number"
    assert problem(p, None) == "'None' is not a whole number"
    assert problem(p, True) == "must be a number"
    assert Param("n", "int").convert("-99999999999") == -99999999999  # no bounds, none applied


def test_decimal_numbers() -> None:
    p = Param("f", "float", minimum=0, maximum=0.5)
    assert p.convert("0") == 0.0 and p.convert("0.5") == 0.5 and p.convert(0.25) == 0.25
    assert type(p.convert("0")) is float
    assert problem(p, "-0.001") == "must be at least 0"
    assert problem(p, "0.51") == "must be at most 0.5"
    assert problem(Param("f", "float", minimum=1.5), "1") == "must be at least 1.5"
    assert problem(Param("f", "float", maximum=2.0), "3") == "must be at most 2"
    for bad in ("nan", "inf", "-inf", "1e400"):
        assert problem(p, bad) == "must be a finite number"
    assert problem(p, "half") == "'half' is not a number"
    assert problem(p, False) == "must be a number"


@pytest.mark.parametrize("raw,value", [
    (True, True), (False, False), ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("y", True), ("0", False), ("False", False), ("no", False), ("off", False), ("n", False),
    ("", False),
])
def test_yes_no(raw: object, value: bool) -> None:
    assert Param("b", "bool").convert(raw) is value


def test_yes_no_refuses_other_words() -> None:
    assert problem(Param("b", "bool"), "maybe") == "'maybe' is not yes/no"
    assert problem(Param("b", "bool"), 2) == "'2' is not yes/no"
    assert problem(Param("b", "bool"), "n" * 50) == repr("n" * 40) + " is not yes/no"


def test_one_choice_and_several() -> None:
    one = Param("d", "choice", choices=("auto", "tab", "comma"))
    assert one.convert(" tab ") == "tab" and one.convert(["comma"]) == "comma"
    assert problem(one, "tab,comma") == "choose one of auto, tab, comma"
    assert problem(one, "") == "choose one of auto, tab, comma"
    assert problem(one, "space") == "'space' is not one of auto, tab, comma"
    many = Param("c", "choice", choices=("header", "fields", "numeric"), multiple=True)
    assert many.convert("header, numeric,,") == ["header", "numeric"]
    assert many.convert(["fields"]) == ["fields"]
    assert problem(many, "header,bogus,worse") == "'bogus' is not one of header, fields, numeric"


def test_identifiers() -> None:
    p = Param("t", "identifier")
    assert p.convert(" data_rows ") == "data_rows"
    assert p.convert("_" + "a" * 62) == "_" + "a" * 62
    assert p.convert("T9") == "T9"
    for bad in ("a" * 64, "9rows", "rows; DROP TABLE x", "a-b", "", "é"):
        assert problem(p, bad) == "letters, digits and _ only, not starting with a digit"


# -- paths: one rule for path, paths and database --------------------------------------

def test_a_path_is_made_absolute_from_the_working_directory(here: Path) -> None:
    p = Param("f", "path")
    assert p.convert("c.tsv") == str(here / "sub" / "c.tsv")
    assert p.convert(f"  {here}/a.tsv ") == str(here / "a.tsv")
    (here / "a..b.tsv").write_text("x")
    assert p.convert(str(here / "a..b.tsv")) == str(here / "a..b.tsv")  # '..' inside a name


def test_the_path_rules_each_alone(here: Path) -> None:
    p = Param("f", "path")
    # Each of these names a file that exists: only the rule can refuse it.
    assert problem(p, "../a.tsv") == "'..' is not allowed in a path"
    assert problem(p, f"{here}/sub/../a.tsv") == "'..' is not allowed in a path"
    (here / "sub" / "-n").write_text("x")
    assert problem(p, "-n") == "a path may not start with '-'"
    assert problem(p, "   ") == "is empty"
    assert problem(p, "missing.tsv") == f"not a readable file: {here / 'sub' / 'missing.tsv'}"
    assert problem(p, str(here / "db.d")) == f"not a readable file: {here / 'db.d'}"


def test_home_is_expanded(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(here))
    assert Param("f", "path").convert("~/a.tsv") == str(here / "a.tsv")


def test_paths_globs_and_lists(here: Path) -> None:
    p = Param("fs", "paths")
    a, b, c = str(here / "a.tsv"), str(here / "b.tsv"), str(here / "sub" / "c.tsv")
    assert p.convert(f"{here}/*.tsv") == [a, b]
    assert p.convert(f"{b}, {a} c.tsv") == [b, a, c]
    assert p.convert([a, "c.tsv"]) == [a, c]
    assert p.convert(f"{here}/[ab].tsv,{here}/?.tsv") == [a, b, a, b]
    assert problem(p, " , ") == "no files given"
    assert problem(p, []) == "no files given"
    pattern = f"{here}/*.csv"
    assert problem(p, pattern) == f"no file matches {pattern!r}"
    assert problem(p, f"{a},gone.tsv") == f"not a readable file: {here / 'sub' / 'gone.tsv'}"
    assert problem(p, f"{a} ../a.tsv") == "'..' is not allowed in a path"
    assert problem(p, f"{here}/db*") == f"not a readable file: {here / 'db.d'}"
    # No wildcard: a file that does not exist is named as such, not as an empty match.
    assert problem(p, "X.tsv") == f"not a readable file: {here / 'sub' / 'X.tsv'}"


def test_databases(here: Path) -> None:
    p = Param("db", "database")
    for url in ("postgresql://u:pw@h/db", "postgres://h/db", "MySQL://h/db", "mariadb://h/db"):
        assert p.convert(f" {url} ") == url
    assert p.convert("new.sqlite") == str(here / "sub" / "new.sqlite")
    assert p.convert(f"sqlite:///{here}/new.sqlite") == f"sqlite:///{here}/new.sqlite"
    assert p.convert("SQLITE:///rel.sqlite") == f"sqlite:///{here}/sub/rel.sqlite"
    assert problem(p, "mongodb://u:secret@h/db") == (
        "unknown database URL 'mongodb://u:***@h/db' (use postgresql://, mysql://, mariadb://, "
        "sqlite:///PATH or a file path)")
    assert problem(p, str(here / "db.d")) == f"is a directory, not a database file: {here / 'db.d'}"
    assert problem(p, f"{here}/nowhere/x.sqlite") == f"no such directory: {here / 'nowhere'}"
    assert problem(p, "sqlite:///../x.sqlite") == "'..' is not allowed in a path"
    assert problem(p, "-x.sqlite") == "a path may not start with '-'"
    assert problem(p, "sqlite:///") == "is empty"
    long = "mongodb://h/" + "d" * 80
    assert problem(p, long) == (f"unknown database URL {long[:60]!r} (use postgresql://, mysql://, "
                                "mariadb://, sqlite:///PATH or a file path)")


# -- showing values ---------------------------------------------------------------------

def test_display_and_preview(here: Path) -> None:
    assert Param("x").display(None) == ""
    assert Param("b", "bool").display(True) == "yes" and Param("b", "bool").display(False) == "no"
    assert Param("c", "choice").display(["a", "b"]) == "a, b"
    assert Param("c", "choice").display(("a",)) == "a"
    assert Param("db", "database").display("mysql://u:pw@h/d") == "mysql://u:***@h/d"
    assert Param("db", "database").display(["mysql://u:pw@h/d"]) == "mysql://u:***@h/d"
    assert Param("s").display("mysql://u:pw@h/d") == "mysql://u:pw@h/d"
    assert Param("n", "int").display(0) == "0"
    assert Param("f", "path").preview("c.tsv") == str(here / "sub" / "c.tsv")
    assert Param("f", "path").preview("../a.tsv") is None
    assert Param("db", "database").preview("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


# -- a job type's whole form --------------------------------------------------------------

def test_validate_reports_every_problem_at_once(here: Path) -> None:
    jt = registry().get("insert-rows")
    with pytest.raises(ParamError) as err:
        jt.validate({"file": "../a.tsv", "table": "x;y", "batch_size": "0", "numeric": "maybe",
                     "colour": "red"})
    assert err.value.problems == {
        "colour": "unknown parameter (known: batch_size, database, delimiter, file, max_rate, "
                  "numeric, on_bad_rows, table)",
        "file": "'..' is not allowed in a path",
        "table": "letters, digits and _ only, not starting with a digit",
        "batch_size": "must be at least 1",
        "numeric": "'maybe' is not yes/no",
    }
    assert str(err.value) == "; ".join(f"{k}: {v}" for k, v in err.value.problems.items())
    assert str(err.value).startswith("colour: unknown parameter")


def test_each_insert_rule_alone_with_a_file_that_exists(here: Path) -> None:
    jt = registry().get("insert-rows")
    good = {"file": "c.tsv", "table": "rows", "database": "new.sqlite"}
    assert jt.validate(good)["file"] == str(here / "sub" / "c.tsv")
    for name, bad, why in (("table", "rows; DROP TABLE x",
                            "letters, digits and _ only, not starting with a digit"),
                           ("file", "../a.tsv", "'..' is not allowed in a path"),
                           ("database", "../new.sqlite", "'..' is not allowed in a path"),
                           ("on_bad_rows", "ignore", "'ignore' is not one of fail, skip"),
                           ("max_rate", "-1", "must be at least 0")):
        with pytest.raises(ParamError) as err:
            jt.validate({**good, name: bad})
        assert err.value.problems == {name: why}


def test_defaults_required_and_blank_values(here: Path) -> None:
    jt = registry().get("insert-rows")
    values = jt.validate({"file": "c.tsv", "batch_size": "  ", "numeric": None})
    assert values == {"file": str(here / "sub" / "c.tsv"), "database": "", "table": "data_rows",
                      "batch_size": 1000, "on_bad_rows": "fail", "delimiter": "auto",
                      "numeric": True, "max_rate": 0}
    with pytest.raises(ParamError) as err:
        jt.validate({"file": " "})
    assert err.value.problems == {"file": "is required"}
    with pytest.raises(ParamError) as err:
        jt.validate({})
    assert err.value.problems == {"file": "is required"}
    with pytest.raises(ParamError) as err:  # the check goes on after a missing parameter
        jt.validate({"table": "x y", "max_rate": "-1"})
    assert err.value.problems == {"file": "is required",
                                  "table": "letters, digits and _ only, not starting with a digit",
                                  "max_rate": "must be at least 0"}
    text = JobType("t", "", (Param("note", "str", default="d"),), lambda v: [v["note"]])
    assert text.validate({"note": ""}) == {"note": ""}  # a blank text is a value
    assert text.validate({}) == {"note": "d"}
    empty = JobType("e", "", (), lambda v: ["x"])
    with pytest.raises(ParamError) as err:
        empty.validate({"a": "1"})
    assert err.value.problems == {"a": "unknown parameter (known: none)"}


def test_argv_must_be_a_list_of_strings() -> None:
    ok = JobType("ok", "", (), lambda v: ["a", "b"])
    assert ok.argv({}) == ["a", "b"]
    for bad in (("a", "b"), ["a", 1], "a b"):
        jt = JobType("bad", "", (), lambda v, bad=bad: bad)  # type: ignore[misc]
        with pytest.raises(TypeError, match=r"^job type bad: argv must be a list of strings$"):
            jt.argv({})


def test_sleep_argv_is_literal() -> None:
    jt = registry().get("sleep")
    assert jt.argv(jt.validate({"seconds": "2", "exit_code": "3"})) == [
        sys.executable, "-m", "gn_jobs_tui.jobs.sleep", "--seconds", "2.0", "--exit-code", "3"]
    assert python_module("m", "a", "b") == [sys.executable, "-m", "m", "a", "b"]


def test_to_dict_describes_the_form() -> None:
    assert registry().get("sleep").to_dict() == {
        "name": "sleep",
        "description": "Sleep a while, printing a line and progress each second (tests and demos).",
        "params": [
            {"name": "seconds", "kind": "float", "default": 10.0, "required": False,
             "help": "how long to run", "minimum": 0, "maximum": 86_400, "choices": []},
            {"name": "exit_code", "kind": "int", "default": 0, "required": False,
             "help": "exit code to end with", "minimum": 0, "maximum": 255, "choices": []},
        ]}
    qc = registry().get("qc-files").to_dict()["params"]
    assert qc[0]["required"] is True
    assert qc[3]["choices"] == ["auto", "tab", "comma"]


# -- the registry ---------------------------------------------------------------------------

def test_registry_lookups() -> None:
    reg = registry()
    assert reg is registry()
    assert reg.names() == ["insert-rows", "qc-files", "sleep"]
    assert [t.name for t in reg.all()] == reg.names()
    assert "sleep" in reg and "rm" not in reg
    with pytest.raises(KeyError) as err:
        reg.get("rm")
    assert err.value.args[0] == "unknown job type 'rm' (registered: insert-rows, qc-files, sleep)"


PLUGIN = '''
from gn_jobs_tui.core.jobtypes import JobType, Param

ECHO = JobType("echo", "echo a word", (Param("word", "str", default="hi"),),
               lambda v: ["echo", v["word"]])

def make():
    return JobType("made", "built by a factory", (), lambda v: ["true"])

def broken():
    raise RuntimeError("plugin exploded")

SLEEP = JobType("sleep", "a plugin that would replace a built-in", (), lambda v: ["rm", "-rf"])

TEXT = "not a job type"
'''


def test_plugins_from_installed_distributions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """Entry points of a real (on-path) distribution: objects, factories, broken ones."""
    (tmp_path / "gj_plugin_mod.py").write_text(PLUGIN)
    info = tmp_path / "gj_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gj-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[gn_jobs_tui.job_types]\nsleep = gj_plugin_mod:SLEEP\necho = gj_plugin_mod:ECHO\n"
        "made = gj_plugin_mod:make\nbroken = gj_plugin_mod:broken\nmissing = gj_plugin_mod:NOPE\n"
        "text = gj_plugin_mod:TEXT\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from gn_jobs_tui.jobs import SLEEP

    reg = Registry()
    reg.register(SLEEP)
    reg.load_entry_points()
    assert reg.names() == ["echo", "made", "sleep"]
    assert reg.get("sleep") is SLEEP  # built-ins win
    assert reg.get("echo").argv(reg.get("echo").validate({"word": "a;b"})) == ["echo", "a;b"]
    assert reg.get("made").description == "built by a factory"
    assert sorted(reg.load_errors) == [
        "broken: plugin exploded",
        "missing: module 'gj_plugin_mod' has no attribute 'NOPE'",
        "text: 'str' object has no attribute 'name'",
    ]


def test_the_process_registry_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobtypes, "_REGISTRY", None)
    first = jobtypes.registry()
    assert first.names() == ["insert-rows", "qc-files", "sleep"]
    assert jobtypes.registry() is first


# -- the launcher: a refused form writes nothing ---------------------------------------------

def test_a_refused_launch_writes_nothing(here: Path, config: Config, store: Store) -> None:
    with pytest.raises(ParamError) as err:
        launch(store, config, "insert-rows", {"file": "c.tsv", "table": "x y"}, user="eve")
    assert err.value.problems == {"table": "letters, digits and _ only, not starting with a digit"}
    assert list(store.r.scan_iter(match=f"{config.prefix}:*")) == []
    with pytest.raises(KeyError):
        launch(store, config, "rm", {}, user="eve")
    assert list(store.r.scan_iter(match=f"{config.prefix}:*")) == []
    assert os.getcwd() == str(here / "sub")
