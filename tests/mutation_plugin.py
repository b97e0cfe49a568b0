"""pytest plugin for mutation runs only (`.ci/mutation` loads it with `-p`).

mutmut runs the selected tests many times, each time in a fork of one process
that imported conftest once, and two forks at a time. Three things differ from
a plain `pytest` run, and this plugin puts them right:

- conftest marks the processes of a test run (`GN_JOBS_TEST_RUN`) at import,
  so every fork would share one mark and each would count the other's servers
  as "left running" and kill them: each session gets a fresh mark;
- processes the tests start (supervisors, jobs, the CLI) must import the
  mutated tree, whatever their working directory: `PYTHONPATH` names it;
- a worker past its time limit is sent SIGXCPU and dies without teardown:
  it first ends the processes its session started, so none outlives it
  (servers daemonize and rewrite their environment, so those are found by
  the session's temporary directory named in their command line);
- hypothesis is derandomized, so a mutant is killed or not the same way twice.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import psutil
import pytest

RUN_MARK = "GN_JOBS_TEST_RUN"


_basetemp: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _mutation_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where this session's servers live (their command lines name it)."""
    _basetemp[:] = [str(tmp_path_factory.getbasetemp())]


def _end_our_processes(signum: int, frame: object) -> None:
    """SIGXCPU (mutmut's timeout): end what this session started, then die as timed out."""
    from tests.conftest import ours

    found = ours()
    if _basetemp:
        for proc in psutil.process_iter(["cmdline"]):
            if proc.pid != os.getpid() and _basetemp[0] in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
    for proc in found:
        try:
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    os._exit(128 + signal.SIGXCPU)


def pytest_configure(config: pytest.Config) -> None:
    import gn_jobs_tui

    os.environ[RUN_MARK] = uuid.uuid4().hex
    os.environ["PYTHONPATH"] = str(Path(gn_jobs_tui.__file__).resolve().parents[1])
    signal.signal(signal.SIGXCPU, _end_our_processes)


def pytest_collection_finish(session: pytest.Session) -> None:
    """After the test modules loaded their own profiles: the same examples every run."""
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("mutation", settings(settings.default, derandomize=True,
                                                   database=None))
    settings.load_profile("mutation")
