"""The real job programs and their registered job types."""

from __future__ import annotations

from gn_jobs_tui.core.jobtypes import JobType, Param, python_module


def _sleep_argv(v: dict) -> list[str]:
    return python_module("gn_jobs_tui.jobs.sleep", "--seconds", str(v["seconds"]),
                         "--exit-code", str(v["exit_code"]))


SLEEP = JobType(
    name="sleep",
    description="Sleep a while, printing a line and progress each second (tests and demos).",
    params=(
        Param("seconds", "float", default=10.0, minimum=0, maximum=86_400,
              help="how long to run"),
        Param("exit_code", "int", default=0, minimum=0, maximum=255,
              help="exit code to end with"),
    ),
    build_argv=_sleep_argv,
)

BUILTIN_TYPES: list[JobType] = [SLEEP]


def _qc_argv(v: dict) -> list[str]:
    return python_module("gn_jobs_tui.jobs.qc_files", "--workers", str(v["workers"]),
                         "--checks", ",".join(v["checks"]), "--delimiter", v["delimiter"],
                         "--missing-threshold", str(v["missing_threshold"]), "--", *v["files"])


QC_FILES = JobType(
    name="qc-files",
    description="Quality checks across large delimited files, split among worker processes.",
    params=(
        Param("files", "paths", required=True, help="files or globs, comma/space separated"),
        Param("workers", "int", default=2, minimum=1, maximum=64, help="worker processes"),
        Param("checks", "choice", default=["header", "fields", "numeric", "missing", "duplicates"],
              choices=("header", "fields", "numeric", "missing", "duplicates"), multiple=True,
              help="checks to run, comma separated"),
        Param("delimiter", "choice", default="auto", choices=("auto", "tab", "comma")),
        Param("missing_threshold", "float", default=0.5, minimum=0, maximum=1,
              help="fraction of missing values that makes a line bad"),
    ),
    build_argv=_qc_argv,
)


def _default_database() -> str:
    from gn_jobs_tui.core.server import state_dir

    return str(state_dir() / "data.sqlite")


def _insert_argv(v: dict) -> list[str]:
    return python_module("gn_jobs_tui.jobs.insert_rows", "--database", v["database"] or
                         _default_database(), "--table", v["table"], "--batch-size",
                         str(v["batch_size"]), "--on-bad-rows", v["on_bad_rows"], "--delimiter",
                         v["delimiter"], "--numeric", "yes" if v["numeric"] else "no",
                         "--max-rate", str(v["max_rate"]), "--",
                         v["file"])


INSERT_ROWS = JobType(
    name="insert-rows",
    description="Insert a large delimited file into a database table, in committed batches.",
    params=(
        Param("file", "path", required=True, help="the data file"),
        Param("database", "database", default="",
              help="SQLite file or DB URL: postgresql://, mysql://, mariadb:// (default: state dir)"),
        Param("table", "identifier", default="data_rows", help="target table"),
        Param("batch_size", "int", default=1000, minimum=1, maximum=100_000),
        Param("on_bad_rows", "choice", default="fail", choices=("fail", "skip")),
        Param("delimiter", "choice", default="auto", choices=("auto", "tab", "comma")),
        Param("numeric", "bool", default=True, help="values after the id must be numbers"),
        Param("max_rate", "int", default=0, minimum=0, maximum=10_000_000,
              help="at most this many rows/s (0: no limit)"),
    ),
    build_argv=_insert_argv,
)

BUILTIN_TYPES.extend([QC_FILES, INSERT_ROWS])
