"""hub.user_options: XNAT's launch options into a LaunchSpec, field by field, and refusals with clear messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.user_options import (
    LaunchSpec,
    MountSpec,
    UserOptionsError,
    parse_allowed_prefixes,
    parse_memory,
    parse_user_options,
)

GiB = 1024**3
MiB = 1024**2


def spec_6_1_payload() -> dict[str, Any]:
    """The XnatUserOptions example of the integration spec (section 6.1), with XNAT's nulls."""
    return {
        "userId": 3,
        "servername": "20240615T101530123Z",
        "xsiType": "xnat:projectData",
        "itemId": "PRJ1",
        "projectId": "PRJ1",
        "eventTrackingId": "20240615T101530123Z",
        "task_template": {
            "container_spec": {
                "image": "xnat/datascience-notebook:latest",
                "command": None,
                "env": {
                    "XNAT_HOST": "https://xnat.example.org",
                    "XNAT_USER": "alias-token",
                    "XNAT_PASS": "alias-secret",
                    "XNAT_DATA": "/data",
                    "XNAT_XSI_TYPE": "xnat:projectData",
                    "XNAT_ITEM_ID": "PRJ1",
                    "JUPYTERHUB_ROOT_DIR": "/workspace/Alice.Smith",
                    "XDG_CONFIG_HOME": "/workspace/Alice.Smith",
                },
                "labels": {},
                "mounts": [
                    {
                        "target": "/workspace/Alice.Smith",
                        "source": "/data/xnat/workspaces/users/Alice.Smith",
                        "type": "bind",
                        "read_only": False,
                    },
                    {
                        "target": "/data/projects/PRJ1/experiments",
                        "source": "/data/xnat/archive/PRJ1/arc001",
                        "type": "bind",
                        "read_only": True,
                    },
                    {
                        "target": "/data/projects/PRJ1/resources",
                        "source": "/data/xnat/archive/PRJ1/resources",
                        "type": "bind",
                        "read_only": True,
                    },
                    {"target": "/opt/models", "source": "shared-models", "type": "volume", "read_only": True},
                ],
            },
            "resources": {
                "cpu_limit": 2.0,
                "cpu_reservation": 2.0,
                "mem_limit": "2G",
                "mem_reservation": "2G",
                "generic_resources": {"gpu": "1"},
            },
            "placement": {"constraints": ["node.role==manager", "node.labels.x!=y"]},
        },
    }


def with_field(section: str, key: str, value: Any) -> dict[str, Any]:
    payload = spec_6_1_payload()
    target = payload["task_template"]
    if section:
        target = target[section]
    target[key] = value
    return payload


def refused(payload: Any, match: str, **kwargs: Any) -> UserOptionsError:
    with pytest.raises(UserOptionsError, match=match) as info:
        parse_user_options(payload, **kwargs)
    return info.value


# -- the spec example, field by field --------------------------------------------------------------------------


def test_spec_example_parses_every_field() -> None:
    spec = parse_user_options(spec_6_1_payload())
    assert isinstance(spec, LaunchSpec)
    assert spec.image == "xnat/datascience-notebook:latest"
    assert spec.cmd == ()  # null command: the image's own
    assert spec.env["XNAT_PASS"] == "alias-secret"
    assert spec.env["JUPYTERHUB_ROOT_DIR"] == "/workspace/Alice.Smith"
    assert dict(spec.labels) == {}
    assert spec.mounts == (
        MountSpec("bind", "/data/xnat/workspaces/users/Alice.Smith", "/workspace/Alice.Smith", False),
        MountSpec("bind", "/data/xnat/archive/PRJ1/arc001", "/data/projects/PRJ1/experiments", True),
        MountSpec("bind", "/data/xnat/archive/PRJ1/resources", "/data/projects/PRJ1/resources", True),
        MountSpec("volume", "shared-models", "/opt/models", True),
    )
    assert spec.cpu_limit == 2.0 and spec.cpu_reservation == 2.0
    assert spec.mem_limit == 2 * GiB and spec.mem_reservation == 2 * GiB
    assert dict(spec.generic_resources) == {"gpu": 1}
    assert spec.constraints == ("node.role==manager", "node.labels.x!=y")


