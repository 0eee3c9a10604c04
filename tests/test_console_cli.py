import subprocess
import sys


def test_console_help_lists_scriptable_commands():
    out = subprocess.run(
        [sys.executable, "-m", "console", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("status", "servers", "services", "logs", "check", "deploy", "stop", "server"):
        assert command in out
