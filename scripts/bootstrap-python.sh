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
# Helm's own chart linter, as a library (no helm binary is packaged for Debian or PyPI). The wheel declares
# Python 3.12 but its Go core does not care; tests/helm skip with a printed reason if it is missing.
pip_install --ignore-requires-python 'helm-sdkpy==0.1.32' || echo "helm-sdkpy unavailable: chart lint tests will skip" >&2
if ! command -v configurable-http-proxy >/dev/null; then
    npm install --global --silent configurable-http-proxy@5
fi
