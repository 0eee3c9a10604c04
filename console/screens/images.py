"""Notebook images onto every node before a class: the console's action behind `P` on the Nodes screen, `:images
[IMAGE...]` and the palette; the same backend calls as `xnat-jh-console images pull`.

It asks the backend for the plan first (the images: named, or those of the notebook services running now; the
nodes that may run notebooks), confirms it, then shows one row per node with each image's state as the pull goes,
and at the end which nodes hold each image. The backend's calls block: they run in thread workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable
from textual.worker import WorkerState

from console.backend.models import ActionResult, Outcome, PullPlan, PullUpdate
from console.formatting import STATE_STYLES
from console.screens.dialogs import ProgressScreen

if TYPE_CHECKING:
    from console.screens.base import ConsoleScreen

GROUP = "images"
NO_IMAGES = "No notebook service runs now, so there is no launch image to pull: name them, as :images IMAGE..."


class ImagePullScreen(ProgressScreen):
    """A pull's progress: a row per node, a column per image, and the steps below."""

    def __init__(self, plan: PullPlan) -> None:
        super().__init__(f"Pulling {_names(plan.images)} onto {len(plan.nodes)} node(s)")
        self.plan = plan
        self.states: dict[tuple[str, str], PullUpdate] = {}  # (node, image) -> its latest update

    def compose_above_log(self) -> ComposeResult:
        yield DataTable(id="pull-table", cursor_type="none", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#pull-table", DataTable)
        table.add_column("NODE", key="node")
        for image in self.plan.images:
            table.add_column(image, key=image)
        for node in self.plan.nodes:
            table.add_row(node, *(self._cell(node, image) for image in self.plan.images), key=node)
        # ProgressScreen's on_mount runs too (Textual calls each class's handler): it writes the lines so far

    def _cell(self, node: str, image: str) -> Text:
        update = self.states.get((node, image))
        if update is None:
            return Text("waiting", style="dim")
        style = STATE_STYLES.get(_shown_state(update.state), "")
        if update.state == "pulling" and update.percent is not None:
            return Text(f"pulling {update.percent:.0f}%", style=style)
        return Text(update.state, style=style)

    def update_pull(self, update: PullUpdate) -> None:
        """One node's step (on the app's thread)."""
        self.states[(update.node, update.image)] = update
        if update.state != "pulling" or update.percent is None:  # the table shows the percentages
            self.add_line(update.describe())
        if self.is_mounted and update.node in self.plan.nodes and update.image in self.plan.images:
            self.query_one("#pull-table", DataTable).update_cell(update.node, update.image,
                                                                 self._cell(update.node, update.image))

    def finish(self, result: ActionResult) -> None:
        for held in result.holders:
            self.add_line(f"{held.image}: on {', '.join(held.nodes) or 'no node'}")
        super().finish(result)


def _shown_state(state: str) -> str:
    """The pull's states in the words `state_cell` colours: held is good, a failure is bad."""
    return {"present": "ready", "pulled": "ready", "pulling": "pending", "unreachable": "failed"}.get(state, state)


def _names(images: tuple[str, ...]) -> str:
    return ", ".join(images) if len(images) <= 2 else f"{images[0]} and {len(images) - 1} more"


class ImagePulls:
    """The action, on the screen that hosts its workers (the Nodes screen)."""

    def __init__(self, screen: ConsoleScreen) -> None:
        self.screen = screen

    @property
    def busy(self) -> bool:
        """A pull is planned or under way: a second one would pull the same layers twice."""
        return any(
            worker.group == GROUP and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.screen.workers
        )

    def start(self, images: list[str]) -> None:
        app = self.screen.console_app
        if app.refuse_if_read_only(f"pull {', '.join(images) or 'the launch images'} onto the nodes"):
            return
        if self.busy:
            self.screen.notify("An image pull is under way already.", severity="warning")
            return
        self.screen.run_worker(lambda: self._plan(images), thread=True, group=GROUP, exit_on_error=False)

    def _plan(self, images: list[str]) -> None:
        call = self.screen.app.call_from_thread
        try:
            plan = self.screen.console_app.backend.pull_plan(images)
        except Exception as exc:  # a dead engine: say so, the console stays up
            call(self.screen.notify, f"Pull images: {exc or type(exc).__name__}", severity="error", timeout=10)
            return
        if not plan.images:
            call(self.screen.notify, NO_IMAGES, severity="warning", timeout=10)
        elif not plan.nodes:
            call(self.screen.notify, "No node may run notebooks (none is ready and active).", severity="error")
        else:
            call(self._confirm, plan)

    def _confirm(self, plan: PullPlan) -> None:
        body = "Onto every node that may run notebooks; a node that holds an image already is left alone."
        body += "".join(f"\n • {image}" for image in plan.images) + f"\nNodes: {', '.join(plan.nodes)}"
        self.screen.console_app.confirm(f"Pull {len(plan.images)} image(s) onto {len(plan.nodes)} node(s)?", body,
                                        lambda: self._open(plan), confirm_label="Pull")

    def _open(self, plan: PullPlan) -> None:
        progress = ImagePullScreen(plan)
        self.screen.app.push_screen(progress)
        self.screen.run_worker(lambda: self._pull(plan, progress), thread=True, group=GROUP, exit_on_error=False)

    def _pull(self, plan: PullPlan, progress: ImagePullScreen) -> None:
        call = self.screen.app.call_from_thread
        try:
            result = self.screen.console_app.backend.pull_images(
                list(plan.images), progress=lambda update: call(progress.update_pull, update))
        except Exception as exc:  # the backend reports failures as results; this is the last guard
            result = ActionResult("pull", ", ".join(plan.images), Outcome.FAILED, str(exc) or type(exc).__name__)
        call(self._finish, progress, result)

    def _finish(self, progress: ImagePullScreen, result: ActionResult) -> None:
        progress.finish(result)
        if result.ok:
            self.screen.notify(f"pulled {result.target}: {result.detail}", title="images")
        else:
            self.screen.notify(f"pull {result.outcome.value}: {result.detail}", title="images", severity="error",
                               timeout=10)
