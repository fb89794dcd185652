"""llmbench's own tasks (YAML + JSONL) as a row producer: for one loaded model, render the prompts, warm up,
generate under the memory and energy meters, score, and return the row with its samples.jsonl lines.

A served model (a backend with ``serves_load_levels``) gives one row per load level (``--concurrency``,
``--rate``), each scored from that level's own answers: llmbench.served_rows."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from llmbench.config import LoadLevel
from llmbench.errors import UserError, error_text
from llmbench.meters.timing import latency_summary, warmup_new_tokens, warmup_prefills
from llmbench.models.base import GenerateParams
from llmbench.records import ResultRow

LATENCY_METHOD = "perf_counter+streamer (device synchronised)"


def failed_row(model: dict, task, error: str) -> ResultRow:
    return ResultRow(
        model=model, task={"name": task.name, "kind": task.kind, "n": 0, "source": task.source_description},
        status="failed", error=error,
    )


class TaskRows:
    """One llmbench task (llmbench.tasks.Task) -> one row per model (per load level for a served model)."""

    def __init__(self, task, levels: list[LoadLevel] | None = None) -> None:
        self.task = task
        self.levels = list(levels or [LoadLevel()])
        self._examples = None

    def preflight(self) -> None:
        self.examples()  # loads the data now: a missing file fails before any model is loaded

    def examples(self):
        if self._examples is None:
            self._examples = self.task.examples()
        return self._examples

    def failed_rows(self, model_info: dict, error: str) -> list[ResultRow]:
        if model_info.get("backend") == "openai":
            from llmbench.served_rows import level_model_info

            return [failed_row(level_model_info(model_info, lv), self.task, error) for lv in self.levels]
        return [failed_row(model_info, self.task, error)]

    def rows(self, ctx) -> Iterator[tuple[ResultRow, list[dict]]]:
        if getattr(ctx.backend, "serves_load_levels", False):
            from llmbench.served_rows import run_level

            for level in self.levels:
                yield run_level(ctx, self.task, self.examples(), level)
            return
        if self.levels != [LoadLevel()] and not getattr(ctx, "load_noted", False):
            ctx.load_noted = True  # once per model
            ctx.progress.note(f"{ctx.loaded.name}: in-process, so it runs its latency setting only (one batch at a "
                              "time); --concurrency and --rate apply to served models")
        yield run_task(ctx, self.task, self.examples())


def warm_up(ctx, prompts: list[str], params: GenerateParams) -> None:
    """Not counted: ``--warmup`` generations of the first batch (allocators, kernels, the KV cache grown to
    full length on CUDA), then on CUDA one prefill of every measured batch (``warmup_prefills``)."""
    config, device, bs = ctx.config, ctx.device, params.batch_size
    short = GenerateParams(warmup_new_tokens(device, params.max_new_tokens), params.stop, bs, params.seed)
    for _ in range(config.warmup):
        ctx.backend.generate(ctx.loaded, prompts[:bs], short, sync=ctx.sync)
    if warmup_prefills(device, config.warmup):
        one = GenerateParams(1, params.stop, bs, params.seed)
        for start in range(0, len(prompts), bs):
            ctx.backend.generate(ctx.loaded, prompts[start:start + bs], one, sync=ctx.sync)


def run_task(ctx, task, examples) -> tuple[ResultRow, list[dict]]:
    from llmbench.meters.bandwidth import row_roofline
    from llmbench.meters.energy import EnergyMeter, per_unit
    from llmbench.meters.memory import MemoryMeter
    from llmbench.metrics import evaluate

    loaded, backend, device, progress = ctx.loaded, ctx.backend, ctx.device, ctx.progress
    gen = ctx.config.generation
    max_new = min(gen.max_new_tokens, task.max_new_tokens) if gen.max_new_tokens else task.max_new_tokens
    params = GenerateParams(max_new, tuple(task.stop), gen.batch_size, gen.seed)
    prompts = [backend.render(loaded, ex.messages, ex.prompt) for ex in examples]
    progress.task_started(loaded.name, task.name, len(prompts))
    try:
        warm_up(ctx, prompts, params)
        mem, energy = MemoryMeter(device), EnergyMeter(device, sync=ctx.sync)
        generations = []
        window_start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stack.enter_context(mem.measure(task.name))
            stack.enter_context(energy.measure(task.name))
            for start in range(0, len(prompts), gen.batch_size):
                batch = prompts[start:start + gen.batch_size]
                generations.extend(backend.generate(loaded, batch, params, sync=ctx.sync))
                progress.advance(len(batch))
        window_s = time.perf_counter() - window_start
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        error = error_text(exc)
        progress.note(f"{loaded.name} / {task.name}: failed: {error}")
        if "out of memory" in error.lower():
            _free_cuda(device)
        return failed_row(ctx.model_info, task, error), []

    # Generations are done: from here on nothing may lose them. A scoring error (a reference a metric cannot
    # read, a metric bug) makes this row `failed`, its samples are still written, and the run goes on.
    sample_lines = [
        {"model": loaded.name, "task": task.name, "index": ex.index, "prompt": g.prompt, "prediction": g.text,
         "references": list(ex.references), "scores": {}, "ttft_s": g.ttft_s, "tpot_s": g.tpot_s,
         "e2e_s": g.e2e_s, "new_tokens": g.new_tokens, **g.extra}
        for ex, g in zip(examples, generations)
    ]
    if gen.batch_size > 1:  # answers of one batch share ttft_s and e2e_s: readers resample whole batches
        for i, line in enumerate(sample_lines):
            line["batch"] = i // gen.batch_size
    task_info = {"name": task.name, "kind": task.kind, "n": len(examples), "source": task.source_description,
                 "max_new_tokens": max_new}
    measured: dict = {}
    try:
        # the meters' readings first: a summary or a metric that fails below must not take them with it
        total_tokens = sum(g.new_tokens for g in generations)
        measured["memory"] = {"weights_bytes": loaded.weights_bytes,
                              "load_peak_rss_bytes": ctx.load_memory.get("peak_rss_bytes"), **mem.result()}
        measured["energy"] = per_unit(energy.result(), len(generations), total_tokens)
        latency = latency_summary(generations, gen.batch_size, gen.seed, LATENCY_METHOD)
        latency["window_s"] = window_s  # the whole metered window: meters started and stopped, every batch
        measured["latency"] = latency
        latency["roofline"] = row_roofline(loaded, generations, latency, device)  # llmbench.meters.bandwidth
        preds = [g.text for g in generations]
        refs = [list(ex.references) for ex in examples]
        quality, per_sample = evaluate(list(task.metrics), preds, refs, seed=gen.seed)
    except Exception as exc:  # not KeyboardInterrupt: Ctrl-C still stops the run
        reason = " ".join(str(exc).split()) if isinstance(exc, UserError) else error_text(exc)
        error = f"scoring failed: {reason}"
        progress.note(f"{loaded.name} / {task.name}: {error}")
        # what was measured (latency, memory, energy) stays in the row; quality is what is missing
        row = ResultRow(model=dict(ctx.model_info), task=task_info, status="failed", error=error, **measured)
        return row, sample_lines
    for line, scores in zip(sample_lines, per_sample):
        line["scores"] = scores
    return ResultRow(model=dict(ctx.model_info), task=task_info, quality=quality, **measured), sample_lines


def _free_cuda(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
