#!/bin/sh
# pip install inside an image build, from one of two sources (build arg PIP_SOURCE):
#   wheels: only the wheels in /tmp/build/wheels, no network (scripts/build-images.sh downloads them on the host);
#   index:  the package index; a CA bundle at /tmp/build/ca-bundle.crt is trusted for it (TLS-inspecting proxies).
# Usage: pip-install.sh VENV PIP-INSTALL-ARGS...
set -eu
venv=$1
shift
case "${PIP_SOURCE:-index}" in
    wheels)
        if ! ls /tmp/build/wheels/*.whl >/dev/null 2>&1; then
            echo "PIP_SOURCE=wheels but deploy/build/wheels/ holds no wheels: run scripts/build-images.sh" >&2
            exit 1
        fi
        set -- --no-index --find-links /tmp/build/wheels "$@"
        ;;
    index)
        if [ -f /tmp/build/ca-bundle.crt ]; then
            export PIP_CERT=/tmp/build/ca-bundle.crt
        fi
        ;;
    *)
        echo "PIP_SOURCE must be wheels or index, got '${PIP_SOURCE}'" >&2
        exit 1
        ;;
esac
exec "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check --no-warn-script-location "$@"
