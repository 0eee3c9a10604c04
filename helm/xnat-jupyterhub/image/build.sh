#!/usr/bin/env bash
# Builds the Kubernetes hub image with no registry, as scripts/build-images.sh builds the Swarm images: FROM the
# local Debian base (made with debootstrap if missing), pip installing only wheels downloaded here on the host.
# Cached: with nothing changed a re-run takes seconds.
#
# Usage: helm/xnat-jupyterhub/image/build.sh [IMAGE]   (default $XJH_K8S_HUB_IMAGE, else xnat-jupyterhub/k8s-hub:dev)
# Environment: XJH_BASE_IMAGE  FROM this image instead (e.g. debian:bookworm-slim where Docker Hub is reachable)
set -euo pipefail
cd "$(dirname "$0")/../../.."

image=${1:-${XJH_K8S_HUB_IMAGE:-xnat-jupyterhub/k8s-hub:dev}}
local_base=xnat-jupyterhub/debian-base:bookworm
base=${XJH_BASE_IMAGE:-$local_base}
requirements=helm/xnat-jupyterhub/image/requirements.txt
build_dir=deploy/build/k8s-hub
python=${XJH_PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3

say() { printf '  - %s\n' "$*"; }

if [ "$base" = "$local_base" ] && ! docker image inspect "$base" >/dev/null 2>&1; then
    scripts/build-images.sh --base-only
fi

# Wheels for Debian bookworm's python3 (3.11.2), downloaded again only when the pins change. Into a fresh
# directory, then renamed: a concurrent build never sees half a download.
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$build_dir/wheels.sha256" 2>/dev/null)" != "$want" ]; then
    say "downloading the pinned wheels for Python 3.11.2 into $build_dir/wheels"
    mkdir -p "$build_dir"
    tmp=$(mktemp -d "$build_dir/.wheels.XXXXXX")
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --dest "$tmp" \
        --python-version 3.11.2 --only-binary=:all: -r "$requirements" 2> >(grep -v '^WARNING: Location' >&2)
    rm -rf "$build_dir/wheels.old"
    [ -d "$build_dir/wheels" ] && mv "$build_dir/wheels" "$build_dir/wheels.old"
    mv "$tmp" "$build_dir/wheels"
    rm -rf "$build_dir/wheels.old"
    echo "$want" >"$build_dir/wheels.sha256"
fi

log=$(mktemp /var/tmp/xjh-k8s-hub-build.XXXXXX)
say "building $image (FROM $base, pip from wheels)"
# Debian's engine has no BuildKit client here: the classic builder, which every engine has.
if ! DOCKER_BUILDKIT=0 docker build --quiet -f helm/xnat-jupyterhub/image/Dockerfile -t "$image" \
        --build-arg BASE_IMAGE="$base" --build-arg PIP_SOURCE=wheels . >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "building $image failed; full log: $log" >&2
    exit 1
fi
rm -f "$log"
say "built $image"
