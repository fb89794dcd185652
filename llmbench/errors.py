"""Errors a user can cause. The CLI turns them into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input: unknown model or task, malformed file, bad option. Shown as one line, exit code 2."""

    exit_code = 2


class RecordWriteError(UserError):
    """The run record could not be written (disk full, permissions): one line, exit code 4; everything
    written before it still reads (the record says the run is incomplete)."""

    exit_code = 4


def read_user_text(path: str | Path, what: str = "") -> str:
    """The text of a file the user named; UserError ``cannot read [WHAT ]PATH: <reason>`` when it is
    missing, unreadable or not UTF-8 text."""
    where = f"{what} {path}" if what else str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read {where}: {exc.strerror or exc}") from None


def error_text(exc: BaseException) -> str:
    """``Type: first line of the message``: how a failed row or request records what went wrong."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
