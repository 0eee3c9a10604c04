"""The console's backend: Docker, hub and XNAT clients with typed models.

Nothing under this package may import Textual (tests/console/test_backend_isolation.py proves it), so every
scriptable command and every screen share one implementation.
"""
