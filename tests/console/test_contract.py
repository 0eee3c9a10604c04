"""The labels and service names the hub writes and the console reads are written once, in xjh_contract."""

from __future__ import annotations

from pathlib import Path

import xjh_contract

ROOT = Path(__file__).resolve().parents[2]


def test_labels_and_service_names_are_written_only_in_the_contract():
    facts = [f'"{xjh_contract.LABEL_USER}"', f'"{xjh_contract.LABEL_SERVER}"', '"jupyter-"', '}_jupyterhub"']
    for package in ("hub", "console"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert not [fact for fact in facts if fact in text], path


def test_the_spawner_labels_what_the_console_reads():
    from console.backend.docker_models import _service
    from xjh_contract import LABEL_SERVER, LABEL_USER

    spec = {"ID": "s1", "Spec": {"Name": "x", "Labels": {LABEL_USER: "alice", LABEL_SERVER: "mri"},
                                 "TaskTemplate": {"ContainerSpec": {"Image": "i"}}, "Mode": {"Replicated": {}}}}
    info = _service(spec)
    assert (info.notebook_user, info.notebook_server) == ("alice", "mri")
    assert xjh_contract.hub_service_name("s") == "s_jupyterhub"
