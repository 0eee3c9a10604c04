"""Demo accounts for `python -m hub.standin --seed-demo` (and tests that want the same cast)."""

from __future__ import annotations

from .options import user_options
from .server import ADMIN_ROLE, SERVICE_ROLE, XnatStandin

SERVICE_ACCOUNT = "jupyterhub"
DEMO_IMAGE = "xnat-jupyterhub/singleuser:dev"

# Demo-only passwords, documented in the package docstring: this cast exists to be logged in as.
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("alice", "alice-password", ("Jupyter",)),
    ("Alice.Smith", "smith-password", ("Jupyter",)),
    ("bob", "bob-password", ()),
    ("admin", "admin-password", (ADMIN_ROLE,)),
)


def seed_demo(standin: XnatStandin, service_password: str, *, image: str = DEMO_IMAGE) -> None:
    """Add the demo users, the `jupyterhub` service account, and default-server options for the Jupyter users."""
    for name, password, roles in DEMO_USERS:
        standin.add_user(name, password, roles)
    standin.add_user(SERVICE_ACCOUNT, service_password, (SERVICE_ROLE,))
    for name, _, roles in DEMO_USERS:
        if "Jupyter" in roles:
            standin.set_user_options(name, "", user_options(name, "", image=image, cpu_reservation=0.0,
                                                            mem_reservation=None))
