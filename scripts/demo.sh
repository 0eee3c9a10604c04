#!/usr/bin/env bash
# The whole system on this machine, with an XNAT stand-in playing XNAT; then the operator's console.
#
#   scripts/demo.sh up     engine + swarm, images, stack, XNAT stand-in; prints URLs; opens the console
#   scripts/demo.sh down   removes everything `up` created, notebook services included
#
# Idempotent: `up` twice changes nothing the second time. Secrets are random, written 0600 under
# ${XDG_STATE_HOME:-~/.local/state}/xnat-jupyterhub/secrets/; nothing secret is printed.
# Environment (defaults): JH_PORT (8000), JH_NETWORK (jupyterhub-network), JH_STACK_NAME (xnat-jupyterhub),
# JH_SECRETS_PREFIX (xnat_jupyterhub), XJH_STANDIN_NAME (xnat-jupyterhub-standin), XJH_STANDIN_PORT (8090),
# XJH_STANDIN_CONTROL_PORT (8091), XDG_STATE_HOME, XDG_CONFIG_HOME, XJH_NO_CONSOLE=1 (don't open the console),
# XJH_SKIP_BOOTSTRAP=1 (keep .venv as it is: the tests run from it).
# The end-to-end tests run a second, separate demo this way.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

state_dir=${XDG_STATE_HOME:-$HOME/.local/state}/xnat-jupyterhub
secrets_dir=$state_dir/secrets
console_config=${XDG_CONFIG_HOME:-$HOME/.config}/xnat-jh-console/config.toml
python=$repo/.venv/bin/python

export JH_NETWORK=${JH_NETWORK:-jupyterhub-network}
export JH_PORT=${JH_PORT:-8000}
export JH_IMAGE=${JH_IMAGE:-xnat-jupyterhub/hub:dev}
export JH_STACK_NAME=${JH_STACK_NAME:-xnat-jupyterhub}
export JH_SECRETS_PREFIX=${JH_SECRETS_PREFIX:-xnat_jupyterhub}
standin_name=${XJH_STANDIN_NAME:-xnat-jupyterhub-standin}
standin_xnat_port=${XJH_STANDIN_PORT:-8090}
standin_control_port=${XJH_STANDIN_CONTROL_PORT:-8091}
# The hub reaches the stand-in by its container name on the overlay network, as it would reach a real XNAT.
export JH_XNAT_URL=http://$standin_name:8080
export JH_XNAT_USERNAME=jupyterhub
# The hub runs as uid 1000 in the Docker socket's group; notebooks as jovyan (1000:100), as the original image.
export JH_UID=${JH_UID:-1000}
export NB_UID=${NB_UID:-1000}
export NB_GID=${NB_GID:-100}

step() { printf '\n==> %s\n' "$*"; }
stack() { "$python" -m console.backend.stack "$@"; }

up() {
    if [ -z "${XJH_SKIP_BOOTSTRAP:-}" ] || [ ! -x "$python" ]; then
        step "Python environment (.venv)"
        scripts/bootstrap-python.sh
    fi

    step "Docker engine and swarm"
    scripts/engine.sh up
    JH_GID=${JH_GID:-$(stat -c %g /var/run/docker.sock)}
    export JH_GID

    step "Images (local base image, wheels downloaded here, hub and single-user images)"
    scripts/build-images.sh

    step "Secrets (random, 0600, in $secrets_dir)"
    stack secrets --dir "$secrets_dir" | sed 's/^/  - /'
    echo "  - $(ls "$secrets_dir" | wc -l) secret files present"

    # The stack's variables (no secrets), so the console's deploy later uses the same ones.
    mkdir -p "$state_dir"
    env | grep -E '^(JH_(XNAT_URL|XNAT_USERNAME|IMAGE|NETWORK|PORT|STACK_NAME|SECRETS_PREFIX|UID|GID|MOUNT_ALLOWED_PREFIXES)|NB_UID|NB_GID)=' \
        | sort >"$state_dir/stack.env"

    step "Stack $JH_STACK_NAME (docker-stack.yml; Docker secrets created from those files)"
    stack deploy --secrets-dir "$secrets_dir" | sed 's/^/  - /'

    step "XNAT stand-in on network $JH_NETWORK"
    "$python" -m hub.standin.container up --name "$standin_name" --network "$JH_NETWORK" --image "$JH_IMAGE" \
        --xnat-port "$standin_xnat_port" \
        --control-port "$standin_control_port" --password-file "$secrets_dir/${JH_SECRETS_PREFIX}_xnat_password" \
        | sed 's/^/  - /'

    step "XNAT's JupyterHub preferences, as XNAT's admin sets them: the hub's API URL and the hub's token for XNAT"
    set_standin_preferences

    step "Console configuration ($console_config)"
    write_console_config
    echo "  - written (0600)"

    cat <<EOF

The demo is up.
  JupyterHub          http://127.0.0.1:$JH_PORT/jupyterhub/      (log in as alice / alice-password,
                                                              Alice.Smith / smith-password; bob has no Jupyter role)
  Hub API             http://127.0.0.1:$JH_PORT/jupyterhub/hub/api
  XNAT stand-in       http://127.0.0.1:$standin_xnat_port  (control API http://127.0.0.1:$standin_control_port/_standin/)
  Tokens, passwords   $secrets_dir/  (XNAT's service token, the hub's XNAT password, the console's token)
  Console config      $console_config
  Console             .venv/bin/xnat-jh-console
  Stop everything     scripts/demo.sh down
EOF
    if [ -t 0 ] && [ -t 1 ] && [ -z "${XJH_NO_CONSOLE:-}" ]; then
        step "Opening the console (q quits; the demo keeps running)"
        # The hub reaches XNAT by its name on the overlay network; the console, on this host, by the published
        # port in its config file: don't let the stack's variables override that file.
        exec env -u JH_XNAT_URL -u JH_XNAT_USERNAME "$repo/.venv/bin/xnat-jh-console"
    fi
}

