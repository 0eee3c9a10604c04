"""`python -m console.backend.stack stop --token-file`: a bad token file is a one-line error, before any change."""

from __future__ import annotations

import pytest

from console.backend.stack import __main__ as stack


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\xff\xfe not text", "is not UTF-8 text"), (b"  \n", "is empty")],
)
def test_a_bad_token_file_is_a_clear_error_not_a_traceback(tmp_path, capsys, monkeypatch, content, message):
    token_file = tmp_path / "token"
    token_file.write_bytes(content)

    def must_not_stop(*args, **kwargs):
        raise AssertionError("stop() ran with an unreadable token file")

    monkeypatch.setattr(stack, "stop", must_not_stop)
    code = stack.main(["--stack-name", "xjc-test-none", "stop", "--token-file", str(token_file)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: token file ") and message in err and "Traceback" not in err


def test_a_missing_token_file_names_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(stack, "stop", lambda *a, **k: pytest.fail("stop() ran without its token"))
    code = stack.main(["stop", "--token-file", str(tmp_path / "absent")])
    assert code == 1 and f"cannot read token file {tmp_path / 'absent'}" in capsys.readouterr().err
