"""The test suite. A package so that `tests.helpers` is importable by name from tests and bench/ alike."""
