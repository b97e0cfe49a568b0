"""Tolerant parsing, parameter validation, redaction and key names (no server)."""

from __future__ import annotations

import pytest

from gn_jobs_tui.core.jobtypes import ParamError, registry
from gn_jobs_tui.core.keys import Keys
from gn_jobs_tui.core.model import parse_job
from gn_jobs_tui.core.redact import redact_text, redact_url


def test_legacy_status_and_damage_are_tolerated() -> None:
    job = parse_job("j1", {b"job_id": b"j1", b"status": b"success", b"job_type": b"qc",
                           b"user_id": b"\xff\xfeuser", b"created": b"not-a-time",
                           b"children": b"[not json", b"command": b'["a"]'})
    assert job.status == "completed"
    assert job.raw_status == "success"
    assert "\ufffd" in job.user_id
    assert any("user_id: not UTF-8" in d for d in job.damage)
    assert any("created: not a number" in d for d in job.damage)
    assert any("children: not JSON" in d for d in job.damage)
    assert not job.children


@pytest.mark.parametrize("raw,expected", [("pending", "queued"), ("error", "failed"),
                                          ("aborted", "killed"), ("Weird", "weird"),
                                          ("", "unknown")])
def test_status_aliases(raw: str, expected: str) -> None:
    assert parse_job("x", {"status": raw}).status == expected


def test_missing_hash_is_damaged_not_raised() -> None:
    assert parse_job("gone", None).is_missing
    assert parse_job("gone", {}).is_damaged


def test_lost_needs_our_heartbeat_field() -> None:
    ours = parse_job("a", {"status": "running", "heartbeat": "2"}, heartbeat_alive=False)
    foreign = parse_job("b", {"status": "running"}, heartbeat_alive=False)
    assert ours.effective_status == "lost"
    assert foreign.effective_status == "running"


def test_params_validated_all_at_once() -> None:
    jt = registry().get("sleep")
    with pytest.raises(ParamError) as err:
        jt.validate({"seconds": "-1", "exit_code": "x", "bogus": "1"})
    assert set(err.value.problems) == {"seconds", "exit_code", "bogus"}
    assert jt.validate({"seconds": "1.5"}) == {"seconds": 1.5, "exit_code": 0}


def test_shell_metacharacters_stay_literal_argv() -> None:
    jt = registry().get("sleep")
    with pytest.raises(ParamError):
        jt.validate({"seconds": "1; rm -rf /"})
    argv = jt.argv(jt.validate({"seconds": "2"}))
    assert all(isinstance(a, str) for a in argv) and "--seconds" in argv


def test_unregistered_type_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown job type"):
        registry().get("rm")


def test_redaction() -> None:
    url = "redis://admin:s3cr3t@db.example:6379/0"
    assert "s3cr3t" not in redact_url(url)
    assert redact_url(url) == "redis://admin:***@db.example:6379/0"
    assert redact_url("redis://:pw@h") == "redis://:***@h"
    assert "pw" not in redact_url("unix:///tmp/s.sock?password=pw")
    assert redact_text("auth failed for s3cr3t", url) == "auth failed for ***"


def test_key_names_follow_the_contract() -> None:
    k = Keys("gn-uploader")
    assert k.job("abc") == "gn-uploader:jobs:abc"
    assert k.user_jobs("u1") == "gn-uploader:users:u1:jobs"
    assert k.child("abc", 3) == "gn-uploader:jobs:abc:children:3"
    assert k.job_id_of("gn-uploader:jobs:abc") == "abc"
    assert k.job_id_of("gn-uploader:jobs:abc:children:3") is None
    assert k.user_of("gn-uploader:users:u1:jobs") == "u1"
