"""Notebook images onto every node before a class: `xnat-jh-console images pull [IMAGE...]`.

XNAT's notebook images are often several GB. A node that lacks one pulls it when the first notebook lands there,
inside the plugin's 180 s, and often fails. This pulls them beforehand, on every node that may run notebooks
(ready and active: not drained or paused), each through its own engine: the console's engine for its own node,
`node_engines` (node id or hostname → Docker host) for the others. A node without a reachable engine is reported,
never skipped silently.

With no image named, the images are those XNAT's launches use *now*: the images of the deployment's notebook
services on the swarm (the hub labels each with its user). XNAT's compute environments are not read.

A node that holds an image already is left alone (no registry round trip: on a site without a registry, a local
image would otherwise "fail" to pull). Blocking docker SDK calls: run from a thread worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from console.backend import docker_sdk
from console.backend.docker import DockerAccess, DockerUnavailable, Endpoint
from console.backend.docker_endpoint import make_client
from console.backend.models import ActionResult, ImageHolders, Outcome, PullPlan, PullUpdate

if TYPE_CHECKING:  # imported by make_client with the first client (docker_sdk), as everywhere in the backend
    import docker

__all__ = ["PullPlan", "PullReport", "PullUpdate", "launch_images", "normalise", "plan", "pull", "pull_images"]
NO_LAUNCH_IMAGES = "no notebook service runs now, so no image to pull: name the images"


@dataclass(frozen=True)
class NodeEngine:
    node_id: str
    name: str  # what the report calls it: its hostname, with its id when another node has the same hostname
    url: str | None  # None: the console's own engine; "" when no engine is known for the node


@dataclass
class PullReport:
    holders: dict[str, list[str]] = field(default_factory=dict)  # image → names of the nodes that hold it
    problems: list[PullUpdate] = field(default_factory=list)  # failed or unreachable

    @property
    def ok(self) -> bool:
        return not self.problems


def normalise(image: str) -> str:
    """`name` → `name:latest`; a tag or digest is kept; a digest pinned on a tag (`name:tag@sha256:...`) keeps
    only the digest part, which is what the engine pulls."""
    name, at, digest = image.partition("@")
    if at:
        return f"{name.rsplit(':', 1)[0] if ':' in name.rsplit('/', 1)[-1] else name}@{digest}"
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


def launch_images(access: DockerAccess) -> list[str]:
    """The images of the deployment's notebook services (digests dropped), sorted."""
    return sorted({normalise(s.image.split("@")[0]) for s in access.services() if s.notebook_user and s.image})


def notebook_nodes(access: DockerAccess) -> list[NodeEngine]:
    """Every node that may run a notebook, with the engine that reaches it."""
    local = access.local_node_id()
    out = []
    for node in access.nodes():
        if node.state != "ready" or node.availability != "active":
            continue
        engines = access.node_engines
        url = None if node.id == local else engines.get(node.id) or engines.get(node.hostname, "")
        out.append(NodeEngine(node.id, node.hostname, url))
    # Engines cloned from one machine image (or in namespaces of one host) share a hostname: a report that
    # said "on node, node" would not say which nodes hold an image.
    shared = {n.name for n in out if sum(o.name == n.name for o in out) > 1}
    out = [NodeEngine(n.node_id, f"{n.name} ({n.node_id[:12]})", n.url) if n.name in shared else n for n in out]
    return sorted(out, key=lambda n: n.name)


def _sdk_errors() -> tuple[type[Exception], ...]:
    """The SDK's and its HTTP library's errors, for an `except` (evaluated only once a call has raised)."""
    docker_sdk.load()
    import docker.errors
    import requests

    return (docker.errors.DockerException, requests.exceptions.RequestException)


def _reason(error: Exception) -> str:
    import docker.errors  # loaded: an SDK call raised `error`

    if isinstance(error, docker.errors.APIError):
        return str(error.explanation or error)[:300]
    return f"{type(error).__name__}: {str(error)[:300]}"


def _held(api: docker.APIClient, image: str) -> bool:
    import docker.errors  # loaded by make_client, which made `api`

    try:
        api.inspect_image(image)  # type: ignore[no-untyped-call]  # unannotated in types-docker
        return True
    except docker.errors.ImageNotFound:
        return False


