"""xnat-jh-console: an operator's console for XNAT's JupyterHub on Docker Swarm."""

__version__ = "0.1.0"
