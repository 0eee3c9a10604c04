"""The baseline hub of bench/bench_launch.py: this project's hub configuration, but with dockerspawner's plain
SwarmSpawner and a fixed image (no XNAT call before the spawn), set up to run the same notebook the same way."""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by JupyterHub
load_subconfig("/srv/jupyterhub_config.py")  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.spawner_class = "dockerspawner.SwarmSpawner"
c.SwarmSpawner.image = os.environ["BENCH_NOTEBOOK_IMAGE"]
c.SwarmSpawner.network_name = os.environ["JH_NETWORK"]
c.SwarmSpawner.extra_endpoint_spec = {"mode": "dnsrr"}
c.SwarmSpawner.environment = {"NB_UID": "1000", "NB_GID": "100", "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1"}
c.SwarmSpawner.extra_container_spec = {"user": "0"}
