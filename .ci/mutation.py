"""Mutation testing, one group of modules at a time (`.ci/mutation`; not part of CI).

Each group (pyproject `[[tool.gn-jobs-mutation.groups]]`) names the modules it
mutates and the test files that touch them. A group runs in its own copy of
the tree, `mutants/<group>/`, whose pyproject `[tool.mutmut]` table gets the
group's `only_mutate` and test files; mutmut copies that again into
`mutants/<group>/mutants/` and runs, for each mutant, only the selected tests
that called the mutated function (found in a first, clean run).

Nothing may outlive a group: every process started under it carries a mark in
its environment (`GN_JOBS_MUTATION_RUN`), and after mutmut exits any process
still carrying it is ended and counted. Kill rate = (killed + timed out) /
mutants; "no tests" mutants count as not killed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.leftovers: the one way to end what a run left
WORK = ROOT / "mutants"
MARK = "GN_JOBS_MUTATION_RUN"
TARGET = 85.0
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "mutants")


@dataclass
class Group:
    name: str
    modules: list[str]
    tests: list[str]
    functions: list[str] = field(default_factory=list)


@dataclass
class Tally:
    module: str
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def caught(self) -> int:
        return self.counts.get("killed", 0) + self.counts.get("timeout", 0)

    @property
    def rate(self) -> float:
        return 100.0 * self.caught / self.total if self.total else 0.0


def load_groups() -> list[Group]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Group(**g) for g in data["tool"]["gn-jobs-mutation"]["groups"]]


def group_pyproject(group: Group) -> str:
    """The project's pyproject with this group's selection added to `[tool.mutmut]`."""
    text = (ROOT / "pyproject.toml").read_text()
    extra = (f"only_mutate = {json.dumps(group.modules)}\n"
             f"pytest_add_cli_args_test_selection = {json.dumps(group.tests)}\n")
    head = "[tool.mutmut]\n"
    if head not in text:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table")
    return text.replace(head, head + extra, 1)


def prepare(group: Group) -> Path:
    """A fresh copy of the tree for this group (sources, tests, pyproject)."""
    missing = [p for p in group.modules + group.tests if not (ROOT / p.split("::")[0]).exists()]
    if missing:
        raise SystemExit(f"group {group.name}: no such file: {', '.join(missing)}")
    where = WORK / group.name
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for name in ("gn_jobs_tui", "tests"):
        shutil.copytree(ROOT / name, where / name, ignore=COPY_IGNORE)
    (where / "pyproject.toml").write_text(group_pyproject(group))
    return where


def marked(run_id: str, tmp: str) -> list[psutil.Process]:
    """Live processes started under this run, not this one: they inherit MARK in their
    environment, or (servers, which daemonize and rewrite it) name `tmp` in their
    command line or work in it."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARK) == run_id or tmp in " ".join(proc.cmdline()) \
                    or proc.cwd().startswith(tmp):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def sweep(run_id: str, tmp: str) -> list[str]:
    """End every process still left from this run (supervisors get 15 s to finish their
    last writes); what was ended."""
    from tests.leftovers import end_found

    return end_found(lambda: marked(run_id, tmp), 15, 0.5)


def tally(where: Path, group: Group) -> list[Tally]:
    """Per module: mutants by status (mutmut's names), and the survivors' names."""
    from mutmut.stats import status_by_exit_code

    out = []
    for module in group.modules:
        meta = json.loads((where / "mutants" / (module + ".meta")).read_text())
        t = Tally(module)
        for name, code in sorted(meta["exit_code_by_key"].items()):
            if group.functions and not any(fnmatch.fnmatch(name, f) for f in group.functions):
                continue
            status = status_by_exit_code[code]
            t.counts[status] = t.counts.get(status, 0) + 1
            if status not in ("killed", "timeout"):
                t.survivors.append(f"{name}: {status}")
        out.append(t)
    return out


