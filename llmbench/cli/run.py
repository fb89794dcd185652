"""`llmbench run`: parse options into a RunConfig, draw progress, print the side-by-side table."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from llmbench.cli.options import nonempty_path, nonempty_text
from llmbench.config import (
    GenerationConfig,
    LoadConfig,
    ModelSpec,
    RunConfig,
    parse_concurrency,
    parse_rates,
    parse_slo,
)
from llmbench.errors import UserError
from llmbench.levels import parse_batch_sizes, parse_new_tokens

# the run finished and its record is complete, but a row failed; not 1, which is also a crash's exit code
ROWS_FAILED = 3


@click.command()
@click.option("-m", "--model", "models", multiple=True, metavar="SPEC",
              help="Hub id, local directory or embedded alias, with options: ID,dtype=bfloat16,device_map=auto,"
                   "revision=R,gguf_file=F,trust_remote_code=true,name=LABEL,chat_template=false; or a served model: "
                   "http://HOST:PORT/v1,model=NAME,api=chat|completions,api_key_env=VAR,parameters=N,tokenizer=DIR,"
                   "urls=URL2;URL3 (docs/served.md). Repeat for several models.")
@click.option("-t", "--task", "tasks", multiple=True, metavar="NAME",
              help="Task or suite name (repeatable; default: the smoke suite).")
@click.option("--limit", type=int, default=None, help="At most N examples per task.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", "batch_size", default="1", show_default=True, metavar="N[,N...]",
              help="In-process models: prompts per generate call; 1 is the latency setting, larger batches are "
                   "labelled a throughput setting. Several (1,4,16): a sweep, one row per level (NAME@b4), "
                   "each scored from its own answers.")
@click.option("--max-new-tokens", type=int, default=None, help="Cap on new tokens (default: each task's own).")
@click.option("--new-tokens", "new_tokens", default=None, metavar="N[,N...]",
              help="Every task's generation budget, replacing its own. Several (16,64,256), in-process models "
                   "only: a length sweep, one row per level (NAME@n64), each scored from its own answers.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--warmup", type=int, default=1, show_default=True,
              help="Warm-up generations per task (its first prompt; full length on CUDA, at most 8 new tokens "
                   "on the CPU; lm-eval tasks: their first request), not counted.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results", callback=nonempty_path,
              show_default=True, help="Where run records are written.")
@click.option("--name", default=None, callback=nonempty_text, help="A label added to the run id.")
@click.option("--tasks-dir", "tasks_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Directory of extra task YAML files (repeatable).")
@click.option("--no-chat-template", is_flag=True, help="Use plain prompts even for models with a chat template.")
@click.option("--lm-eval", "lm_eval_tasks", default=None, metavar="TASKS",
              help="Comma-separated lm-eval tasks to run under the same meters (needs llmbench[lmeval]).")
@click.option("--lm-eval-include", type=click.Path(path_type=Path), default=None,
              help="Directory of extra lm-eval task YAMLs.")
@click.option("--concurrency", default=None, metavar="N[,N...]",
              help="Served models: load levels of at most N requests in flight, e.g. 1,4,16 (one row each; "
                   "default 1, the latency setting). In-process models run their latency setting only.")
@click.option("--rate", default=None, metavar="R[,R...]",
              help="Served models: Poisson arrivals at R requests/s (seeded with --seed), one row per rate; with "
                   "--concurrency, every pair.")
@click.option("--slo", default=None, metavar="ttft_ms=X,tpot_ms=Y",
              help="Served models: goodput = requests/s meeting every bound (ttft_ms, tpot_ms, e2e_ms).")
@click.option("--gpu-telemetry", "gpu_telemetry", multiple=True, metavar="URL",
              help="DCGM exporter metrics URL of a served model's node (repeatable, one per node): its GPU "
                   "energy and memory, summed over nodes.")
@click.option("--request-timeout", type=float, default=600.0, show_default=True,
              help="Served models: seconds one request may take before it is recorded as failed.")
@click.option("--connect-timeout", type=float, default=10.0, show_default=True,
              help="Served models: seconds to wait for a connection.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record to stdout instead of the table.")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None,
              metavar="RUN_DIR", help="Finish an interrupted run (its directory, or its run.json) with its own "
                                      "settings: its finished rows are kept, the others are run again whole "
                                      "(docs/results-schema.md).")
@click.option("--force", is_flag=True,
              help="With --resume: resume although the versions, the machine or options differ (the re-run "
                   "rows are labelled).")
@click.pass_context
def run(ctx, **params):
    """Benchmark models on tasks: quality, latency, memory and energy from the same generations."""
    from rich.markup import escape

    from llmbench import runner
    from llmbench.cli.console import err, out, write_stdout
    from llmbench.cli.progress import RichProgress
    from llmbench.cli.tables import run_table

    obj = ctx.find_root().obj or {}
    command = " ".join(shlex.quote(a) for a in ["llmbench", *obj.get("argv", sys.argv[1:])])
    resume = None
    if params["resume_dir"] is not None:
        from llmbench.cli.resume import resumed_params

        params, resume = resumed_params(ctx, params)
        resume.command = command
        command = resume.record.command
    elif params["force"]:
        raise click.UsageError("--force only applies with --resume RUN_DIR")
    elif not params["models"]:
        raise click.UsageError("Missing option '-m' / '--model'.")
    config = run_config(params, command)
    with _LazyProgress(RichProgress, err()) as progress:
        result = runner.run(config, progress=progress, **({"resume": resume} if resume else {}))
    if params["as_json"]:
        import json

        write_stdout(json.dumps(result.record.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        out().print(run_table(result.record))
    err().print(f"record: {result.path}  samples: {result.path.parent / 'samples.jsonl'}", highlight=False,
                markup=False)
    if result.interrupted:
        how = "Ctrl-C" if getattr(result, "signal", None) in (None, "SIGINT") else result.signal
        err().print(f"[yellow]interrupted[/] ({how}): the rows finished before are kept in the record; "
                    f"finish the run with `llmbench run --resume {escape(str(result.path.parent))}`",
                    highlight=False, soft_wrap=True)
        sys.exit(interrupted_exit_code(getattr(result, "signal", None)))
    failed = [r for r in result.record.rows if r.status != "ok"]
    if failed:  # the record is complete, but a script or CI job must not mistake this run for a clean one
        names = escape(", ".join(f"{r.model.get('name')} × {r.task.get('name')}" for r in failed[:3]))
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        err().print(f"[red]{len(failed)} of {len(result.record.rows)} rows failed[/] ({names}{more}); "
                    "they are kept in the record: exit code 3", highlight=False, soft_wrap=True)
        sys.exit(ROWS_FAILED)


def interrupted_exit_code(signal_name: str | None) -> int:
    """128 + the signal's number, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    import signal

    return 128 + int(getattr(signal, signal_name or "SIGINT", signal.SIGINT))