def test_spec_is_frozen() -> None:
    spec = parse_user_options(spec_6_1_payload())
    with pytest.raises(AttributeError):
        spec.image = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.env["XNAT_PASS"] = "changed"  # type: ignore[index]


def test_input_is_not_modified() -> None:
    payload = spec_6_1_payload()
    before = copy.deepcopy(payload)
    parse_user_options(payload)
    assert payload == before


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("panel serve app.py", ("panel", "serve", "app.py")),
        ('panel serve "my app.py" --args \'a b\'', ("panel", "serve", "my app.py", "--args", "a b")),
        ("voila  --port=8888   nb.ipynb", ("voila", "--port=8888", "nb.ipynb")),
        ("", ()),
        (None, ()),
    ],
)
def test_command_is_split_like_a_shell(command: str | None, expected: tuple[str, ...]) -> None:
    assert parse_user_options(with_field("container_spec", "command", command)).cmd == expected


def test_command_with_a_nul_is_refused() -> None:
    """A command may hold newlines and tabs (shell-like text), but never NUL, which Docker cannot pass on."""
    refused(with_field("container_spec", "command", "sleep\x00 1"), r"command contains control characters")
    assert parse_user_options(with_field("container_spec", "command", "sleep\t1\n")).cmd == ("sleep", "1")


def test_command_with_unclosed_quote_is_refused() -> None:
    refused(with_field("container_spec", "command", 'panel serve "app.py'), "split like a shell")


def test_labels_are_kept() -> None:
    payload = with_field("container_spec", "labels", {"org.example.project": "PRJ1", "tier": "gpu"})
    assert dict(parse_user_options(payload).labels) == {"org.example.project": "PRJ1", "tier": "gpu"}


def test_reserved_docker_label_is_refused() -> None:
    payload = with_field("container_spec", "labels", {"com.docker.stack.namespace": "xnat-jupyterhub"})
    refused(payload, "reserves")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2G", 2 * GiB),
        ("512M", 512 * MiB),
        ("512m", 512 * MiB),
        ("1.5G", int(1.5 * GiB)),
        ("4GiB", 4 * GiB),
        ("1024k", MiB),
        ("1T", 1024 * GiB),
        (" 64M ", 64 * MiB),
        (1073741824, GiB),
        ("1073741824", GiB),
        (None, None),
        (0, None),
        ("0", None),
    ],
)
def test_memory_sizes(value: Any, expected: int | None) -> None:
    assert parse_memory(value) == expected


@pytest.mark.parametrize("value", ["-1G", "2X", "G", "1e9", "2 G B", "∞", "١G",  # noqa: RUF001  (an Arabic-Indic digit on purpose: not a number to us)
     True, [], {}, float("nan"), -5])
def test_memory_garbage_is_refused(value: Any) -> None:
    with pytest.raises(UserOptionsError):
        parse_memory(value, "resources.mem_limit")


def test_memory_absurd_sizes_are_refused() -> None:
    refused(with_field("resources", "mem_limit", "99999999T"), "too large")
    refused(with_field("resources", "mem_limit", 10**400), "too large")
    refused(with_field("resources", "mem_limit", "1K"), "too small")


def test_reservation_above_limit_is_refused() -> None:
    payload = with_field("resources", "mem_reservation", "4G")
    refused(payload, "mem_reservation is more than")
    payload = with_field("resources", "cpu_reservation", 4.0)
    refused(payload, "cpu_reservation")


@pytest.mark.parametrize("value", [-1, -0.5, float("inf"), float("nan"), 1e9, 10**400, "2", True, [2]])
def test_cpu_garbage_is_refused(value: Any) -> None:
    refused(with_field("resources", "cpu_limit", value), "cpu_limit")


