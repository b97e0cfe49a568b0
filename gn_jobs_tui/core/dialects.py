"""How other producers write jobs, as data: one table, no code per producer.

Known producers (DESIGN.md §1): gn-uploader's own job code (`jobid`,
`job-type`, `percent`, `pending`/`success`/`error`, a shell-quoted
`command`, `stdout`/`stderr` fields, indexed per user only) and GeneNetwork2
(`gn2:jobs:<uuid>` with `completion-status` and `return-code`, no index at
all). A new alias is one entry here; the model reads through these tables.
"""

from __future__ import annotations

#: Field names other producers use -> ours. The first name found wins, ours first.
FIELD_ALIASES: dict[str, str] = {
    "jobid": "job_id",
    "job-id": "job_id",
    "job-type": "job_type",
    "jobtype": "job_type",
    "user-id": "user_id",
    "userid": "user_id",
    "percent": "progress",
    "return-code": "exit_code",
    "returncode": "exit_code",
}

#: Status words other producers write -> ours. Anything else is shown as it is.
STATUS_ALIASES: dict[str, str] = {
    "pending": "queued",
    "success": "completed",
    "error": "failed",
    "aborted": "killed",
}

#: A final verdict some producers write beside `status` (gn2 sets `status`
#: to `completed` and says here whether it succeeded): it overrules `status`.
VERDICT_FIELDS: tuple[str, ...] = ("completion-status",)

#: Hash fields that hold the job's output as text, with the stream they show as.
OUTPUT_FIELDS: tuple[tuple[str, str], ...] = (("stdout", "out"), ("stderr", "err"))

#: Ids under `P:jobs:` that are not jobs (gn2's `gn2:jobs:manager` holds its
#: runner's own errors in `stderr`).
NOT_JOBS: frozenset[str] = frozenset({"manager"})

#: Every field name the table listing must fetch to read any dialect.
ALIAS_SOURCES: tuple[str, ...] = (*FIELD_ALIASES, *VERDICT_FIELDS)

#: Fields that say a hash was written in another producer's dialect. Such
#: producers legitimately omit fields our contract requires (a user or a
#: creation time that their index holds, or none at all): not damage.
DIALECT_MARKERS: frozenset[str] = frozenset({*ALIAS_SOURCES, *(n for n, _ in OUTPUT_FIELDS)})
#: Required fields another dialect may omit.
OPTIONAL_IN_DIALECTS: frozenset[str] = frozenset({"user_id", "created", "job_type", "command"})


def canonical(fields: dict[str, str]) -> dict[str, str]:
    """Our field names for a producer's: an alias fills a field only when ours is absent."""
    out = dict(fields)
    for alias, ours in FIELD_ALIASES.items():
        if alias in out and not out.get(ours):
            out[ours] = out[alias]
    for name in VERDICT_FIELDS:
        verdict = out.get(name, "").strip()
        if verdict:
            out["status"] = verdict
    return out


def split_children(text: str) -> list[str] | None:
    """Children written as a comma- or space-separated string of key names."""
    parts = [p for p in text.replace(",", " ").split() if p]
    return parts or None
