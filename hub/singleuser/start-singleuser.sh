#!/bin/sh
# Starts the notebook as NB_UID:NB_GID. Started as root with both set, it gives that uid/gid the image's user
# (so files written to XNAT's workspace and archive mounts belong to the site's XNAT uid/gid), then drops root.
set -eu

if [ "$(id -u)" = 0 ]; then
    if [ -z "${NB_UID:-}" ] || [ -z "${NB_GID:-}" ]; then
        echo "started as root without NB_UID and NB_GID: refusing to run the notebook as root" >&2
        exit 1
    fi
    getent group "$NB_GID" >/dev/null || groupadd --non-unique --gid "$NB_GID" notebook
    usermod --non-unique --uid "$NB_UID" --gid "$NB_GID" jovyan
    chown "$NB_UID:$NB_GID" /home/jovyan
    # XNAT names the notebook's root (its workspace mount); without that mount, start in an empty one.
    if [ -n "${JUPYTERHUB_ROOT_DIR:-}" ] && [ ! -d "$JUPYTERHUB_ROOT_DIR" ]; then
        mkdir -p "$JUPYTERHUB_ROOT_DIR"
        chown "$NB_UID:$NB_GID" "$JUPYTERHUB_ROOT_DIR"
    fi
    exec gosu "$NB_UID:$NB_GID" "$@"
fi
if [ -n "${JUPYTERHUB_ROOT_DIR:-}" ] && [ ! -d "$JUPYTERHUB_ROOT_DIR" ]; then
    mkdir -p "$JUPYTERHUB_ROOT_DIR" 2>/dev/null || export JUPYTERHUB_ROOT_DIR="$HOME"
fi
exec "$@"
