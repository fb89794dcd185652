"""The console entry point: what reaches the user when a command fails outside its own checks."""

from __future__ import annotations

import errno

import pytest

import llmbench.cli as cli_module
from llmbench.cli import main


def _raising(exc):
    def fake_main(*args, **kwargs):
        raise exc
    return fake_main


@pytest.mark.parametrize("exc, line", [
    (PermissionError(errno.EACCES, "Permission denied", "/sys/x.md"), "error: cannot use /sys/x.md: Permission denied"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "out"), "error: cannot use out: Is a directory"),
])
def test_os_errors_on_a_path_are_one_line_exit_2(monkeypatch, capsys, exc, line):
    monkeypatch.setattr(cli_module.cli, "main", _raising(exc))
    with pytest.raises(SystemExit) as info:
        main(["export"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == line and "Traceback" not in err


def test_no_subcommand_shows_the_help_not_an_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: llmbench") and "error:" not in err and "Commands:" in err


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")])
def test_errors_without_a_user_path_keep_their_traceback(monkeypatch, exc):
    # not bad input: a bug or a broken machine must not be dressed up as "one line, exit 2"
    monkeypatch.setattr(cli_module.cli, "main", _raising(exc))
    with pytest.raises(type(exc)):
        main(["export"])
