#!/usr/bin/env bash
# The static checks, over the whole repository, each with zero findings allowed. scripts/test.sh runs this before
# pytest; run it alone for a quick answer. Rule sets, strictness and import contracts: pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
run() {
    printf -- '--> %s\n' "$*"
    "$@" || rc=1
}
run .venv/bin/ruff check --no-cache .
run .venv/bin/mypy
run .venv/bin/lint-imports --no-cache
if [ "$rc" -ne 0 ]; then
    echo "static checks found problems (above)" >&2
fi
exit "$rc"
