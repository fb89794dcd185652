"""Errors a user can cause. The CLI turns them into one line and exit code 2."""


class UserError(Exception):
    """Bad input: unknown model or task, malformed file, bad option. Shown as one line, exit code 2."""

    exit_code = 2
