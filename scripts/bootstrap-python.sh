#!/usr/bin/env bash
# Creates .venv with the project and its test dependencies, and configurable-http-proxy for JupyterHub.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip_install() {
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2)
}
pip_install -e '.[test,dev,kubernetes]'
if ! command -v configurable-http-proxy >/dev/null; then
    npm install --global --silent configurable-http-proxy@5
fi
