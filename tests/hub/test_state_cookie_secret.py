"""The cookie secret from a Docker secret (JH_COOKIE_SECRET_FILE): what state.cookie_secret accepts, and the hub
config using it instead of a per-node file in the data directory."""

from __future__ import annotations

import pytest

from hub import state
from hub.settings import SettingsError


def test_hex_of_32_bytes_or_more_is_the_secret():
    value = "ab" * 32 + "\n"
    assert state.cookie_secret(value) == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("value", ["not hex at all", "abc", "ab" * 16])
def test_anything_else_is_one_clear_error_without_the_value(value):
    with pytest.raises(SettingsError) as caught:
        state.cookie_secret(value)
    assert "JH_COOKIE_SECRET_FILE" in str(caught.value)
    assert value not in str(caught.value)