def run_config(params: dict, command: str) -> RunConfig:
    """The RunConfig of `llmbench run`'s parsed options (also what --resume rebuilds from a record)."""
    models, tasks, tasks_dirs, lm_eval_tasks = (params[k] for k in ("models", "tasks", "tasks_dirs",
                                                                      "lm_eval_tasks"))
    for d in tasks_dirs:
        if not d.is_dir():
            raise click.BadParameter(f"{d} is not a directory", param_hint="--tasks-dir")
    lm_tasks = tuple(t.strip() for t in (lm_eval_tasks or "").split(",") if t.strip())
    if lm_eval_tasks is not None and not lm_tasks:
        raise UserError(f"--lm-eval {lm_eval_tasks!r}: give at least one lm-eval task name, e.g. --lm-eval hellaswag")
    p = params
    return RunConfig(
        models=tuple(ModelSpec.parse(m) for m in models),
        tasks=tuple(tasks) if tasks else (() if lm_tasks else ("smoke",)),
        limit=p["limit"], device=p["device"], warmup=p["warmup"], out_dir=p["out_dir"], name=p["name"],
        tasks_dirs=tuple(tasks_dirs),
        generation=GenerationConfig.with_batch_levels(parse_batch_sizes(p["batch_size"]),
                                                      max_new_tokens=p["max_new_tokens"],
                                                      new_tokens=parse_new_tokens(p["new_tokens"]), seed=p["seed"],
                                                      use_chat_template=not p["no_chat_template"]),
        lm_eval_tasks=lm_tasks, lm_eval_include=p["lm_eval_include"],
        load=LoadConfig(concurrency=parse_concurrency(p["concurrency"]), rates=parse_rates(p["rate"]),
                        slo=parse_slo(p["slo"]), gpu_telemetry=tuple(p["gpu_telemetry"]),
                        request_timeout_s=p["request_timeout"], connect_timeout_s=p["connect_timeout"]),
        command=command,
    )


class _LazyProgress:
    """Starts the rich progress display at the runner's first report, i.e. after every check passed: a bad
    input then prints only its one error line (a started display leaves an empty line behind)."""

    def __init__(self, factory, console) -> None:
        self._factory, self._console, self._bar = factory, console, None

    def _started(self):
        if self._bar is None:
            self._bar = self._factory(self._console).__enter__()
        return self._bar

    def __enter__(self) -> "_LazyProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __getattr__(self, name):  # model_started, task_started, advance, row_done, note
        return getattr(self._started(), name)