def run_group(group: Group, mutmut: Path, children: int) -> tuple[list[Tally], float, list[str]]:
    where = prepare(group)
    run_id = uuid.uuid4().hex
    # Short: servers' unix socket paths live under it (at most 107 bytes).
    tmp = tempfile.mkdtemp(prefix="gjm-")
    state = Path(tmp) / "state"
    env = {**os.environ, MARK: run_id, "XDG_STATE_HOME": str(state), "TMPDIR": tmp}
    env.pop("GN_JOBS_TEST_REDIS_URL", None)  # every mutant gets throw-away servers
    log = where / "mutmut.log"
    print(f"== {group.name}: {', '.join(group.modules)} (tests: {', '.join(group.tests)}); "
          f"log {log.relative_to(ROOT)}", flush=True)
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(mutmut), "run", "--max-children", str(children),
                                 *group.functions], cwd=where, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            proc.wait()
        finally:  # interrupted too: mutmut stops its workers, then nothing may be left
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # mutmut's own stop: it ends its workers
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            ended = sweep(run_id, tmp)
            shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - started
    for line in ended:
        print(f"   outlived the run, ended: {line}")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-15:]
        print("\n".join(tail))
        raise SystemExit(f"group {group.name}: mutmut exited {proc.returncode} (see {log})")
    tallies = tally(where, group)
    with open(where / "survivors.diff", "w") as diffs:
        for t in tallies:
            for line in t.survivors:
                name = line.split(":")[0]
                shown = subprocess.run([str(mutmut), "show", name], cwd=where, env=env,
                                       capture_output=True, text=True, check=False)
                diffs.write(shown.stdout + "\n")
    return tallies, took, ended


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    groups = load_groups()
    ap = argparse.ArgumentParser(prog=".ci/mutation", description=__doc__.splitlines()[0])
    ap.add_argument("groups", nargs="*", help=f"groups to run (default all: "
                    f"{', '.join(g.name for g in groups)})")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2,
                    help="mutants tested at once (default: the number of cores)")
    args = ap.parse_args()
    known = {g.name: g for g in groups}
    unknown = [n for n in args.groups if n not in known]
    if unknown:
        ap.error(f"unknown group {unknown[0]!r} (known: {', '.join(known)})")
    chosen = [known[n] for n in args.groups] if args.groups else groups
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit(f"{mutmut} not found: pip install -e '.[test,mutation]'")

    rows, leftovers, all_ok = [], [], True
    for group in chosen:
        tallies, took, ended = run_group(group, mutmut, args.max_children)
        leftovers += ended
        for t in tallies:
            rows.append((group.name, t, took))
            all_ok &= t.rate >= TARGET
            for s in t.survivors:
                print(f"   not killed: {s}")
        print(f"   {group.name}: {took:.0f} s; survivors' diffs in "
              f"{(WORK / group.name / 'survivors.diff').relative_to(ROOT)}", flush=True)

    print()
    print(f"{'module':<32} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} "
          f"{'no tests':>8} {'other':>5} {'kill rate':>9} {'group time':>10}")
    for name, t, took in rows:
        c = t.counts
        other = t.total - sum(c.get(k, 0) for k in ("killed", "timeout", "survived", "no tests"))
        print(f"{t.module.removeprefix('gn_jobs_tui/'):<32} {t.total:>7} {c.get('killed', 0):>6} "
              f"{c.get('timeout', 0):>7} {c.get('survived', 0):>8} {c.get('no tests', 0):>8} "
              f"{other:>5} {t.rate:>8.1f}% {took:>8.0f} s  ({name})")
    if leftovers:
        print(f"{len(leftovers)} processes outlived their group and were ended:")
        print("\n".join(leftovers))
    print(f"target: {TARGET:.0f}% in every module: {'met' if all_ok else 'NOT met'}")
    return 0 if all_ok and not leftovers else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: mutmut stopped, nothing left running", file=sys.stderr)
        sys.exit(130)
