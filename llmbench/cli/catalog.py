"""`llmbench tasks` and `llmbench models`: what can be run."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from llmbench.cli.options import nonempty_path, nonempty_text


@click.group(invoke_without_command=True)
@click.option("--tasks-dir", "tasks_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Directory of extra task YAML files (repeatable).")
@click.pass_context
def tasks(ctx, tasks_dirs):
    """List tasks and suites with their sizes."""
    if ctx.invoked_subcommand is not None:
        return
    from llmbench.cli.console import out
    from llmbench.tasks import load_catalog

    rows = load_catalog(list(tasks_dirs)).describe()
    table = Table(title="tasks")
    for col in ("name", "kind", "n", "metrics", "source"):
        table.add_column(col)
    suites = Table(title="suites")
    for col in ("name", "n", "tasks"):
        suites.add_column(col)
    notes = []  # why a size is `?`: the data is missing here (with the reason), or a hub dataset
    hub = []
    for r in rows:
        if r.get("type") == "suite" or "tasks" in r:
            suites.add_row(Text(r["name"]), _n(r.get("n")), Text(", ".join(map(str, r.get("tasks", [])))))
        else:
            n = _n(r.get("n"))
            if r.get("problem"):
                n = f"? ({len(notes) + 1})"
                notes.append(f"({len(notes) + 1}) {r['name']}: cannot run here: {r['problem']}")
            elif r.get("n") is None:
                hub.append(r["name"])
            # names and sources come from task files: Text, never read as rich markup
            table.add_row(Text(r["name"]), Text(str(r.get("kind", ""))), n, Text(" ".join(r.get("metrics", []))),
                          Text(str(r.get("source", ""))))
    out().print(table)
    if hub:
        out().print(f"?: {', '.join(hub)}: counted when loaded (hub datasets)", highlight=False, soft_wrap=True,
                    markup=False)
    for note in notes:
        out().print(note, highlight=False, soft_wrap=True, markup=False)
    out().print(suites)


@tasks.command("export-lm-eval")
@click.argument("task")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), callback=nonempty_path,
              help="Folder to write the lm-eval task into (created if missing).")
@click.option("--limit", type=int, default=None, help="Export only the first N examples.")
@click.option("--name", "lm_eval_name", default=None, callback=nonempty_text,
              help="Task name for lm-eval (default: the same name).")
@click.pass_context
def export_lm_eval(ctx, task, out_dir, limit, lm_eval_name):
    """Write TASK as an lm-eval task (YAML, data, metric functions) runnable with the lm_eval CLI."""
    from llmbench.cli.console import err
    from llmbench.errors import UserError
    from llmbench.lmeval.export import export_task

    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    tasks_dirs = ctx.parent.params.get("tasks_dirs", ()) if ctx.parent else ()
    done = export_task(task, out_dir, tasks_dirs=tasks_dirs, limit=limit, lm_eval_name=lm_eval_name)
    err().print(f"wrote {done.yaml}, {done.data.name} ({done.n} examples), {done.module.name}", highlight=False,
                markup=False)
    err().print(
        f"run: lm_eval run --model hf --model_args pretrained=MODEL --include_path {out_dir} "
        f"--tasks {done.task} --batch_size 1\n"
        f"  or: llmbench run -m MODEL --lm-eval {done.task} --lm-eval-include {out_dir}",
        highlight=False, soft_wrap=True, markup=False,
    )


def _n(v) -> str:
    return "?" if v is None else str(v)


@click.command()
def models():
    """List the embedded model aliases and whether their package is installed."""
    from llmbench.cli.console import out
    from llmbench.models.embedded import EMBEDDED, converted_dir, is_converted

    table = Table(title="embedded models (any hub id or local directory works too)")
    for col in ("alias", "model", "license", "installed", "cache"):
        table.add_column(col)
    for emb in EMBEDDED.values():
        installed = "[green]yes[/]" if emb.installed() else f"[red]no[/]: {emb.install}"
        cache = str(converted_dir(emb.alias)) if is_converted(emb.alias) else "not converted yet"
        table.add_row(emb.alias, emb.description, emb.license, installed, Text(cache))  # a path: as written
    out().print(table)
