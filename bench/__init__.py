"""The speed figures. Run each as a module from the repository root (`.venv/bin/python -m bench.bench_login`), so
that it imports the tests' shared harness (`tests.helpers`) by name."""
