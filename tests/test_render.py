"""`gn-jobs list` and `show` output: ids never cut, nothing padded when piped, one JSON shape."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from rich.console import Console

from gn_jobs_tui import render
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store
from tests.scenes import NOW, seed


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    return store


def gn(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gn_jobs_tui", "--redis-url", config.url,
                           "--prefix", config.prefix, *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("width", [50, 60, 80, 100, 159])
def test_list_never_cuts_an_id_on_a_narrow_terminal(seeded: Store, width: int) -> None:
    """Defect 2: MESSAGE gives way first, then HOST and STARTED; ids stay whole."""
    jobs = [j for page in seeded.iter_jobs() for j in page]
    out = io.StringIO()
    render.print_list(jobs, NOW, Console(file=out, force_terminal=True, width=width,
                                         color_system=None))
    lines = out.getvalue().splitlines()
    assert len(lines) == len(jobs) + 1
    assert all(len(line) <= width for line in lines)
    assert [line.split()[0] for line in lines[1:]] == [j.short_id for j in jobs]
    header = lines[0].split()
    if width < 159:
        assert "HOST" not in header  # dropped before anything else is cut
    if "STARTED" in header:
        assert "HOST" in header or width < 159


def test_list_piped_is_whole_and_unpadded(config: Config, seeded: Store) -> None:
    r = gn(config, "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert "MESSAGE" in lines[0] and "HOST" in lines[0]
    assert any("11 errors in 3 files (4 numeric, 2 fields, 2 missing)" in line for line in lines)


def test_show_piped_has_no_padding(config: Config, seeded: Store) -> None:
    """Defect 17: every line ends where its text ends."""
    r = gn(config, "show", "9c0ffee0")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "9c0ffee000000000000000000000qc01" in r.stdout
    assert lines and all(line == line.rstrip() for line in lines)
    assert max(len(line) for line in lines) < 200


def test_list_and_show_json_share_one_shape(config: Config, seeded: Store) -> None:
    """Defect 4: `list --json` gives every field `show --json` does, with the same values."""
    listed = {j["job_id"]: j for j in json.loads(gn(config, "list", "--json").stdout)}
    shown = json.loads(gn(config, "show", "9c0ffee0", "--json").stdout)
    row = listed[shown["job_id"]]
    assert set(row) == set(shown)
    assert shown["unread"] == [] and shown["command"] and shown["params"]
    assert shown["children"] and shown["children_state"] and shown["output_lines"] == 0
    # What only `show` reads (its keys' contents) is null in a listing and named so.
    assert row["unread"] == ["output_lines", "children_state"]
    for key in ("command", "params", "children", "extra"):
        assert row[key] == shown[key] and row[key] is not None, key
    for key in set(row) - {"unread", "output_lines", "children_state"}:
        assert row[key] == shown[key], key