def test_cpu_zero_or_null_means_unset() -> None:
    payload = spec_6_1_payload()
    payload["task_template"]["resources"].update(cpu_limit=0, cpu_reservation=None)
    spec = parse_user_options(payload)
    assert spec.cpu_limit is None and spec.cpu_reservation is None


def test_missing_sections_mean_defaults() -> None:
    spec = parse_user_options({"task_template": {"container_spec": {"image": "busybox"}}})
    assert spec == LaunchSpec(image="busybox")
    spec = parse_user_options({"task_template": {"container_spec": None, "resources": None, "placement": None}})
    assert spec == LaunchSpec()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"gpu": "1"}, {"gpu": 1}),
        ({"gpu": 2}, {"gpu": 2}),
        ({"gpu": 2.0}, {"gpu": 2}),
        ({"gpu": "GPU-3f2a-uuid"}, {"gpu": "GPU-3f2a-uuid"}),
        ({"gpu": "1", "fpga": "board-7"}, {"gpu": 1, "fpga": "board-7"}),
        (None, {}),
    ],
)
def test_generic_resources_discrete_or_named(value: Any, expected: dict[str, Any]) -> None:
    spec = parse_user_options(with_field("resources", "generic_resources", value))
    assert dict(spec.generic_resources) == expected
    # the type decides what Docker gets: int -> DiscreteResourceSpec, str -> NamedResourceSpec
    assert {k: type(v) for k, v in spec.generic_resources.items()} == {k: type(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    "value",
    [{"gpu": -1}, {"gpu": True}, {"gpu": None}, {"gpu": 1.5}, {"gpu": ""}, {"": 1}, {"g pu": 1}, {"gpu": 10**12}, [1]],
)
def test_generic_resources_garbage_is_refused(value: Any) -> None:
    refused(with_field("resources", "generic_resources", value), "generic")


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("node.role==manager", "node.role==manager"),
        ("node.role == worker", "node.role==worker"),
        ("node.labels.gpu!=no", "node.labels.gpu!=no"),
        ("engine.labels.zone != eu-1", "engine.labels.zone!=eu-1"),
        ("node.hostname==nodé-1", "node.hostname==nodé-1"),
        ("node.platform.os==linux", "node.platform.os==linux"),
    ],
)
def test_constraints_including_not_equal(constraint: str, expected: str) -> None:
    spec = parse_user_options(with_field("placement", "constraints", [constraint]))
    assert spec.constraints == (expected,)


@pytest.mark.parametrize(
    "constraint",
    [
        "node.role=manager",
        "node.role",
        "==manager",
        "node.role==",
        "node.role<=manager",
        "host.name==x",
        "node.labels.==x",
        "node.labels.a==b==c",
        "node.role==a\nnode.role==b",
        "node.role==\x00",
        42,
        None,
    ],
)
def test_malformed_constraints_are_refused(constraint: Any) -> None:
    refused(with_field("placement", "constraints", [constraint]), "constraint")


def test_constraints_must_be_a_list() -> None:
    refused(with_field("placement", "constraints", "node.role==manager"), "must be a JSON array")


# -- mounts ------------------------------------------------------------------------------------------------------


def one_mount(**mount: Any) -> dict[str, Any]:
    return with_field("container_spec", "mounts", [mount])


@pytest.mark.parametrize(
    "source",
    [
        "/",
        "//",
        "/etc",
        "/etc/",
        "/etc/shadow",
        "//etc/shadow",
        "/./etc",
        "/proc/1/root",
        "/sys/kernel",
        "/dev/sda",
        "/boot",
        "/root/.ssh",
        "/run/secrets",
        "/var/run",
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/lib/docker/volumes/x/_data",
        "/srv/docker.sock",
    ],
)
def test_system_bind_sources_are_refused_without_allow_list(source: str) -> None:
    error = refused(one_mount(source=source, target="/mnt", type="bind"), "not allowed|Docker socket|system")
    assert "Traceback" not in str(error)


