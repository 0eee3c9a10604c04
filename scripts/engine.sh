#!/usr/bin/env bash
# Placeholder until the deployment issue: the engine is not needed by the hub unit tests.
set -euo pipefail
exit 0
