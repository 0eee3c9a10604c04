"""Issue 10's rule: no module of the hub, the console or their contract is over 450 lines unless its opening
docstring says why (a sentence naming its length, "... lines ...")."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 450
PACKAGES = ("hub", "console", "xjh_contract")


def test_long_modules_say_why():
    modules = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    assert len(modules) > 30  # the packages are where this test thinks they are
    unexplained = []
    for path in modules:
        text = path.read_text(encoding="utf-8")
        length = text.count("\n")
        if length > LIMIT and " lines" not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{path.relative_to(REPO)} ({length} lines)")
    assert not unexplained, "over 450 lines with no reason in the docstring: " + ", ".join(sorted(unexplained))
