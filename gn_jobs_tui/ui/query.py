"""The `/` filter: `user:alice type:qc status:failed host:node-a` plus free words.

`user:` and `status:` match exactly (statuses other producers write are read
as ours: `status:error` is `failed`), `type:` matches part of the type
(`type:qc` finds `qc-files`), `host:` the host or its domain name
(`host:node-a` finds `node-a.example.org`), `id:` the start of an id.
Tokens of one kind are alternatives (`status:failed status:lost`), kinds and
words must all hold; `-` before a token excludes (`-user:bot`). A free word
matches the id, type, user, status, host or message as a substring, or the
short id fuzzily (same first letter, the rest in order: `9cff` finds
`9c0ffee0`), so an id half-remembered from a page or a chat still finds its
job.

Matching runs over up to a million jobs in a worker thread, so it is plain
Python on attributes, with nothing built per job that is not needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gn_jobs_tui.core.model import normalise_status
from gn_jobs_tui.ui.rows import Row

KINDS = ("user", "type", "status", "host", "id")
# A free word is tried fuzzily on ids only if it looks like one: hex with a digit,
# so words such as "bad" or "cafe" match messages, not random ids.
_FUZZY = re.compile(r"^(?=[0-9a-f]*[0-9])[0-9a-f]{3,}$")


@dataclass(frozen=True)
class Term:
    kind: str  # one of KINDS, or "" for a free word
    value: str
    negate: bool = False


def fuzzy_id(needle: str, job_id: str) -> bool:
    """The short id starts with `needle`'s first letter and holds the rest in order."""
    if not needle or not job_id.startswith(needle[0]):
        return False
    it = iter(job_id[1:8])
    return all(ch in it for ch in needle[1:])


@dataclass(frozen=True)
class Query:
    """A parsed filter; `Query.parse(text)` never raises (bad tokens are words)."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Query:
        terms: list[Term] = []
        for raw in text.split():
            negate = raw.startswith("-") and len(raw) > 1
            token = raw[1:] if negate else raw
            kind, sep, value = token.partition(":")
            kind = kind.lower()
            if sep and kind in KINDS and value:
                if kind == "status":
                    value = normalise_status(value)
                terms.append(Term(kind, value.lower() if kind != "user" else value, negate))
            else:
                terms.append(Term("", token.lower(), negate))
        return cls(text.strip(), tuple(terms))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def values(self, kind: str) -> list[str]:
        return [t.value for t in self.terms if t.kind == kind and not t.negate]

    def matches(self, job: Row) -> bool:
        groups: dict[str, bool] = {}
        for term in self.terms:
            hit = _term_hits(term, job)
            if term.negate:
                if hit:
                    return False
                continue
            if term.kind:
                groups[term.kind] = groups.get(term.kind, False) or hit
            elif not hit:
                return False
        return all(groups.values())


def _term_hits(term: Term, job: Row) -> bool:
    kind, value = term.kind, term.value
    if kind == "user":
        return job.user_id == value
    if kind == "type":
        return value in job.job_type.lower()
    if kind == "status":
        return job.effective_status == value
    if kind == "host":
        host = (job.host or "").lower()
        return host == value or host.startswith(value + ".")  # node-a, node-a.example.org
    if kind == "id":
        return job.job_id.startswith(value) or fuzzy_id(value, job.job_id)
    summary = job.summary if job.summary != (job.message or "") else ""
    hay = f"{job.job_id} {job.job_type} {job.user_id} {job.effective_status} {job.host or ''} " \
          f"{job.message or ''} {summary}".lower()
    if value in hay:
        return True
    return bool(_FUZZY.match(value)) and fuzzy_id(value, job.job_id)
