"""The deploy pre-flight's registry check (console/backend/registry.py): which images name a registry, and what the
check says for each answer of the engine's distribution API. The live check against a real registry is in
tests/multinode."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest
import requests

from console.backend import registry


@pytest.mark.parametrize(("image", "expected"), [
    ("xnat-jupyterhub/hub:dev", None),
    ("hub:dev", None),
    ("ubuntu", None),
    ("registry.example.org/hub:dev", "registry.example.org"),
    ("10.98.0.1:5000/hub:xjc", "10.98.0.1:5000"),
    ("localhost/hub", "localhost"),
    ("localhost:5000/team/hub@sha256:" + "0" * 64, "localhost:5000"),
])
def test_registry_of_follows_dockers_rule(image, expected):
    assert registry.registry_of(image) == expected


class _Images:
    def __init__(self, error: Exception | None):
        self.error = error
        self.asked: list[str] = []

    def get_registry_data(self, image: str):
        self.asked.append(image)
        if self.error:
            raise self.error
        return object()


class _Client:
    """Stands in for docker.DockerClient: only `images.get_registry_data`."""

    def __init__(self, error: Exception | None = None):
        self.images = _Images(error)


def fake_client(error: Exception | None = None) -> Any:
    return _Client(error)


def test_an_image_the_registry_has_passes_and_is_asked_by_its_full_name():
    client: Any = _Client()
    assert registry.check_image(client, "10.98.0.1:5000/hub:xjc") is None
    assert client.images.asked == ["10.98.0.1:5000/hub:xjc"]


@pytest.mark.parametrize(("error", "says"), [
    (docker.errors.NotFound("manifest unknown"), "not in the registry reg.example:5000"),
    (docker.errors.APIError("x", explanation="Get https://reg.example:5000/v2/: x509: certificate signed by "
                                            "unknown authority"), "not trusted by this engine"),
    (docker.errors.APIError("x", explanation="unauthorized: authentication required"), "answered: unauthorized"),
    (requests.exceptions.ConnectionError("engine gone"), "cannot ask the registry reg.example:5000"),
])
def test_each_failure_is_one_clear_line(error, says):
    problem = registry.check_image(fake_client(error), "reg.example:5000/hub:dev")
    assert problem is not None and says in problem and "\n" not in problem


def test_an_image_without_a_registry_is_not_asked():
    with pytest.raises(ValueError):
        registry.check_image(fake_client(), "xnat-jupyterhub/hub:dev")
