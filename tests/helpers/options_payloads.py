"""Hostile XNAT launch options as hypothesis strategies, and the property every parse must keep (`check`): never a
crash, never a mount outside the allowed roots. Used by tests/hub (the parser) and tests/hostile (the spawner).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from hub.user_options import DENIED_BIND_ROOTS, LaunchSpec, UserOptionsError, parse_user_options

ALLOWED = ("/data/xnat", "/srv/workspaces")


# Path pieces an attacker (or a confused path translation) would try.
SEGMENTS = st.sampled_from(
    [
        "", ".", "..", "data", "xnat", "data2", "xnat2", "srv", "workspaces", "etc", "proc", "sys", "dev", "boot",
        "root", "run", "var", "lib", "docker", "docker.sock", "shadow", "é", "ü", "\x00", "\n", " ", "~", "...",
        "%2e%2e", "\ud800", "a" * 300,
    ]
)
PATHS = st.one_of(
    st.lists(SEGMENTS, min_size=1, max_size=8).map(lambda s: "/" + "/".join(s)),
    st.lists(SEGMENTS, min_size=1, max_size=8).map("/".join),
    st.sampled_from(["/", "//etc", "/var/run/docker.sock", "/run/docker.sock", "/data/xnat/../../etc", "C:\\x"]),
    st.text(max_size=60),
)
# Plausible paths with hostile tails, so that generated mounts often get past the shape checks.
ROOTED_PATHS = st.tuples(
    st.sampled_from(["/data/xnat", "/srv/workspaces", "/data", "/srv", "/etc", "/data/xnat2", "", "/var/run"]),
    st.lists(SEGMENTS, max_size=4),
).map(lambda t: "/".join([t[0], *t[1]]))
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["2G", "512M", "-1G", "1e999", "NaN", "1", "0", "bind", "volume", "\x00"]),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
MOUNTS = st.fixed_dictionaries(
    {
        "source": st.one_of(ROOTED_PATHS, ROOTED_PATHS, PATHS, JSON_SCALARS),
        "target": st.one_of(ROOTED_PATHS, PATHS, JSON_SCALARS),
    },
    optional={
        "type": st.one_of(st.sampled_from(["bind", "bind", "volume", "tmpfs", "BIND", ""]), JSON_SCALARS),
        "read_only": st.one_of(st.booleans(), JSON_SCALARS),
    },
)
CONSTRAINTS = st.one_of(
    st.sampled_from(["node.role==manager", "node.labels.gpu!=no", "node.role=manager", "x!=y", "a==b==c", ""]),
    st.text(max_size=40),
    JSON_SCALARS,
)
TEMPLATES = st.fixed_dictionaries(
    {},
    optional={
        "container_spec": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "image": st.one_of(JSON_SCALARS, st.sampled_from(["busybox", "a/b:c", "UPPER", "x@sha256:1"])),
                    "command": st.one_of(JSON_SCALARS, st.text(max_size=40)),
                    "env": st.one_of(JSON, st.dictionaries(st.text(max_size=12), JSON_SCALARS, max_size=5)),
                    "labels": st.one_of(JSON, st.dictionaries(st.text(max_size=12), JSON_SCALARS, max_size=5)),
                    "mounts": st.one_of(JSON, st.lists(st.one_of(MOUNTS, JSON), max_size=6)),
                },
            ),
        ),
        "resources": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "cpu_limit": JSON_SCALARS,
                    "cpu_reservation": JSON_SCALARS,
                    "mem_limit": JSON_SCALARS,
                    "mem_reservation": JSON_SCALARS,
                    "generic_resources": st.one_of(JSON, st.dictionaries(st.text(max_size=8), JSON_SCALARS)),
                },
            ),
        ),
        "placement": st.one_of(
            JSON, st.fixed_dictionaries({}, optional={"constraints": st.one_of(JSON, st.lists(CONSTRAINTS))})
        ),
    },
)
PAYLOADS = st.one_of(JSON, st.fixed_dictionaries({"task_template": st.one_of(TEMPLATES, JSON)}))


def inside(path: str, root: str) -> bool:
    """Independent of the module's check: compare path components."""
    p, r = [s for s in path.split("/") if s], [s for s in root.split("/") if s]
    return p[: len(r)] == r


def bind_is_safe(source: str, allowed: tuple[str, ...]) -> bool:
    parts = source.split("/")
    if not source.startswith("/") or ".." in parts or "\x00" in source or parts[-1] == "docker.sock":
        return False
    if allowed:
        return any(inside(source, root) for root in allowed)
    return source.strip("/") != "" and not any(inside(source, root) for root in DENIED_BIND_ROOTS)


def check(payload: Any, allowed: tuple[str, ...]) -> None:
    try:
        spec = parse_user_options(payload, allowed_prefixes=allowed)
    except UserOptionsError as e:
        message = str(e)
        assert message and "Traceback" not in message and len(message) < 600
        return
    assert isinstance(spec, LaunchSpec)
    for mount in spec.mounts:
        assert mount.type in ("bind", "volume")
        assert mount.target.startswith("/") and ".." not in mount.target.split("/")
        assert isinstance(mount.read_only, bool)
        if mount.type == "bind":
            assert bind_is_safe(mount.source, allowed), mount
        else:
            assert "/" not in mount.source and mount.source not in ("", ".", "..")
    for value in (spec.cpu_limit, spec.cpu_reservation):
        assert value is None or 0 < value <= 1024
    for size in (spec.mem_limit, spec.mem_reservation):
        assert size is None or 0 < size <= 64 * 1024**4
    for amount in spec.generic_resources.values():
        assert (type(amount) is int and amount >= 0) or (type(amount) is str and amount)
    assert all(("==" in c) != ("!=" in c) for c in spec.constraints)
