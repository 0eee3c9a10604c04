#!/usr/bin/env bash
# Makes sure a Docker engine answers and is a swarm manager, installing Debian's engine if none does.
# Also installs nginx (the tests run the real nginx as the reverse proxy) and what scripts/cluster.sh needs.
# Usage: scripts/engine.sh up | status
set -euo pipefail

say() { printf '  - %s\n' "$*"; }
log_dir=${XJH_STATE_DIR:-/var/tmp/xnat-jupyterhub}
mkdir -p "$log_dir"

apt_install() {
    if [ -z "${_apt_updated:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

engine_answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

ensure_engine() {
    if engine_answers; then
        say "Docker engine answers ($(docker info --format '{{.ServerVersion}}'))"
        return
    fi
    if ! command -v dockerd >/dev/null; then
        say "installing Debian's Docker engine (docker.io)"
        apt_install docker.io
    fi
    say "starting dockerd (log: $log_dir/dockerd.log)"
    # No init system here: run the daemon detached from this shell.
    setsid dockerd >"$log_dir/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        engine_answers && break
        sleep 0.5
    done
    engine_answers || { echo "dockerd did not answer within 30 s; see $log_dir/dockerd.log" >&2; exit 1; }
    say "Docker engine answers ($(docker info --format '{{.ServerVersion}}'))"
}

ensure_swarm() {
    local state
    state=$(docker info --format '{{.Swarm.LocalNodeState}}')
    if [ "$state" = "active" ]; then
        say "swarm is active"
        return
    fi
    say "docker swarm init"
    docker swarm init --advertise-addr "${XJH_ADVERTISE_ADDR:-127.0.0.1}" >/dev/null
}

ensure_tools() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v tmux >/dev/null || missing+=(tmux)
    # The multi-node tests' cluster (scripts/cluster.sh): Debian's distribution registry, and the tools that make
    # the nodes' namespaces and the registry's CA.
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v nsenter >/dev/null || missing+=(util-linux)
    command -v ip >/dev/null || missing+=(iproute2)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

case "${1:-up}" in
    up) ensure_tools; ensure_engine; ensure_swarm ;;
    status) engine_answers && docker info --format 'engine {{.ServerVersion}}, swarm {{.Swarm.LocalNodeState}}' ;;
    *) echo "usage: $0 up|status" >&2; exit 2 ;;
esac
