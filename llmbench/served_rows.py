"""One served model x task x load level -> one row, from that level's own answers.

Each level is warmed up (not counted), then every prompt of the task is sent once at the level's
concurrency / Poisson rate under the served model's energy and memory meter (llmbench.models.served_meters);
the answers are scored, so quality under load is measured, not assumed equal to quality at concurrency 1.

A level row's model name is the model's name plus the level's suffix (``NAME@c4``, ``NAME@r2``; none for
concurrency 1 without a rate, the latency setting), and its model entry carries ``load``: rows are keyed by
(model name, task name), so every level stays its own row in the run table, in ``compare`` (where it sits
next to the other models of the same task, on the same prompts) and in ``gate``.

Requests that fail (HTTP errors, timeouts, a server that died) are kept in samples.jsonl with their
status and error; the row is then ``failed`` with the counts, and keeps what was measured on the answered
ones. The run goes on with the next level and the next model.
"""

from __future__ import annotations

from llmbench.config import LoadLevel
from llmbench.errors import error_text
from llmbench.models.base import GenerateParams
from llmbench.records import ResultRow
from llmbench.records.rows import failed_row, sample_lines, scoring_error, task_entry


def level_model_info(model_info: dict, level: LoadLevel) -> dict:
    """The row's model entry at ``level``: the name with the level's suffix, the level's settings in ``load``."""
    info = dict(model_info, load=level.to_dict())
    if level.suffix:
        info["base_name"] = model_info.get("name")
        info["name"] = f"{model_info.get('name')}{level.suffix}"
    return info


def warm_up(ctx, prompts: list[str], params: GenerateParams) -> None:
    """Not counted: ``--warmup`` rounds of as many requests as the level keeps in flight (at least one), at
    the full length (the server's device is unknown; a GPU server needs its caches grown)."""
    if ctx.config.warmup <= 0 or not prompts:
        return
    width = min(params.concurrency or 1, len(prompts))
    batch = [prompts[i % len(prompts)] for i in range(width * ctx.config.warmup)]
    warm = GenerateParams(params.max_new_tokens, params.stop, 1, params.seed, params.concurrency, None)
    ctx.backend.run_level(ctx.loaded, batch, warm)


def run_level(ctx, task, examples, level: LoadLevel) -> tuple[ResultRow, list[dict]]:
    from llmbench.meters.energy import per_unit
    from llmbench.metrics import evaluate
    from llmbench.models.served_meters import served_meter
    from llmbench.models.served_timing import level_latency

    loaded, backend, progress = ctx.loaded, ctx.backend, ctx.progress
    gen, load = ctx.config.generation, ctx.config.load
    max_new = gen.budget(task.max_new_tokens, gen.new_tokens[0] if gen.new_tokens else None)
    params = GenerateParams(max_new, tuple(task.stop), 1, gen.seed, level.concurrency, level.rate)
    model_info = level_model_info(ctx.model_info, level)
    name = model_info["name"]
    prompts = [backend.render(loaded, ex.messages, ex.prompt) for ex in examples]
    if max(gen.batch_levels) > 1 and not getattr(ctx, "batch_noted", False):
        ctx.batch_noted = True  # once per model
        what = (f"levels {','.join(map(str, gen.batch_levels))} apply" if gen.is_batch_sweep else "applies")
        progress.note(f"{loaded.name}: served, one request per prompt and one row per --concurrency/--rate level; "
                      f"--batch-size {what} to in-process models (the server batches concurrent requests itself: "
                      "use --concurrency)")
    from llmbench.models.openai_stream import stop_note

    note = stop_note(f"{name} / {task.name}", task.stop)
    if note:
        progress.note(note)
    progress.task_started(name, task.name, len(prompts))
    try:
        warm_up(ctx, prompts, params)
        meter = served_meter(loaded.handle.replicas, load.gpu_telemetry, timeout_s=load.connect_timeout_s)
        # the meter's window is the request loop alone (not the results' conversion, nor client-side tokenizing)
        generations, run = backend.run_level(loaded, prompts, params, on_done=lambda result: progress.advance(1),
                                             window=meter.measure(task.name))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        error = error_text(exc)
        progress.note(f"{name} / {task.name}: failed: {error}")
        return failed_row(model_info, task, error), []

    model_info["load"].update(duration_s=run.duration_s, requests=len(prompts), max_in_flight=run.max_in_flight,
                              seed=gen.seed if level.rate is not None else None)
    lines = sample_lines(name, task, examples, generations)
    answered = [i for i, g in enumerate(generations) if g.error is None]
    task_info = task_entry(task, len(examples), max_new)
    measured: dict = {}
    failed = len(generations) - len(answered)
    error = None
    if failed:
        first = next(g.error for g in generations if g.error is not None)
        error = (f"{failed} of {len(generations)} requests failed (first: {first})" +
                 ("; quality and latency are over the answered ones" if answered else ""))
        progress.note(f"{name} / {task.name}: {error}")
    try:
        ok = [generations[i] for i in answered]
        latency = level_latency(generations, run, gen.seed, dict(load.slo) or None)
        latency["window_s"] = meter.result().get("duration_s")
        measured["latency"] = latency
        tokens = latency.get("total_new_tokens")
        energy = per_unit(meter.energy(), len(ok), tokens)
        energy["joules_per_request"] = energy.get("joules_per_sample")
        measured["energy"] = energy
        measured["memory"] = {"weights_bytes": None, **meter.memory()}
        quality: dict = {}
        if ok:
            preds = [g.text for g in ok]
            refs = [list(examples[i].references) for i in answered]
            quality, per_sample = evaluate(list(task.metrics), preds, refs, seed=gen.seed)
            for i, scores in zip(answered, per_sample):
                lines[i]["scores"] = scores
    except Exception as exc:  # not KeyboardInterrupt
        error = scoring_error(exc) + (f"; {error}" if error else "")
        progress.note(f"{name} / {task.name}: {error}")
        return ResultRow(model=model_info, task=task_info, status="failed", error=error, **measured), lines
    status = "failed" if failed else "ok"
    return (ResultRow(model=model_info, task=task_info, quality=quality, status=status, error=error, **measured),
            lines)
