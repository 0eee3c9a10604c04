"""What the test areas and bench/ share, in one place instead of copies or imports between test modules.

- `waiting`: `free_port`, `wait_for` (poll a condition to a deadline).
- `spawner`: `make_spawner`, the `xnat` fixture and the Docker fixtures of the spawner tests.
- `real_hub`: a real `jupyterhub` process with XnatSwarmSpawner (`run_real_hub`, the `real_hub` fixture).
- `console_backend`: the console backend's fixtures (a throwaway local hub, Docker services of our own).
- `options_payloads`: hypothesis strategies for hostile XNAT launch options, and the property they must keep.
- `live`: the live demo stack under names of its own (`bring_up_demo`, `LiveStack`, `xnat_launch`, `login`).
- `fault_stack`: the fault/secrets/hostile runs' live stack, shared within one process.
- `node2`, `secrets_stack`: the two-node swarm's and the secrets tests' fixtures.

tests/conftest.py registers the fixture modules as pytest plugins, so a test asks for a fixture by name and never
imports it.
"""
