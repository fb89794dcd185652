"""The console entry point: what reaches the user when a command fails outside its own checks."""

from __future__ import annotations

import errno
import os
import sys

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


class _Unwritable:
    def __init__(self, err: int):
        self.err = err

    def write(self, text):
        raise OSError(self.err, os.strerror(self.err))

    def flush(self):
        pass

    def fileno(self):
        raise ValueError("no file descriptor")


def test_stdout_that_cannot_be_written_is_one_line_and_a_closed_pipe_exits_141(monkeypatch):
    from llmbench.cli.console import write_stdout
    from llmbench.errors import UserError

    monkeypatch.setattr(sys, "stdout", _Unwritable(errno.ENOSPC))
    with pytest.raises(UserError, match="cannot write stdout: No space left on device"):
        write_stdout("{}")
    monkeypatch.setattr(sys, "stdout", _Unwritable(errno.EPIPE))
    with pytest.raises(SystemExit) as info:
        write_stdout("{}")
    assert info.value.code == 141  # never 1, which `llmbench gate` means as "regression"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_commands_writing_to_a_full_or_closed_stdout(tmp_path):
    import subprocess

    cmd = [sys.executable, "-m", "llmbench", "tasks"]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: cannot write stdout: No space left on device"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes (its imports take longer), as `| head`
    assert proc.wait(timeout=60) == 141 and b"Traceback" not in proc.stderr.read()
