"""What the hub writes and the console reads on the swarm, written once: the labels on notebook services and the
names of services. Both `hub` and `console` import it; it imports nothing, so neither package needs the other.
"""

from __future__ import annotations

# Set by hub/spawner.py on every notebook service it creates; the console joins hub servers to swarm services
# by them.
LABEL_USER = "org.xnat.jupyterhub.user"
LABEL_SERVER = "org.xnat.jupyterhub.server"
# Set by the console on things it creates itself (the one-off XNAT check service, demo secrets).
LABEL_CONSOLE = "org.xnat.jupyterhub.console"
LABEL_STACK = "org.xnat.jupyterhub.stack"
# Docker's own label naming a stack's services, networks and volumes.
LABEL_STACK_NAMESPACE = "com.docker.stack.namespace"

# dockerspawner's default name template (prefix `jupyter`): jupyter-USER, or jupyter-USER--SERVER.
NOTEBOOK_PREFIX = "jupyter-"
# The hub's service in docker-stack.yml; `docker stack deploy` names it STACK_jupyterhub.
HUB_SERVICE = "jupyterhub"
# The one-off service the console runs the XNAT check in, inside the hub's network.
CHECK_SERVICE_PREFIX = "xjc-xnat-check-"


def hub_service_name(stack: str) -> str:
    """The hub's swarm service in stack `stack`."""
    return f"{stack}_{HUB_SERVICE}"


def notebook_service_name(user: str, server: str = "") -> str:
    """dockerspawner's default service name for a user's server ("" is the default server)."""
    return f"{NOTEBOOK_PREFIX}{user}--{server}" if server else f"{NOTEBOOK_PREFIX}{user}"
