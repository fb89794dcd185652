"""Option checks shared by the commands (click callbacks)."""

from __future__ import annotations

from pathlib import Path

import click


def nonempty_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """An output path option as a Path; an empty string (which Path would read as '.') is bad input."""
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("is empty; name a directory", ctx=ctx, param=param)
    return Path(value)


def nonempty_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A name option: None when not given, never an empty or blank string."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty", ctx=ctx, param=param)
    return value
