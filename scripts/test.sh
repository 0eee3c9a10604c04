#!/usr/bin/env bash
# Runs every test. Works on a fresh Debian machine: installs and starts what the tests need.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

say "Python environment (.venv)"
scripts/bootstrap-python.sh

say "Static checks (ruff, mypy, import-linter; configured in pyproject.toml)"
scripts/check.sh

say "Docker engine, swarm and nginx"
scripts/engine.sh up

say "pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
