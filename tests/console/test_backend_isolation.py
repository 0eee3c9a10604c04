"""The backend is plain Python: importing every backend module (and the config and CLI modules) never pulls in
Textual. Run in a fresh interpreter so other tests' imports don't hide a leak."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import console.backend


def backend_modules() -> list[str]:
    names = [f"console.backend.{m.name}" for m in pkgutil.iter_modules(console.backend.__path__)]
    return [*sorted(names), "console.config", "console.cli"]


def test_backend_modules_are_found():
    names = backend_modules()
    for expected in ("hub", "docker", "live", "logbuffer", "audit", "xnat_check", "models", "base"):
        assert f"console.backend.{expected}" in names


def test_no_backend_module_imports_textual():
    code = (
        "import importlib, sys\n"
        f"for name in {backend_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "    leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "    assert not leaked, f'{name} imported {leaked[:3]}'\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
