#!/bin/sh
# Runs the hub as JH_UID:JH_GID when both are set, as the original image does. JH_GID is meant to be the gid that
# owns the Docker socket (the host's docker group), so the hub can create the notebook services.
set -eu

data_dir=$(pwd)
# A proxy pid file left in the volume by an earlier container names a process of that container, not of this one.
rm -f "$data_dir/jupyterhub-proxy.pid"

if [ -n "${JH_UID:-}" ] && [ -n "${JH_GID:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "JH_UID/JH_GID are set but the container does not run as root: cannot switch user" >&2
        exit 1
    fi
    getent group jupyterhub >/dev/null || groupadd --system --non-unique --gid "$JH_GID" jupyterhub
    getent passwd jupyterhub >/dev/null \
        || useradd --system --non-unique --uid "$JH_UID" --gid "$JH_GID" --home-dir /srv/jupyterhub \
               --shell /bin/sh jupyterhub
    # The database and cookie secret must stay readable by the hub only.
    chown -R "$JH_UID:$JH_GID" "$data_dir"
    exec gosu "$JH_UID:$JH_GID" "$@"
fi
exec "$@"
