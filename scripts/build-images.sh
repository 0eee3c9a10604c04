#!/usr/bin/env bash
# Builds the images with no registry: a local Debian base image (debootstrap + docker import), the Python
# wheels (downloaded on the host, which trusts the network's CA), then the hub and single-user images.
# Every step is cached: a re-run with nothing changed takes seconds.
#
# Usage: scripts/build-images.sh [--pip-source wheels|index] [--ca-bundle FILE] [--base-image IMAGE] [--base-only]
#                                [--postgres] [--push REGISTRY] [--no-build]
#   --pip-source wheels  (default) images install only the wheels downloaded here into deploy/build/wheels/
#   --pip-source index   images use the package index themselves; with --ca-bundle FILE they trust FILE
#                        (for TLS-inspecting proxies; default when given: none)
#   --base-image IMAGE   FROM image (default: the local xnat-jupyterhub/debian-base:bookworm, made if missing;
#                        a production build would use debian:bookworm-slim)
#   --base-only          only make the local base image (helm/xnat-jupyterhub/image/build.sh builds on it)
#   --postgres           also the PostgreSQL image of docker-stack.postgres.yml (deploy/postgres/Dockerfile)
#   --push REGISTRY      then tag each image REGISTRY/NAME:TAG (xnat-jupyterhub/hub:dev -> REGISTRY/hub:dev) and
#                        push it, so every node of a swarm pulls it; the engine must trust REGISTRY's CA
#                        (/etc/docker/certs.d/REGISTRY/ca.crt)
#   --no-build           only push (images already built)
# Environment: XJH_HUB_IMAGE, XJH_SINGLEUSER_IMAGE, XJH_POSTGRES_IMAGE, XJH_DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."

local_base=xnat-jupyterhub/debian-base:bookworm
base_image=$local_base
pip_source=wheels
ca_bundle=
base_only=
hub_image=${XJH_HUB_IMAGE:-xnat-jupyterhub/hub:dev}
singleuser_image=${XJH_SINGLEUSER_IMAGE:-xnat-jupyterhub/singleuser:dev}
postgres_image=${XJH_POSTGRES_IMAGE:-xnat-jupyterhub/postgres:dev}
postgres=
push_to=
no_build=
mirror=${XJH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
build_dir=deploy/build
wheel_dir=$build_dir/wheels

while [ $# -gt 0 ]; do
    case "$1" in
        --pip-source) pip_source=${2:?--pip-source needs wheels or index}; shift 2 ;;
        --ca-bundle) ca_bundle=${2:?--ca-bundle needs a file}; shift 2 ;;
        --base-image) base_image=${2:?--base-image needs an image}; shift 2 ;;
        --base-only) base_only=1; shift ;;
        --postgres) postgres=1; shift ;;
        --push) push_to=${2:?--push needs a registry, e.g. registry.example.org:5000}; shift 2 ;;
        --no-build) no_build=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$pip_source" in wheels|index) ;; *) echo "--pip-source must be wheels or index" >&2; exit 2 ;; esac

say() { printf '  - %s\n' "$*"; }
seconds() { echo $((SECONDS - $1))s; }

ensure_local_base() {
    if docker image inspect "$local_base" >/dev/null 2>&1; then
        say "base image $local_base present"
        return
    fi
    command -v debootstrap >/dev/null || { echo "debootstrap is needed to make $local_base (apt-get install debootstrap)" >&2; exit 1; }
    local t=$SECONDS rootfs
    rootfs=$(mktemp -d /var/tmp/xjh-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' RETURN
    say "making $local_base: debootstrap --variant=minbase bookworm ($mirror)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; echo "debootstrap failed; full log: $rootfs.log" >&2; exit 1; }
    # Security and point-release updates, as in Debian's own images.
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs.log"
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - "$local_base" >/dev/null
    say "made $local_base in $(seconds $t)"
}

# Wheels for Debian bookworm's python3 (3.11.2), downloaded once per requirements change.
ensure_wheels() {
    local stamp=$build_dir/wheels.sha256 want
    want=$(cat deploy/hub-requirements.txt deploy/singleuser-requirements.txt | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "wheels in $wheel_dir up to date ($(ls "$wheel_dir"/*.whl | wc -l) files)"
        return
    fi
    local t=$SECONDS
    say "downloading wheels for Python 3.11.2 into $wheel_dir"
    mkdir -p "$wheel_dir"
    rm -f "$wheel_dir"/*.whl
    # setuptools: the build backend of our own package, installed inside the image with no index.
    "$python" -m pip download --quiet --disable-pip-version-check --dest "$wheel_dir" \
        --python-version 3.11.2 --only-binary=:all: \
        -r deploy/hub-requirements.txt -r deploy/singleuser-requirements.txt 'setuptools>=77' wheel \
        2> >(grep -v '^WARNING: Location' >&2)
    echo "$want" >"$stamp"
    say "downloaded $(ls "$wheel_dir"/*.whl | wc -l) wheels in $(seconds $t)"
}

build() {
    local image=$1 dockerfile=$2 t=$SECONDS log
    log=$(mktemp /var/tmp/xjh-build.XXXXXX)
    say "building $image ($dockerfile, FROM $base_image, pip from $pip_source)"
    # Debian's engine has no BuildKit client here: the classic builder, which every engine has.
    if ! DOCKER_BUILDKIT=0 docker build --quiet -f "$dockerfile" -t "$image" \
            --build-arg BASE_IMAGE="$base_image" --build-arg PIP_SOURCE="$pip_source" . >"$log" 2>&1; then
        tail -30 "$log" >&2
        echo "building $image failed; full log: $log" >&2
        exit 1
    fi
    rm -f "$log"
    say "built $image in $(seconds $t)"
}

python=${XJH_PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3

push() {  # push IMAGE to $push_to as REGISTRY/NAME:TAG, the name without its first path part
    local image=$1 target t=$SECONDS log
    target=$push_to/${image#*/}
    log=$(mktemp /var/tmp/xjh-push.XXXXXX)
    docker tag "$image" "$target"
    if ! docker push "$target" >"$log" 2>&1; then
        tail -10 "$log" >&2
        echo "pushing $target failed; full log: $log" >&2
        exit 1
    fi
    rm -f "$log"
    say "pushed $target in $(seconds $t)"
}

push_all() {  # in parallel: each push compresses its layers on one core
    local pids=() image pid failed=
    for image in "${images[@]}"; do push "$image" & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ -z "$failed" ] || exit 1
}

images=("$hub_image" "$singleuser_image")
[ -n "$postgres" ] && images+=("$postgres_image")
if [ -n "$no_build" ]; then
    [ -n "$push_to" ] || { echo "--no-build only makes sense with --push" >&2; exit 2; }
    push_all
    exit 0
fi

[ "$base_image" = "$local_base" ] && ensure_local_base
[ -n "$base_only" ] && exit 0
mkdir -p "$build_dir"
rm -f "$build_dir/ca-bundle.crt"
if [ "$pip_source" = wheels ]; then
    ensure_wheels
elif [ -n "$ca_bundle" ]; then
    [ -r "$ca_bundle" ] || { echo "--ca-bundle: cannot read $ca_bundle" >&2; exit 2; }
    cp "$ca_bundle" "$build_dir/ca-bundle.crt"
    say "images trust $ca_bundle for the package index"
fi
build "$hub_image" hub/Dockerfile
build "$singleuser_image" hub/singleuser/Dockerfile
[ -n "$postgres" ] && build "$postgres_image" deploy/postgres/Dockerfile
if [ -n "$push_to" ]; then push_all; fi
