"""The plugin's JSON documents have the documented shapes (integration spec §6.1, §6.2, §6.4)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

from hub.standin.options import event_tracking_id, mount, project_mounts, start_request_body, user_options

XNAT_ENV_KEYS = ["XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_DATA", "XNAT_XSI_TYPE", "XNAT_ITEM_ID",
                 "JUPYTERHUB_ROOT_DIR", "XDG_CONFIG_HOME"]


def test_event_tracking_id_is_the_iso_timestamp_without_separators():
    now = datetime(2024, 6, 15, 10, 15, 30, 123456, tzinfo=UTC)
    assert event_tracking_id(now) == "20240615T101530123Z"
    # Converted to UTC first, as the browser's toISOString() does.
    local = datetime(2024, 6, 15, 12, 15, 30, 5000, tzinfo=timezone(timedelta(hours=2)))
    assert event_tracking_id(local) == "20240615T101530005Z"
    assert re.fullmatch(r"\d{8}T\d{9}Z", event_tracking_id())


def test_user_options_has_the_documented_shape():
    options = user_options(
        "Alice.Smith", "20240615T101530123Z", image="xnat/datascience-notebook:latest",
        command="panel serve app.py --address 0.0.0.0", env={"EXTRA": "1"}, labels={"team": "x"},
        mounts=[mount("/data/ws/users/Alice.Smith", "/workspace/Alice.Smith")], generic_resources={"gpu": "1"},
        constraints=["node.role==manager", "node.labels.x!=y"], dashboard_config_id=7,
        xnat_host="https://xnat.example.org", alias_token="tok", alias_secret="sec",
    )
    assert list(options) == ["userId", "servername", "xsiType", "itemId", "projectId", "eventTrackingId",
                             "dashboardConfigId", "task_template"]
    assert "itemLabel" not in options  # never stored by XNAT
    assert options["userId"] == 3 and options["servername"] == "20240615T101530123Z"
    assert options["eventTrackingId"] == "20240615T101530123Z"  # the UI uses one for the other
    assert options["dashboardConfigId"] == 7
    template = options["task_template"]
    assert list(template) == ["container_spec", "resources", "placement"]
    spec = template["container_spec"]
    assert list(spec) == ["image", "command", "env", "labels", "mounts"]
    assert spec["command"] == "panel serve app.py --address 0.0.0.0"
    assert list(spec["env"]) == [*XNAT_ENV_KEYS, "EXTRA"]
    assert spec["env"]["XNAT_HOST"] == "https://xnat.example.org"
    assert (spec["env"]["XNAT_USER"], spec["env"]["XNAT_PASS"]) == ("tok", "sec")
    assert spec["env"]["JUPYTERHUB_ROOT_DIR"] == spec["env"]["XDG_CONFIG_HOME"] == "/workspace/Alice.Smith"
    assert spec["labels"] == {"team": "x"}
    assert spec["mounts"] == [{"target": "/workspace/Alice.Smith", "source": "/data/ws/users/Alice.Smith",
                               "type": "bind", "read_only": False}]
    assert template["resources"] == {"cpu_limit": 2.0, "cpu_reservation": 2.0, "mem_limit": "2G",
                                     "mem_reservation": "2G", "generic_resources": {"gpu": "1"}}
    assert template["placement"] == {"constraints": ["node.role==manager", "node.labels.x!=y"]}
    json.dumps(options)


def test_top_level_nulls_are_dropped_but_nested_nulls_are_kept():
    options = user_options("alice", "s1", user_id=None, command=None, cpu_limit=None, mem_limit=None,
                           generic_resources=None, image=None)
    assert "userId" not in options and "dashboardConfigId" not in options
    spec = options["task_template"]["container_spec"]
    assert spec["image"] is None and spec["command"] is None
    resources = options["task_template"]["resources"]
    assert list(resources) == ["cpu_limit", "cpu_reservation", "mem_limit", "mem_reservation", "generic_resources"]
    assert resources["cpu_limit"] is None and resources["generic_resources"] is None
    assert '"command": null' in json.dumps(options)


def test_defaults_need_no_host_paths_and_env_overrides_win():
    options = user_options("alice", "", env={"XNAT_DATA": "/elsewhere"})
    assert options["servername"] == ""
    assert re.fullmatch(r"\d{8}T\d{9}Z", options["eventTrackingId"])
    assert options["task_template"]["container_spec"]["mounts"] == []
    assert options["task_template"]["container_spec"]["env"]["XNAT_DATA"] == "/elsewhere"
    assert options["task_template"]["placement"] == {"constraints": []}


def test_project_mounts_follow_xnats_layout():
    mounts = project_mounts("alice", "PRJ1", workspace_root="/ws", archive_root="/arc")
    assert mounts == [
        {"target": "/workspace/alice", "source": "/ws/users/alice", "type": "bind", "read_only": False},
        {"target": "/data/projects/PRJ1/experiments", "source": "/arc/PRJ1/arc001", "type": "bind",
         "read_only": True},
        {"target": "/data/projects/PRJ1/resources", "source": "/arc/PRJ1/resources", "type": "bind",
         "read_only": True},
        {"target": "/data/projects/PRJ1/subjects", "source": "/arc/PRJ1/subjects", "type": "bind",
         "read_only": True},
    ]


def test_start_request_body_is_camel_case_with_nulls():
    body = start_request_body(event_tracking_id="20240615T101530123Z", item_label="My Project")
    assert body == {
        "userId": 3, "servername": None, "xsiType": "xnat:projectData", "itemId": "PRJ1",
        "itemLabel": "My Project", "projectId": "PRJ1", "eventTrackingId": "20240615T101530123Z",
        "dashboardConfigId": None, "task_template": None,
    }
    assert list(body) == ["userId", "servername", "xsiType", "itemId", "itemLabel", "projectId",
                          "eventTrackingId", "dashboardConfigId", "task_template"]
