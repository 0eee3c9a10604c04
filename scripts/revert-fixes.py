#!/usr/bin/env python3
"""Shows that each defect test of issue 10 fails without its fix: reverts one fix at a time (in the working
tree, restored at once), runs the test that guards it, then runs it again with the fix.

    .venv/bin/python scripts/revert-fixes.py
"""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTATIONS = [
    (
        "a failed deploy shows as a success",
        "console/screens/deploy.py",
        "        if result.outcome is Outcome.OK:\n",
        "        if True:  # MUTATION: the old screen, success unless it raised\n",
        ["tests/console/test_ui.py::test_a_failed_deploy_shows_as_failed"],
    ),
    (
        "XNAT health: the CLI's own rule",
        "console/cli.py",
        "            overview_components.append(xnat_health(await xnat))\n",
        "            steps = await xnat  # MUTATION: the old CLI rule, warnings ok, any failure down\n"
        "            overview_components.append(ComponentHealth(\n"
        "                'xnat', Health.DOWN if any(s.status.value == 'fail' for s in steps) else Health.OK, ''))\n",
        ["tests/console/test_health_rule.py::test_tui_and_status_show_the_same_xnat_health"],
    ),
    (
        "q does not quit",
        "console/app.py",
        '        Binding("q", "quit", "Quit", id="quit_q", show=False),\n',
        "",
        ["tests/console/test_ui.py::test_q_quits_from_every_screen"],
    ),
    (
        "the XNAT check screen re-runs on its own service's events",
        "console/screens/xnat.py",
        "    def docker_changed(self) -> None:\n",
        "    def _docker_changed_removed(self) -> None:  # MUTATION\n",
        ["tests/console/test_ui.py::test_xnat_check_screen_finishes_with_its_hub_network_half"],
    ),
    (
        "the XNAT check screen without its hub-network half",
        "console/screens/xnat.py",
        "            self.steps.extend(await backend.xnat_check_in_hub_network())\n",
        "",
        ["tests/console/test_ui.py::test_xnat_check_screen_finishes_with_its_hub_network_half"],
    ),
]


def pytest(tests: list[str]) -> tuple[int, str]:
    done = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    last = [line for line in done.stdout.splitlines() if " failed" in line or " passed" in line][-1:]
    return done.returncode, "".join(last)


failures = 0
for name, path, old, new, tests in MUTATIONS:
    p = REPO / path
    original = p.read_text()
    assert original.count(old) == 1, (name, old)
    p.write_text(original.replace(old, new))
    try:
        reverted, summary = pytest(tests)
    finally:
        p.write_text(original)
    print(f"{name}: with the fix reverted -> {'fails' if reverted else 'STILL PASSES'} ({summary})")
    fixed, summary = pytest(tests)
    print(f"    with the fix -> {'passes' if fixed == 0 else 'FAILS'} ({summary})")
    failures += not reverted or fixed != 0
raise SystemExit(1 if failures else 0)
