"""The live backend and the fake that UI tests run on both implement the Backend interface, call for call."""

import inspect

import pytest

from console.backend.base import Backend
from console.backend.fake import FakeBackend
from console.backend.live import LiveBackend

INTERFACE = sorted(
    name for name, member in vars(Backend).items() if callable(member) and not name.startswith("_")
)


def test_interface_lists_what_the_screens_call():
    assert {"overview", "hub_servers", "restart_server", "xnat_check_in_hub_network", "aclose"} <= set(INTERFACE)


@pytest.mark.parametrize("implementation", [LiveBackend, FakeBackend], ids=["live", "fake"])
@pytest.mark.parametrize("name", INTERFACE)
def test_implementation_matches_interface(implementation, name):
    expected = inspect.signature(getattr(Backend, name))
    actual = inspect.signature(getattr(implementation, name))
    assert list(actual.parameters) == list(expected.parameters), f"{implementation.__name__}.{name}{actual}"
    for param in expected.parameters.values():
        assert actual.parameters[param.name].kind == param.kind
    is_async = inspect.iscoroutinefunction(getattr(Backend, name))
    assert inspect.iscoroutinefunction(getattr(implementation, name)) == is_async, (
        f"{implementation.__name__}.{name} must be {'async' if is_async else 'sync'}"
    )
