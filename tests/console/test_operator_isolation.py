"""Tests beside an operator's demo: nothing here may read the operator's console config, state, audit log or the
stack variables scripts/demo.sh recorded."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from console.backend.stack import StackSettings, default_env_file
from console.config import config_home, default_config_path, load_config, state_home


def test_console_tests_see_none_of_the_operators_files(own_home: Path):
    operator_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    for path in (config_home(), state_home(), default_config_path(), default_env_file()):
        assert path.is_relative_to(own_home) and not path.is_relative_to(operator_home / ".config"), path
    config = load_config()
    assert Path(config.audit_log).is_relative_to(own_home)
    assert config.token is None and config.xnat_url is None
    assert StackSettings.from_env().variables == {}  # not the demo's recorded stack.env

