"""The audit log: JSON lines, 0600 in a 0700 directory, append-only, never a secret."""

from __future__ import annotations

import json
import stat

from console.backend.audit import AuditLog
from console.backend.models import ActionResult, Outcome


def test_entries_are_json_lines_with_the_fields(tmp_path):
    log = AuditLog(tmp_path / "state" / "audit.log")
    log.record("stop", "alice/nb1", "ok", "stopped")
    log.result(ActionResult("restart", "bob", outcome=Outcome.FAILED, detail="spawn failed"))
    lines = (tmp_path / "state" / "audit.log").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert {"time", "action", "target", "outcome", "detail"} <= set(first)
    assert (first["action"], first["target"], first["outcome"]) == ("stop", "alice/nb1", "ok")
    assert (second["action"], second["outcome"], second["detail"]) == ("restart", "failed", "spawn failed")


def test_file_is_private_and_append_only(tmp_path):
    path = tmp_path / "d" / "audit.log"
    AuditLog(path).record("deploy", "xnat-jupyterhub", "ok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)  # someone loosened it: the next write tightens it again
    AuditLog(path).record("stop", "xnat-jupyterhub", "refused", "read-only")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(AuditLog(path).entries()) == 2


def test_secrets_are_scrubbed(tmp_path):
    log = AuditLog(tmp_path / "audit.log", secrets=["tok-abc123", "pw-xyz"])
    log.record("stop", "alice", "failed", "hub said: bad token tok-abc123 and pw-xyz")
    text = (tmp_path / "audit.log").read_text()
    assert "tok-abc123" not in text and "pw-xyz" not in text and "<redacted>" in text
