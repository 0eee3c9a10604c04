"""JupyterHub extension for XNAT: authenticator, user-options translation and Swarm spawner."""

__version__ = "0.1.0"
