"""Where an image comes from, for the deploy pre-flight: an image that names a registry
(`registry.example.org:5000/hub:dev`) is checked against that registry, through the manager's engine (its trust in
/etc/docker/certs.d and its credentials, as every node will pull it), not against the manager's local images."""

from __future__ import annotations

import docker
import docker.errors
import requests


def registry_of(image: str) -> str | None:
    """The registry an image reference names, or None for Docker Hub's short names (`xnat-jupyterhub/hub:dev`).

    Docker's rule: the first path part is a registry when the name has more than one part and that part holds a
    dot or a colon, or is `localhost`."""
    first, sep, _ = image.partition("/")
    if not sep:
        return None
    if "." in first or ":" in first or first == "localhost":
        return first
    return None


def check_image(client: docker.DockerClient, image: str) -> str | None:
    """None when the image's registry has it; else why not, in one line (never a credential)."""
    registry = registry_of(image)
    if registry is None:
        raise ValueError(f"{image} names no registry")
    try:
        client.images.get_registry_data(image)
    except docker.errors.NotFound:
        return f"not in the registry {registry}"
    except docker.errors.APIError as e:
        explanation = str(e.explanation or e)
        if "manifest unknown" in explanation or "not found" in explanation:
            return f"not in the registry {registry}"
        if "certificate" in explanation or "x509" in explanation:
            return f"the registry {registry} is not trusted by this engine (its CA in /etc/docker/certs.d/{registry}/)"
        return f"the registry {registry} answered: {explanation[:200]}"
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        return f"cannot ask the registry {registry}: {str(e)[:200]}"
    return None
