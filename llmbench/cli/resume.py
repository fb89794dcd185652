"""`llmbench run --resume RUN_DIR`: the run's own options, parsed again from its record's ``command`` with
the same click command, so that the resumed rows are measured with the same settings.

Options given beside --resume must equal the run's: ``--out`` and ``--name`` never apply (the run keeps its
directory); options that decide which rows the run has (models, tasks, --limit, levels, --lm-eval) cannot
change; any other difference is refused unless ``--force``, which uses the new value for the re-run rows and
labels their session with what differed.
"""

from __future__ import annotations

import shlex

import click
from click.core import ParameterSource

from llmbench.errors import UserError

# options that decide the plan (which rows exist and what their n is): never changed by a resume
PLAN_OPTIONS = ("models", "tasks", "tasks_dirs", "limit", "batch_size", "new_tokens", "concurrency", "rate",
                "lm_eval_tasks", "lm_eval_include")
NOT_ON_RESUME = ("out_dir", "name")
OWN_OPTIONS = ("resume_dir", "force", "as_json")  # the resuming command's own, compared with nothing


def _flag(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def run_params(run: click.Command, command: str, where) -> dict:
    """The options of a record's ``command`` (``llmbench run ...``) as ``run`` parses them; UserError when it
    is not one."""
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise UserError(f"cannot resume {where}: its command cannot be read ({exc})") from None
    if len(args) < 2 or args[1] != "run":
        raise UserError(f"cannot resume {where}: its command {command!r} is not an `llmbench run` command line")
    try:
        with run.make_context("run", args[2:]) as old:
            return dict(old.params)
    except click.ClickException as exc:
        raise UserError(f"cannot resume {where}: its command {command!r} does not parse ({exc.format_message()})") \
            from None


def resumed_params(ctx: click.Context, params: dict):
    """(the options to run with, the llmbench.records.resume.Resume) for ``--resume``; UserError (one line)
    for an option that differs from the run's, a complete record or an unreadable one."""
    from llmbench.records import resume

    state = resume.prepare(params["resume_dir"], params["force"])
    where = state.run_dir
    old = run_params(ctx.command, state.record.command, where)
    merged = dict(old)
    for param in ctx.command.params:
        name = param.name
        if name in OWN_OPTIONS or not _given(ctx, name):
            continue
        if name in NOT_ON_RESUME:
            raise UserError(f"{_flag(param)} does not apply with --resume: the run keeps its directory {where}")
        if params[name] == old.get(name):
            continue
        change = f"{_flag(param)} {_shown(old.get(name))} -> {_shown(params[name])}"
        if name in PLAN_OPTIONS:
            raise UserError(f"cannot resume {where} with {change}: it changes which rows the run has; "
                            "start a new run instead")
        if not params["force"]:
            raise UserError(f"cannot resume {where} with {change} (the run's own is used without it); drop the "
                            "option, or add --force to use it for the re-run rows (they are labelled)")
        state.differs.append(change)
        merged[name] = params[name]
    merged.update({k: params[k] for k in OWN_OPTIONS})
    merged["out_dir"] = where.parent
    return merged, state


def _shown(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "(none)"
    return "(default)" if value is None else str(value)
