"""llmbench's own tasks (YAML + JSONL) as a row producer: for one loaded model, render the prompts, warm up,
generate under the memory and energy meters, score, and return the row with its samples.jsonl lines.

A served model (a backend of ``llmbench.models.SERVED_BACKENDS``) gives one row per load level (``--concurrency``,
``--rate``), each scored from that level's own answers: llmbench.served_rows.

An in-process model in a batch-size sweep (``--batch-size 1,4,16``) gives one row per batch level, the same
way: each level is warmed up, metered and scored from its own answers; a level other than 1 is a row whose
model name gets ``@b<N>`` (``NAME@b4``) and whose model entry carries ``batch_size`` and ``setting``; where its
greedy answers differ from batch 1's on the same prompts (padding and batching can change them), the model
entry's ``answers_vs_batch1`` says on how many and which.

A length sweep (``--new-tokens 16,64,256``) runs every task at each generation budget the same way (rows
``NAME@n64``, crossed with batch levels as ``NAME@b4@n64``; the model entry's ``new_tokens`` is the level):
decode cost against answer length, each level scored from its own (shorter budgets can cut answers)."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from llmbench.config import LoadLevel
from llmbench.errors import error_text
from llmbench.meters.timing import latency_summary, warmup_new_tokens, warmup_prefills
from llmbench.models import is_served
from llmbench.models.base import GenerateParams
from llmbench.records import ResultRow
from llmbench.records.rows import failed_row, sample_lines, scoring_error, task_entry

LATENCY_METHOD = "perf_counter+streamer (device synchronised)"


class TaskRows:
    """One llmbench task (llmbench.tasks.Task) -> one row per model (per load level for a served model)."""

    def __init__(self, task, levels: list[LoadLevel] | None = None, generation=None) -> None:
        from llmbench.config import GenerationConfig

        self.task = task
        self.levels = list(levels or [LoadLevel()])
        self.generation = generation or GenerationConfig()
        self._examples = None

    def preflight(self) -> None:
        self.examples()  # loads the data now: a missing file fails before any model is loaded

    def examples(self):
        if self._examples is None:
            self._examples = self.task.examples()
        return self._examples

    def sweep(self) -> list[tuple[int, int | None]]:
        """(batch size, generation budget or None for the task's own) of each in-process row, in run order."""
        gen = self.generation
        return [(b, n) for b in gen.batch_levels for n in gen.length_levels]

    def failed_rows(self, model_info: dict, error: str) -> list[ResultRow]:
        if is_served(model_info.get("backend")):
            from llmbench.served_rows import level_model_info

            return [failed_row(level_model_info(model_info, lv), self.task, error) for lv in self.levels]
        if self.generation.is_sweep:
            return [failed_row(self.level_info(model_info, b, n), self.task, error) for b, n in self.sweep()]
        return [failed_row(model_info, self.task, error)]

    def level_info(self, model_info: dict, batch_size: int, new_tokens: int | None) -> dict:
        """A sweep row's model entry: the level's ``batch_size`` and ``setting`` (and ``new_tokens`` in a length
        sweep), the name with the level's suffix (``NAME@b4@n64``; none at batch 1 and no length sweep) and
        ``base_name`` the name without it, as served load-level rows."""
        gen = self.generation
        info = dict(model_info, batch_size=batch_size, setting="latency" if batch_size == 1 else "throughput")
        if gen.is_length_sweep:
            info["new_tokens"] = new_tokens
        suffix = gen.level_suffix(batch_size, new_tokens)
        if suffix:
            info["base_name"] = model_info.get("name")
            info["name"] = f"{model_info.get('name')}{suffix}"
        return info

    def rows(self, ctx) -> Iterator[tuple[ResultRow, list[dict]]]:
        wanted = getattr(ctx, "wanted", lambda key: True)  # False: kept from an earlier session (--resume)
        if is_served(ctx.loaded.spec.backend):
            from llmbench.served_rows import level_model_info, run_level

            for level in self.levels:
                if wanted((level_model_info(ctx.model_info, level)["name"], self.task.name)):
                    yield run_level(ctx, self.task, self.examples(), level)
            return
        if self.levels != [LoadLevel()] and not getattr(ctx, "load_noted", False):
            ctx.load_noted = True  # once per model
            ctx.progress.note(f"{ctx.loaded.name}: in-process, so it runs its latency setting only (one batch at a "
                              "time); --concurrency and --rate apply to served models")
        gen = self.generation
        if not gen.is_sweep:
            yield run_task(ctx, self.task, self.examples(), max_new=gen.new_tokens[0] if gen.new_tokens else None)
            return
        if gen.is_batch_sweep and 1 not in gen.batch_levels and not getattr(ctx, "sweep_noted", False):
            ctx.sweep_noted = True  # once per model
            ctx.progress.note(f"{ctx.loaded.name}: batch 1 is not among the --batch-size levels, so no level's answers "
                              "are compared with the latency setting's (add 1 to compare them)")
        reference: dict = {}  # batch 1's answers by example index, per generation budget
        for b, n in self.sweep():
            info = self.level_info(ctx.model_info, b, n)
            if not wanted((info["name"], self.task.name)):  # kept: batch 1's answers are in its samples
                if b == 1:
                    kept = [s for s in getattr(ctx, "samples", []) if (s["model"], s["task"]) == (info["name"],
                                                                                                 self.task.name)]
                    reference[n] = {line["index"]: line["prediction"] for line in kept} if kept else None
                continue
            row, lines = run_task(ctx, self.task, self.examples(), b, info, n)
            if b == 1:
                reference[n] = {line["index"]: line["prediction"] for line in lines} if lines else None
            elif reference.get(n) is not None and lines:
                compared = answers_compared(reference[n], lines)
                row.model["answers_vs_batch1"] = compared
                if compared["differ"]:
                    shown = ", ".join(map(str, compared["indices"][:10]))
                    more = ", ..." if compared["differ"] > 10 else ""
                    ctx.progress.note(f"{row.model['name']} / {self.task.name}: greedy answers differ from batch 1's "
                                      f"on {compared['differ']} of {compared['of']} prompts (index {shown}{more}): "
                                      "padding and batching changed them; each level is scored from its own")
            yield row, lines


def answers_compared(reference: dict[int, str], lines: list[dict]) -> dict:
    """``{differ, of, indices}``: the prompts (example indices) whose answer differs from ``reference``'s."""
    both = [line for line in lines if line["index"] in reference]
    indices = [line["index"] for line in both if line["prediction"] != reference[line["index"]]]
    return {"differ": len(indices), "of": len(both), "indices": indices}


def warm_up(ctx, prompts: list[str], params: GenerateParams) -> float:
    """Not counted: ``--warmup`` generations of the first batch (allocators, kernels, the KV cache grown to
    full length on CUDA), and as many of the last batch where it is smaller (a compiled decode step compiles
    again for a new batch size: that must not fall in the window); then on CUDA one prefill of every measured
    batch (``warmup_prefills``). Returns its seconds (``latency.warmup_s``: a compiled model's recompilations
    for this level's shapes are in it)."""
    config, device, bs = ctx.config, ctx.device, params.batch_size
    t0 = time.perf_counter()
    short = GenerateParams(warmup_new_tokens(device, params.max_new_tokens), params.stop, bs, params.seed)
    rest = len(prompts) % bs if len(prompts) > bs else 0
    for _ in range(config.warmup):
        ctx.backend.generate(ctx.loaded, prompts[:bs], short, sync=ctx.sync)
        if rest:
            ctx.backend.generate(ctx.loaded, prompts[-rest:], short, sync=ctx.sync)
    if warmup_prefills(device, config.warmup):
        one = GenerateParams(1, params.stop, bs, params.seed)
        for start in range(0, len(prompts), bs):
            ctx.backend.generate(ctx.loaded, prompts[start:start + bs], one, sync=ctx.sync)
    return time.perf_counter() - t0


def run_task(ctx, task, examples, batch_size: int | None = None, model_info: dict | None = None,
             max_new: int | None = None) -> tuple[ResultRow, list[dict]]:
    """One row at ``batch_size`` (default: --batch-size) with generation budget ``max_new`` (default: the task's
    own, capped by --max-new-tokens), named and described by ``model_info`` (default: the model's own entry)."""
    from llmbench.meters.bandwidth import row_roofline
    from llmbench.meters.energy import EnergyMeter, per_unit
    from llmbench.meters.memory import MemoryMeter
    from llmbench.metrics import evaluate

    loaded, backend, device, progress = ctx.loaded, ctx.backend, ctx.device, ctx.progress
    gen = ctx.config.generation
    bs = batch_size or gen.batch_size
    model_info = dict(model_info or ctx.model_info)
    name = model_info["name"]
    max_new = gen.budget(task.max_new_tokens, max_new)
    params = GenerateParams(max_new, tuple(task.stop), bs, gen.seed)
    prompts = [backend.render(loaded, ex.messages, ex.prompt) for ex in examples]
    progress.task_started(name, task.name, len(prompts))
    try:
        warmup_s = warm_up(ctx, prompts, params)
        mem, energy = MemoryMeter(device), EnergyMeter(device, sync=ctx.sync)
        generations = []
        window_start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stack.enter_context(mem.measure(task.name))
            stack.enter_context(energy.measure(task.name))
            for start in range(0, len(prompts), bs):
                batch = prompts[start:start + bs]
                generations.extend(backend.generate(loaded, batch, params, sync=ctx.sync))
                progress.advance(len(batch))
        window_s = time.perf_counter() - window_start
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        error = error_text(exc)
        progress.note(f"{name} / {task.name}: failed: {error}")
        if "out of memory" in error.lower():
            _free_cuda(device)
        return failed_row(model_info, task, error), []

    # Generations are done: from here on nothing may lose them. A scoring error (a reference a metric cannot
    # read, a metric bug) makes this row `failed`, its samples are still written, and the run goes on.
    lines = sample_lines(name, task, examples, generations)
    if bs > 1:  # answers of one batch share ttft_s and e2e_s: readers resample whole batches
        for i, line in enumerate(lines):
            line["batch"] = i // bs
    task_info = task_entry(task, len(examples), max_new)
    measured: dict = {}
    try:
        # the meters' readings first: a summary or a metric that fails below must not take them with it
        total_tokens = sum(g.new_tokens for g in generations)
        measured["memory"] = {"weights_bytes": loaded.weights_bytes,
                              "load_peak_rss_bytes": ctx.load_memory.get("peak_rss_bytes"), **mem.result()}
        measured["energy"] = per_unit(energy.result(), len(generations), total_tokens)
        latency = latency_summary(generations, bs, gen.seed, LATENCY_METHOD)
        latency["window_s"] = window_s  # the whole metered window: meters started and stopped, every batch
        latency["warmup_s"] = warmup_s  # before the window, never counted
        measured["latency"] = latency
        latency["roofline"] = row_roofline(loaded, generations, latency, device, ctx.peak)  # llmbench.meters.bandwidth
        preds = [g.text for g in generations]
        refs = [list(ex.references) for ex in examples]
        quality, per_sample = evaluate(list(task.metrics), preds, refs, seed=gen.seed)
    except Exception as exc:  # not KeyboardInterrupt: Ctrl-C still stops the run
        error = scoring_error(exc)
        progress.note(f"{name} / {task.name}: {error}")
        # what was measured (latency, memory, energy) stays in the row; quality is what is missing
        row = ResultRow(model=model_info, task=task_info, status="failed", error=error, **measured)
        return row, lines
    for line, scores in zip(lines, per_sample):
        line["scores"] = scores
    return ResultRow(model=model_info, task=task_info, quality=quality, **measured), lines


def _free_cuda(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
