"""The audit log: one JSON line per change the console made or refused (time, action, target, outcome, detail).

Append-only, created 0600 in a 0700 directory (default `$XDG_STATE_HOME/xnat-jh-console/audit.log`). Every
secret the console holds is scrubbed from the detail before it is written, so a token never lands here even if
an error message carried one.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.backend.models import REDACTED, ActionResult


class AuditLog:
    def __init__(self, path: str | os.PathLike[str], secrets: list[str] | tuple[str, ...] = ()):
        self.path = Path(path)
        self._secrets = [s for s in secrets if s]
        self._lock = threading.Lock()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def record(
        self, action: str, target: str, outcome: str, detail: str = "", user: str | None = None
    ) -> dict[str, Any]:
        """Append one entry; outcome is ok | failed | refused."""
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "action": action,
            "target": self._scrub(target),
            "outcome": outcome,
            "detail": self._scrub(detail),
            "operator": user or os.environ.get("USER", ""),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        return entry

    def result(self, result: ActionResult) -> ActionResult:
        """Record an ActionResult and hand it back."""
        self.record(result.action, result.target, result.outcome.value, result.detail)
        return result

    def entries(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
