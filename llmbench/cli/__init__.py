"""Command-line interface. Only this package imports click and rich; heavy libraries load lazily.

Subcommands live in their own modules and are imported only when invoked, so `llmbench --help`
stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from llmbench import __version__

# click >= 8.2 raises it for a group called without a command; older clicks exit with the help themselves
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())

# command name -> "module:attribute"
_COMMANDS = {
    "run": "llmbench.cli.run:run",
    "tasks": "llmbench.cli.catalog:tasks",
    "models": "llmbench.cli.catalog:models",
    "compare": "llmbench.cli.report:compare",
    "export": "llmbench.cli.report:export",
    "plot": "llmbench.cli.report:plot",
    "gate": "llmbench.cli.gate:gate",
    "baseline": "llmbench.cli.gate:baseline",
}
_HELP = {
    "run": "Benchmark models on tasks: quality, latency, memory, energy.",
    "tasks": "List tasks and suites (and export one to lm-eval).",
    "models": "List the embedded model aliases.",
    "compare": "Compare runs side by side, with significance and verdicts.",
    "export": "Export runs as json, csv, md, html or latex.",
    "plot": "Plot quality against size, energy and latency.",
    "gate": "Fail CI when quality drops or cost grows beyond the noise.",
    "baseline": "Save and list committed baselines for the gate.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return list(_COMMANDS)

    def get_command(self, ctx, name):
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, _HELP[name]) for name in _COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmbench")
def cli() -> None:
    """llmbench: is the small model enough? Quality, latency, memory and energy, side by side."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors become one line and exit code 2."""
    from llmbench.errors import UserError

    try:
        argv = list(sys.argv[1:] if argv is None else argv)  # the record's `command` is what was parsed
        rv = cli.main(args=argv, prog_name="llmbench", standalone_mode=False, obj={"argv": argv})
        if isinstance(rv, int) and rv:  # ctx.exit(n) returns n when standalone_mode is off
            sys.exit(rv)
    except UserError as exc:
        click.echo("error: " + " ".join(str(exc).splitlines()), err=True)  # one line, whatever a record held
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except _NO_ARGS_IS_HELP as exc:  # `llmbench` alone: its help, as click would show it
        click.echo(exc.format_message(), err=True)
        sys.exit(2)
    except click.ClickException as exc:  # usage errors: one line, not click's usage block
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a path the user gave that cannot be read or written (e.g. --out on a read-only
        if exc.filename is None:  # disk); one without a path is not bad input: its traceback stays
            raise
        click.echo(f"error: {_os_error(exc)}", err=True)
        sys.exit(2)


def _os_error(exc: OSError) -> str:
    """'cannot use PATH: Permission denied' from an OSError, without its errno prefix."""
    reason = exc.strerror or str(exc)
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else str(exc.filename)
    return f"cannot use {where}: {reason}"
