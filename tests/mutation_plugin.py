"""pytest plugin for mutation runs only (`.ci/mutation` loads it with `-p`).

mutmut runs the selected tests many times, each time in a fork of one process
that imported conftest once, and two forks at a time. What differs from a
plain `pytest` run, and what this plugin does about it:

- conftest marks the processes of a test run (`GN_JOBS_TEST_RUN`) at import,
  so every fork would share one mark and each would count the other's servers
  as "left running" and kill them: each session gets a fresh mark;
- processes the tests start (supervisors, jobs, the CLI) must import the
  mutated tree, whatever their working directory: `PYTHONPATH` names it;
- mutmut maps each function to the tests that call it by recording calls in
  its own process, so code that runs only in a supervisor process would have
  "no tests": a `sitecustomize` on that `PYTHONPATH` has each such process,
  in the mapping run, write the functions it called (and the test that started
  it) to a file, which is read back into mutmut's map when the session ends;
- a worker past its time limit is sent SIGXCPU and dies without teardown:
  it first ends the processes its session started, so none outlives it
  (servers daemonize and rewrite their environment, so those are found by
  the session's temporary directory named in their command line);
- hypothesis is derandomized, so a mutant is killed or not the same way twice.
"""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest

RUN_MARK = "GN_JOBS_TEST_RUN"
HITS = "GN_JOBS_MUTMUT_HITS"
TEST = "GN_JOBS_MUTMUT_TEST"

#: Imported by every Python process of a mutation run (it is first on PYTHONPATH).
SITECUSTOMIZE = '''\
"""Mutation runs only (tests/mutation_plugin.py): this process and mutmut's map."""
import atexit
import os
import sys

_argv = getattr(sys, "orig_argv", [])
# `python -m M`: M runs as __main__, and mutmut's trampolines in it know it by that name.
_main = _argv[_argv.index("-m") + 1] if "-m" in _argv[:-1] else None
_mutant = os.environ.get("MUTANT_UNDER_TEST", "")
if _main and _mutant.rpartition(".")[0] == _main:
    from mutmut.mutation import trampoline

    os.environ.pop("MUTANT_UNDER_TEST")  # its children do not run M as __main__
    trampoline._mutant_under_test = "__main__." + _mutant.rpartition(".")[2]

if _mutant == "stats" and os.environ.get("{hits}"):
    def _report() -> None:
        from mutmut.state import state

        names = sorted(state()._stats)
        if names:
            test = os.environ.get("{test}", "")
            path = os.path.join(os.environ["{hits}"], f"{{os.getpid()}}.hits")
            with open(path, "a", encoding="utf-8") as f:
                for name in names:
                    if _main and name.startswith("__main__."):
                        name = _main + name[len("__main__"):]
                    f.write(f"{{test}}\\t{{name}}\\n")

    atexit.register(_report)
    # mutmut reads its settings from the working directory: read them from the tree's.
    _here = os.getcwd()
    os.chdir({root!r})
    from mutmut.configuration import config

    config()
    os.chdir(_here)
'''

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

    root = str(Path(gn_jobs_tui.__file__).resolve().parents[1])
    hook = tempfile.mkdtemp(prefix="gjm-site-")
    Path(hook, "sitecustomize.py").write_text(SITECUSTOMIZE.format(hits=HITS, test=TEST,
                                                                   root=root))
    os.environ[RUN_MARK] = uuid.uuid4().hex
    os.environ["PYTHONPATH"] = os.pathsep.join([hook, root])
    os.environ[HITS] = tempfile.mkdtemp(prefix="gjm-hits-")
    signal.signal(signal.SIGXCPU, _end_our_processes)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Processes started from here on report their calls as this test's."""
    os.environ[TEST] = item.nodeid.removeprefix("mutants/")


def pytest_collection_finish(session: pytest.Session) -> None:
    """After the test modules loaded their own profiles: the same examples every run."""
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("mutation", settings(settings.default, derandomize=True,
                                                   database=None))
    settings.load_profile("mutation")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """In mutmut's mapping run: the calls other processes made count for their tests."""
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return
    from mutmut.state import state

    found = state().tests_by_mangled_function_name
    for path in Path(os.environ[HITS]).glob("*.hits"):
        for line in path.read_text(encoding="utf-8").splitlines():
            test, _, name = line.partition("\t")
            if test and name:
                found[name].add(test)
