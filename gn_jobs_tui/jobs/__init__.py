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
    module="gn_jobs_tui.jobs.sleep",
)

BUILTIN_TYPES: list[JobType] = [SLEEP]
