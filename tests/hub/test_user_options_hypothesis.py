"""Generated hostile launch options: parsing never crashes and never yields a mount outside the allowed roots.

The default run generates 1,000 whole payloads (500 checked without an allow-list, 500 with one) plus 300
well-shaped payloads with hostile mounts: about three seconds. XNATJH_HYPOTHESIS_EXAMPLES=N runs N examples of
each property instead (e.g. 5000 when hunting).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.options_payloads import ALLOWED, MOUNTS, PATHS, PAYLOADS, ROOTED_PATHS, check

_OVERRIDE = os.environ.get("XNATJH_HYPOTHESIS_EXAMPLES")


def fuzz(examples: int) -> settings:
    count = int(_OVERRIDE) if _OVERRIDE else examples
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz(500)
@given(PAYLOADS)
def test_hostile_payloads_without_allow_list(payload: Any) -> None:
    check(payload, ())


@fuzz(500)
@given(PAYLOADS)
def test_hostile_payloads_with_allow_list(payload: Any) -> None:
    check(payload, ALLOWED)


@fuzz(300)
@given(st.lists(MOUNTS, min_size=1, max_size=4), st.sampled_from([(), ALLOWED]))
def test_hostile_mounts(mounts: list[dict[str, Any]], allowed: tuple[str, ...]) -> None:
    """Well-shaped payloads whose only oddity is the mounts, so that the mount checks are reached every time."""
    check({"task_template": {"container_spec": {"image": "busybox", "mounts": mounts}}}, allowed)


@fuzz(300)
@given(
    st.one_of(ROOTED_PATHS, PATHS),
    st.sampled_from(["bind", "volume"]),
    st.booleans(),
    st.sampled_from([(), ALLOWED, ("/data",)]),
)
def test_hostile_bind_sources(source: str, kind: str, read_only: bool, allowed: tuple[str, ...]) -> None:
    """Only the source is hostile, so most examples reach the allow-list and deny-list decisions."""
    mount = {"source": source, "target": "/data/projects/P", "type": kind, "read_only": read_only}
    check({"task_template": {"container_spec": {"mounts": [mount]}}}, allowed)
