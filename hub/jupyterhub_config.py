"""JupyterHub for XNAT on Docker Swarm: `jupyterhub -f hub/jupyterhub_config.py`.

This file only wires the `hub` package together. Every option is read from the environment (docs/hub-config.md
lists them all); `jupyterhub --help-all` documents the XnatAuthenticator and XnatClient options. A bad value stops
the hub at startup with one clear line on stderr and exit status 1.
"""

import logging
import os
import sys

from traitlets import TraitError

from hub import roles, state
from hub.auth import XnatAuthenticator
from hub.settings import SettingsError, check_environment, env_int_at_least, env_secret, env_str, env_url
from hub.spawner import XnatSwarmSpawner
from hub.xnat import XnatClient

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by JupyterHub when it loads this file
log = logging.getLogger("JupyterHub")

try:
    # XNAT's plugin and the reverse proxy expect the hub under /jupyterhub; notebook services reach the hub by the
    # stack's service name on the overlay network.
    c.JupyterHub.bind_url = "http://:8000/jupyterhub"
    c.JupyterHub.hub_bind_url = "http://:8081"
    c.JupyterHub.hub_connect_url = env_url("JH_HUB_CONNECT_URL", "http://jupyterhub:8081")
    # Every XNAT launch is a named server (named after its event-tracking id); XNAT enforces the limit itself.
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.shutdown_on_logout = True
    # A hub that stops (update, node restart) leaves the notebook services running; the next hub picks them up
    # from the database on the volume. JupyterHub's default would stop them all.
    c.JupyterHub.cleanup_servers = False
    # XNAT's plugin lists users with GET /users and no pagination header; JupyterHub then answers at most
    # api_page_max_limit users (200 by default) and drops the rest silently, so XNAT's cullers never see them.
    # Paginated clients (the console, the admin page) ask for their own page size and are not affected.
    c.JupyterHub.api_page_max_limit = env_int_at_least("JH_API_PAGE_MAX_LIMIT", 10000, 200)
    # A class presses "Start" in the same minute; a spawn over the limit gets 429, which XNAT shows as a failed
    # launch. Swarm queues what it cannot place, so the limit only guards the hub.
    c.JupyterHub.concurrent_spawn_limit = env_int_at_least("JH_CONCURRENT_SPAWN_LIMIT", 100, 0)

    c.JupyterHub.authenticator_class = "hub.auth.XnatAuthenticator"
    c.JupyterHub.spawner_class = "hub.spawner.XnatSwarmSpawner"
    c.JupyterHub.template_paths = [os.path.join(os.path.dirname(os.path.abspath(state.__file__)), "templates")]

    # State on a volume, so a restart keeps users and running servers.
    data_dir = state.prepare_data_dir(env_str("JH_DATA_DIR", state.DEFAULT_DATA_DIR))
    # On several nodes (docker-stack.postgres.yml): a database URL and a cookie secret from Docker secrets, so a
    # hub rescheduled on another manager keeps its users, servers and browser sessions.
    c.JupyterHub.db_url = env_secret("JH_DB_URL") or state.sqlite_url(data_dir)
    shared_cookie_secret = env_secret("JH_COOKIE_SECRET")
    if shared_cookie_secret is not None:
        c.JupyterHub.cookie_secret = state.cookie_secret(shared_cookie_secret)
    else:
        c.JupyterHub.cookie_secret_file = state.prepare_cookie_secret(data_dir)

    c.JupyterHub.services, c.JupyterHub.load_roles = roles.services_and_roles(log)

    # Read every variable now: a bad value stops the hub here, not at the first login or spawn.
    check_environment(XnatAuthenticator, XnatSwarmSpawner)
    XnatClient.check_environment()
    if not XnatClient().url:
        raise SettingsError("JH_XNAT_URL is not set: the hub needs XNAT's URL, e.g. https://xnat.example.org")
except (SettingsError, TraitError) as e:
    print(f"[E jupyterhub_config] {e}", file=sys.stderr)
    raise SystemExit(1) from None