@pytest.mark.parametrize("source", ["/data/../etc", "/data/x/..", "/../data", "/data/./../../etc/passwd"])
def test_dotdot_is_always_refused(source: str) -> None:
    refused(one_mount(source=source, target="/mnt", type="bind"), r"'\.\.'")
    refused(one_mount(source=source, target="/mnt", type="bind"), r"'\.\.'", allowed_prefixes="/data")


@pytest.mark.parametrize("source", ["/etcetera/x", "/data", "/var/lib/dockerish", "/runner", "/devices", "/data/é/ü"])
def test_ordinary_bind_sources_are_allowed_without_allow_list(source: str) -> None:
    spec = parse_user_options(one_mount(source=source, target="/mnt", type="bind"))
    assert spec.mounts[0].source == source


def test_allow_list_respects_path_boundaries() -> None:
    prefixes = "/data:/srv/xnat/"
    for source, normal in [
        ("/data", "/data"),
        ("/data/archive/P1", "/data/archive/P1"),
        ("/data//archive/./P1/", "/data/archive/P1"),
        ("/srv/xnat/ws", "/srv/xnat/ws"),
    ]:
        spec = parse_user_options(one_mount(source=source, target="/mnt"), allowed_prefixes=prefixes)
        assert spec.mounts[0].source == normal
    for source in ["/data2", "/data2/x", "/dat", "/srv/xnatother", "/srv", "/etc", "/"]:
        refused(one_mount(source=source, target="/mnt"), "outside the directories", allowed_prefixes=prefixes)


def test_allow_list_still_refuses_the_docker_socket() -> None:
    refused(one_mount(source="/var/run/docker.sock", target="/s"), "Docker socket", allowed_prefixes="/var/run")


def test_allow_list_parsing() -> None:
    assert parse_allowed_prefixes("/data: /srv/xnat/ ::/data") == ("/data", "/srv/xnat")
    assert parse_allowed_prefixes(["/a/./b"]) == ("/a/b",)
    assert parse_allowed_prefixes(None) == ()
    for bad in ["relative/path", "/data/../etc", "/da\x00ta"]:
        with pytest.raises(ValueError, match="JH_MOUNT_ALLOWED_PREFIXES"):
            parse_allowed_prefixes(bad)


@pytest.mark.parametrize(
    ("mount", "match"),
    [
        ({"source": "/data", "target": "relative"}, "absolute"),
        ({"source": "/data", "target": "/"}, "target must not be /"),
        ({"source": "/data", "target": "/x/../etc"}, r"'\.\.'"),
        ({"source": "data", "target": "/x"}, "absolute"),
        ({"source": "", "target": "/x"}, "absolute"),
        ({"source": None, "target": "/x"}, "must be text"),
        ({"source": "/data", "target": None}, "must be text"),
        ({"source": "/data", "target": "/x", "type": "tmpfs"}, "only 'bind' and 'volume'"),
        ({"source": "/data", "target": "/x", "type": "npipe"}, "only 'bind' and 'volume'"),
        ({"source": "/data", "target": "/x", "read_only": "yes"}, "read_only"),
        ({"source": "/da\x00ta", "target": "/x"}, "control characters"),
        ({"source": "/data\nx", "target": "/x"}, "control characters"),
        ({"source": "/data/\ud800", "target": "/x"}, "Unicode"),
        ({"source": "/" + "a" * 5000, "target": "/x"}, "too long"),
        ({"source": "v", "target": "/x", "type": "volume"}, "volume name"),
        ({"source": "/abs", "target": "/x", "type": "volume"}, "volume name"),
        ({"source": "../x", "target": "/x", "type": "volume"}, "volume name"),
        ({"source": None, "target": "/x", "type": "volume"}, "volume name"),
        ({}, "empty"),
    ],
)
def test_bad_mounts_are_refused(mount: dict[str, Any], match: str) -> None:
    refused(one_mount(**mount), match)


