"""The one health rule, as a table: check results -> the state the TUI's top bar and `status` both show."""

from __future__ import annotations

import argparse
import json

import pytest

from console.backend.fake import FakeBackend
from console.backend.health import hub_health, xnat_health
from console.backend.models import CheckStatus, CheckStep, Health, HubInfo
from console.cli import cmd_status
from console.config import ConsoleConfig

P, F, W, S = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.SKIP


def steps(*pairs: tuple[str, CheckStatus]) -> list[CheckStep]:
    return [CheckStep(name, status, f"{name} says {status.value}") for name, status in pairs]


ALL_PASS = [("DNS", P), ("TCP", P), ("TLS", P), ("HTTP", P), ("service account", P), ("JupyterHub plugin", P)]

XNAT_TABLE = [
    ("no steps", [], Health.UNKNOWN, "not checked"),
    ("all pass", ALL_PASS, Health.OK, "6 checks passed"),
    ("passes and skips", [*ALL_PASS, ("archive root", S)], Health.OK, "6 checks passed, 1 skipped"),
    ("warnings only", [*ALL_PASS, ("archive root", W)], Health.DEGRADED, "archive root: archive root says warn"),
    ("no URL configured", [("configuration", F), ("DNS", S)], Health.DOWN, "configuration:"),
    ("DNS fails", [("DNS", F), ("TCP", S)], Health.DOWN, "DNS:"),
    ("TCP fails, named with its address", [("DNS xnat", P), ("TCP 10.0.0.5:443", F)], Health.DOWN, "TCP 10.0.0.5"),
    ("TLS fails", [("DNS", P), ("TCP", P), ("TLS", F)], Health.DOWN, "TLS:"),
    ("HTTP fails", [("DNS", P), ("TCP", P), ("TLS", P), ("HTTP", F)], Health.DOWN, "HTTP:"),
    ("reached, service account fails", [*ALL_PASS[:4], ("service account", F)], Health.DEGRADED, "service account:"),
    ("a failure beats a warning in the detail", [*ALL_PASS, ("hub token", W), ("hub API URL", F)], Health.DEGRADED,
     "hub API URL:"),
    ("the hub network's half is not judged", [*ALL_PASS, ("DNS (hub network)", F)], Health.OK, "6 checks passed"),
]


@pytest.mark.parametrize(("results", "expected", "detail"), [row[1:] for row in XNAT_TABLE],
                         ids=[row[0] for row in XNAT_TABLE])
def test_xnat_health_table(results, expected, detail):
    component = xnat_health(steps(*results))
    assert (component.name, component.health) == ("xnat", expected)
    assert component.detail.startswith(detail)


HUB_TABLE = [
    ("healthy", HubInfo("5.5.1", Health.OK), Health.OK),
    ("health endpoint failing", HubInfo("5.5.1", Health.DEGRADED), Health.DEGRADED),
    ("token lacks a scope", HubInfo("5.5.1", Health.OK, missing_scopes=("proxy",)), Health.DEGRADED),
    ("failing and lacking", HubInfo("5.5.1", Health.DOWN, missing_scopes=("proxy",)), Health.DOWN),
    ("excess scopes are said, not degraded", HubInfo("5.5.1", Health.OK, excess_scopes=("admin:users",)), Health.OK),
]


@pytest.mark.parametrize(("info", "expected"), [row[1:] for row in HUB_TABLE], ids=[row[0] for row in HUB_TABLE])
def test_hub_health_table(info, expected):
    assert hub_health(info).health == expected


class Scripted(FakeBackend):
    """A fake whose XNAT check answers with the given results."""

    def __init__(self, results: list[tuple[str, CheckStatus]]) -> None:
        super().__init__()
        self.results = results

    async def xnat_check(self):
        for step in steps(*self.results):
            yield step


DISAGREED = [  # the cases where the TUI and `status` used to disagree
    ("warnings only", [*ALL_PASS, ("archive root", W)], Health.DEGRADED),
    ("a failed configuration step", [("configuration", F), ("DNS", S)], Health.DOWN),
]


@pytest.mark.parametrize(("results", "expected"), [row[1:] for row in DISAGREED], ids=[row[0] for row in DISAGREED])
async def test_tui_and_status_show_the_same_xnat_health(make_app, wait_for, capsys, results, expected):
    app = make_app(Scripted(results))
    async with app.run_test() as pilot:
        xnat = lambda: next(c for c in app.components if c.name == "xnat")  # noqa: E731
        await wait_for(pilot, lambda: xnat().health != Health.UNKNOWN, "the XNAT check")
        shown = xnat()
    args = argparse.Namespace(no_xnat=False, json=True)
    await cmd_status(Scripted(results), ConsoleConfig(token="t", xnat_url="http://xnat.invalid"), args)
    printed = next(c for c in json.loads(capsys.readouterr().out)["components"] if c["name"] == "xnat")
    assert (shown.health, printed["health"], printed["detail"]) == (expected, expected.value, shown.detail)