set_standin_preferences() {
    # XNAT, on the overlay network, reaches the hub through the host's published port, as XNAT's own compose
    # setup does (the host's address on Docker's default bridge).
    local gateway api_url
    gateway=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)
    api_url="http://${gateway:-172.17.0.1}:$JH_PORT/jupyterhub/hub/api"
    "$repo/.venv/bin/python" - "$standin_control_port" "$api_url" \
        "$secrets_dir/${JH_SECRETS_PREFIX}_xnat_service_token" <<'PY'
import json, sys, urllib.request
port, api_url, token_file = sys.argv[1:]
with open(token_file) as f:
    body = {"jupyterHubApiUrl": api_url, "jupyterHubToken": f.read().strip()}
request = urllib.request.Request(f"http://127.0.0.1:{port}/_standin/preferences", json.dumps(body).encode(),
                                 method="PUT", headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10).read()
PY
    echo "  - jupyterHubApiUrl = $api_url; jupyterHubToken = the xnat service's token"
}

write_console_config() {
    mkdir -p "$(dirname "$console_config")"
    (
        umask 077
        cat >"$console_config.tmp" <<EOF
# Written by scripts/demo.sh up: the demo's hub, its console token and the XNAT stand-in.
hub_url = "http://127.0.0.1:$JH_PORT/jupyterhub/hub/api"
token_file = "$secrets_dir/${JH_SECRETS_PREFIX}_console_token"
xnat_url = "http://127.0.0.1:$standin_xnat_port"
xnat_username = "jupyterhub"
xnat_password_file = "$secrets_dir/${JH_SECRETS_PREFIX}_xnat_password"
stack = "$JH_STACK_NAME"
network = "$JH_NETWORK"
EOF
    )
    mv "$console_config.tmp" "$console_config"
}

down() {
    if ! docker info >/dev/null 2>&1; then
        echo "No Docker engine answers: nothing of the demo can be running."
        return
    fi
    step "XNAT stand-in"
    "$python" -m hub.standin.container down --name "$standin_name" | sed 's/^/  - /'
    step "Servers, notebook services, stack, network, volume and secrets"
    local token_args=()
    [ -s "$secrets_dir/${JH_SECRETS_PREFIX}_console_token" ] \
        && token_args=(--token-file "$secrets_dir/${JH_SECRETS_PREFIX}_console_token")
    stack stop "${token_args[@]}" --remove-data --remove-secrets | sed 's/^/  - /'
    step "Files"
    rm -rf "$secrets_dir" "$state_dir/stack.env"
    echo "  - removed $secrets_dir and $state_dir/stack.env"
    if [ -f "$console_config" ] && grep -q '^# Written by scripts/demo.sh up' "$console_config"; then
        rm -f "$console_config"
        echo "  - removed $console_config"
    fi
    echo
    echo "The demo is down. Images are kept (scripts/build-images.sh reuses them); the engine keeps running."
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
