"""The one rich Console pair: tables and results on stdout, progress and warnings on stderr.

Only the CLI layer (llmbench/cli/) imports this module.
"""

from __future__ import annotations

import errno
import os
import sys
from functools import lru_cache
from typing import NoReturn

from rich.console import Console

from llmbench.errors import UserError


def _stdout_failed(exc: OSError) -> NoReturn:
    """stdout closed by its reader (`llmbench compare | head`): exit 141, as a shell reports SIGPIPE; stdout
    that cannot be written (`> /dev/full`): one line, exit 2. Never 0, nor 1: `llmbench gate`'s regression."""
    try:  # later writes and the flush at exit would fail again: send them nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    if exc.errno == errno.EPIPE:
        raise SystemExit(141) from None
    raise UserError(f"cannot write stdout: {exc.strerror or exc}") from None


class _ResultConsole(Console):
    """The results console, with ``_stdout_failed`` for the failures of writing stdout."""

    def _check_buffer(self) -> None:
        try:
            super()._check_buffer()
        except OSError as exc:
            _stdout_failed(exc)

    def on_broken_pipe(self) -> None:  # rich's default exits 1
        _stdout_failed(BrokenPipeError(errno.EPIPE, "Broken pipe"))


def write_stdout(text: str) -> None:
    """Plain text (JSON, an export to '-') on stdout, with the same handling of a closed or full stdout."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        _stdout_failed(exc)


@lru_cache(maxsize=1)
def out() -> Console:
    """Console for results (tables, paths); wide when piped, so tables are not squeezed to 80 columns."""
    probe = Console()
    return _ResultConsole(soft_wrap=False, width=None if probe.is_terminal else 200)


@lru_cache(maxsize=1)
def err() -> Console:
    """Console for progress, warnings and errors."""
    return Console(stderr=True)


def progress(message: str) -> None:
    """A progress line on stderr (reading a large record), shown as written."""
    err().print(message, markup=False, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning on stderr, one line whatever the terminal's width (a CI log keeps it greppable);
    ``message`` is shown as written (never read as rich markup)."""
    from rich.markup import escape

    err().print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