def test_mount_defaults_and_duplicates() -> None:
    spec = parse_user_options(one_mount(source="/data/x", target="/x/"))
    assert spec.mounts == (MountSpec("bind", "/data/x", "/x", False),)
    payload = with_field(
        "container_spec", "mounts", [{"source": "/a", "target": "/x"}, {"source": "/b", "target": "/x/"}]
    )
    refused(payload, "share the target /x")
    refused(with_field("container_spec", "mounts", ["/data:/x"]), "must be a JSON object")
    refused(with_field("container_spec", "mounts", {"source": "/a"}), "must be a JSON array")


# -- env, image, shape -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env", [{"": "x"}, {"A=B": "x"}, {"A\x00": "x"}, {"A\n": "x"}, {"A": None}, {"A": ["x"]}, ["A=x"]]
)
def test_bad_env_is_refused(env: Any) -> None:
    refused(with_field("container_spec", "env", env), "env")


def test_env_value_is_never_quoted_in_a_message() -> None:
    error = refused(with_field("container_spec", "env", {"XNAT_PASS": "s3cret\x00"}), "XNAT_PASS")
    assert "s3cret" not in str(error)


def test_env_keeps_unicode_and_newlines_and_stringifies_numbers() -> None:
    env = {"GREETING": "grüß dich\nzweite Zeile", "N": 3, "RATIO": 0.5}
    spec = parse_user_options(with_field("container_spec", "env", env))
    assert dict(spec.env) == {"GREETING": "grüß dich\nzweite Zeile", "N": "3", "RATIO": "0.5"}


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "xnat/datascience-notebook:latest",
        "registry.example.org:5000/team/img:1.2",
        "xnat-jupyterhub/singleuser:dev",
        "busybox@sha256:" + "a" * 64,
        "localhost/img",
    ],
)
def test_image_references(image: str) -> None:
    assert parse_user_options(with_field("container_spec", "image", image)).image == image


@pytest.mark.parametrize(
    "image", ["Busybox", "img:", ":tag", "a b", "img;rm -rf /", "-rm", "img\n", 7, ["x"], "a" * 600]
)
def test_bad_image_is_refused(image: Any) -> None:
    refused(with_field("container_spec", "image", image), "image")


def test_no_image_means_the_spawners_default() -> None:
    assert parse_user_options(with_field("container_spec", "image", None)).image is None


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (None, "must be a JSON object"),
        ([], "must be a JSON object"),
        ("options", "must be a JSON object"),
        ({}, "no task_template"),
        ({"task_template": None}, "no task_template"),
        ({"task_template": []}, "task_template must be a JSON object"),
        ({"task_template": {"container_spec": "x"}}, "container_spec must be a JSON object"),
        ({"task_template": {"resources": 3}}, "resources must be a JSON object"),
        ({"task_template": {"placement": ["node.role==manager"]}}, "placement must be a JSON object"),
    ],
)
def test_wrong_shapes_are_refused(payload: Any, match: str) -> None:
    refused(payload, match)


def test_huge_collections_are_refused() -> None:
    mounts = [{"source": f"/data/{i}", "target": f"/m/{i}"} for i in range(5000)]
    refused(with_field("container_spec", "mounts", mounts), "too many")
    refused(with_field("container_spec", "env", {f"V{i}": "x" for i in range(5000)}), "too many")
    refused(with_field("placement", "constraints", ["node.role==manager"] * 100), "too many")


def test_messages_stay_short_for_long_paths() -> None:
    long_source = "/etc/" + "a" * 3000
    error = refused(one_mount(source=long_source, target="/x"), "system directory /etc")
    assert len(str(error)) < 300 and str(error).startswith("mount source /etc/aaa")
    error = refused(one_mount(source="/" + "b" * 3000, target="/x"), "outside", allowed_prefixes="/data")
    assert len(str(error)) < 300