def _pull_on(api: docker.APIClient, node: str, image: str, say: Callable[[PullUpdate], None]) -> PullUpdate:
    """Pull one image through one engine, reporting layer progress now and then; the final update."""
    layers: dict[str, tuple[int, int]] = {}
    last_percent = -10.0
    try:
        if _held(api, image):
            return PullUpdate(image, node, "present")
        say(PullUpdate(image, node, "pulling"))
        for event in api.pull(image, stream=True, decode=True):
            if event.get("error"):
                return PullUpdate(image, node, "failed", detail=str(event["error"])[:300])
            detail = event.get("progressDetail") or {}
            if event.get("id") and detail.get("total"):
                layers[event["id"]] = (int(detail.get("current") or 0), int(detail["total"]))
            if layers:
                percent = 100.0 * sum(c for c, _ in layers.values()) / sum(t for _, t in layers.values())
                if percent - last_percent >= 10:
                    last_percent = percent
                    say(PullUpdate(image, node, "pulling", percent, f"({len(layers)} layers)"))
        if not _held(api, image):
            return PullUpdate(image, node, "failed", detail="the engine finished the pull but does not hold the image")
    except _sdk_errors() as e:
        return PullUpdate(image, node, "failed", detail=_reason(e))
    return PullUpdate(image, node, "pulled")


def pull_images(access: DockerAccess, images: list[str], say: Callable[[PullUpdate], None],
                *, timeout: float = 3600) -> PullReport:
    """Pull `images` onto every notebook node, the nodes in parallel, each node's images one after another.

    `say` gets every update (from worker threads, one at a time). Raises DockerUnavailable when the console's own
    engine cannot list the nodes.
    """
    images = [normalise(i) for i in images]
    nodes = notebook_nodes(access)
    report = PullReport(holders={image: [] for image in images})
    lock = threading.Lock()

    def tell(update: PullUpdate) -> None:
        with lock:
            if update.state in ("present", "pulled"):
                report.holders[update.image].append(update.node)
            elif update.state in ("failed", "unreachable"):
                report.problems.append(update)
            say(update)

    def on_node(node: NodeEngine) -> None:
        if node.url == "":
            for image in images:
                tell(PullUpdate(image, node.name, "unreachable", detail="no engine for it in node_engines"))
            return
        client = None
        # A pull makes a client at once: loading the SDK for its errors now costs nothing.
        failures: tuple[type[Exception], ...] = (DockerUnavailable, *_sdk_errors())
        try:
            # a client of its own, with a long timeout: an engine says nothing while it extracts a big layer
            endpoint = access.endpoint if node.url is None else Endpoint(node.url, source="node_engines")
            client = make_client(endpoint, timeout)
            for image in images:
                tell(_pull_on(client.api, node.name, image, tell))
        except failures as e:
            for image in images:  # the engine itself: no client for it
                tell(PullUpdate(image, node.name, "unreachable", detail=_reason(e)))
        finally:
            if client is not None:
                client.close()

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(nodes)))) as pool:
        list(pool.map(on_node, nodes))
    for holders in report.holders.values():
        holders.sort()
    return report


def plan(access: DockerAccess, images: list[str]) -> PullPlan:
    """The images (`images`, or the launch images when none is named) and the nodes a pull would reach."""
    wanted = [normalise(i) for i in images] if images else launch_images(access)
    return PullPlan(tuple(dict.fromkeys(wanted)), tuple(n.name for n in notebook_nodes(access)))


def pull(access: DockerAccess, images: list[str], say: Callable[[PullUpdate], None]) -> ActionResult:
    """`pull_images` as a typed result: ok when every node holds every image, failed naming what did not
    arrive, refused when there is nothing to pull. `holders` says which nodes hold each image."""
    try:
        wanted = list(plan(access, images).images)
    except DockerUnavailable as e:
        return ActionResult("pull", ", ".join(images) or "the launch images", Outcome.FAILED, str(e))
    target = ", ".join(wanted)
    if not wanted:
        return ActionResult("pull", "the launch images", Outcome.REFUSED, NO_LAUNCH_IMAGES)
    try:
        report = pull_images(access, wanted, say)
    except DockerUnavailable as e:
        return ActionResult("pull", target, Outcome.FAILED, str(e))
    holders = tuple(ImageHolders(image, tuple(nodes)) for image, nodes in report.holders.items())
    if report.ok:
        nodes = sorted({node for h in holders for node in h.nodes})
        detail = f"{len(wanted)} image(s) on {len(nodes)} node(s): {', '.join(nodes)}"
        return ActionResult("pull", target, Outcome.OK, detail, holders=holders)
    shown = "; ".join(p.describe() for p in report.problems[:3])
    more = f"; and {len(report.problems) - 3} more" if len(report.problems) > 3 else ""
    return ActionResult("pull", target, Outcome.FAILED, shown + more, holders=holders)
