"""`llmbench run`: models x tasks -> generations under the meters -> rows -> a run record.

Data flow: RunConfig -> preflight (every task's data and every model's source, before anything is
measured) -> for each model: load (metered) -> for each task: warm-up, generate under the meters,
score -> ResultRow -> run.json rewritten after each row. No click or rich here: progress goes to a
callback object.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmbench.config import ModelSpec, RunConfig
from llmbench.errors import UserError
from llmbench.records import ResultRow, RunRecord, capture_environment, create_run_dir, now_iso, store
from llmbench.stats import Summary

CPU_WARMUP_NEW_TOKENS = 8  # decode steps per warm-up generation on the CPU


def warmup_new_tokens(device: str, max_new: int) -> int:
    """Decode steps (at most) per warm-up generation of llmbench's own tasks. On CUDA the full length: on an
    H200 (docs/gpu.md) a warm-up of 8 steps left the first measured sample 2-3.5x slower per token than the
    rest, likely while the KV cache and the allocator's pool grew to full size. On the CPU (`make demo`, 8 model
    x task rows) the first sample's TPOT was at most 1.3x the others', within their spread, and a few steps
    keep short runs short."""
    return max_new if device.startswith("cuda") else min(max_new, CPU_WARMUP_NEW_TOKENS)


def warmup_prefills(device: str, warmup: int) -> bool:
    """Whether, on top of the warm-up generations, every measured batch is prefilled once (one new token)
    before the metered window. On CUDA: on an H200 (docs/gpu.md) the first prefill of each new prompt length
    took 60-90 ms where a repeat of that length took 15 ms (Gemma-2B shapes), in llmbench and in a bare
    generate loop alike, so TTFT measured each prompt's one-off cost for its shape, not the model. A repeated
    prefill shares nothing else with the measured one: transformers' generate keeps no cache across calls."""
    return warmup > 0 and device.startswith("cuda")


def _warm_up(backend, loaded, prompts: list[str], task, max_new: int, config, device: str, sync) -> None:
    """Not counted: ``config.warmup`` generations of the first batch (allocators, kernels, the KV cache grown
    to full length on CUDA), then on CUDA one prefill of every measured batch (see ``warmup_prefills``)."""
    gen = config.generation
    for _ in range(config.warmup):
        backend.generate(loaded, prompts[: gen.batch_size], warmup_new_tokens(device, max_new), task.stop,
                         gen.batch_size, gen.seed, sync=sync)
    if warmup_prefills(device, config.warmup):
        for start in range(0, len(prompts), gen.batch_size):
            backend.generate(loaded, prompts[start:start + gen.batch_size], 1, task.stop, gen.batch_size,
                             gen.seed, sync=sync)


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws it with rich)."""

    def model_started(self, name: str, index: int, total: int) -> None: ...
    def task_started(self, model: str, task: str, n: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def row_done(self, row: ResultRow) -> None: ...
    def note(self, message: str) -> None: ...


class _Quiet:
    def model_started(self, *a) -> None: ...
    def task_started(self, *a) -> None: ...
    def advance(self, *a) -> None: ...
    def row_done(self, *a) -> None: ...
    def note(self, *a) -> None: ...


@dataclass
class PreparedModel:
    spec: ModelSpec
    source: str  # what the backend loads (a converted cache directory for embedded aliases)
    embedded: bool = False


@dataclass
class RunResult:
    record: RunRecord
    path: Path
    samples: list[dict] = field(default_factory=list)
    interrupted: bool = False


def preflight_model(spec: ModelSpec) -> PreparedModel:
    """Check a model spec can be resolved, without loading weights. Unknown models raise UserError."""
    from llmbench.models.embedded import EMBEDDED

    if spec.source in EMBEDDED:
        emb = EMBEDDED[spec.source]
        # the alias is one fixed file inside a package: there is no other revision or GGUF file to pick
        for key, value in (("revision", spec.revision), ("gguf_file", spec.gguf_file)):
            if value is not None:
                raise UserError(
                    f"model {spec.source}: {key}= does not apply to an embedded alias (it is a fixed model shipped "
                    f"in the {emb.package} package); remove {key}={value}"
                )
        if not emb.installed():
            raise UserError(f"model {spec.source}: its package is not installed ({emb.install})")
        return PreparedModel(spec, spec.source, embedded=True)
    path = Path(spec.source).expanduser()
    if path.exists():
        if not path.is_dir():
            hint = f" (for a GGUF file use {path.parent},gguf_file={path.name})" if path.suffix == ".gguf" else ""
            raise UserError(f"model {spec.source}: is a file, not a model directory{hint}")
        if spec.gguf_file:
            if not (path / spec.gguf_file).is_file():
                raise UserError(f"model {spec.source}: gguf_file {spec.gguf_file} not found in {path}")
        elif not (path / "config.json").is_file():
            raise UserError(f"model {spec.source}: directory has no config.json (and no gguf_file= given)")
        if spec.revision is not None:
            raise UserError(f"model {spec.source}: revision= applies to hub ids only, not to a local directory")
        return PreparedModel(spec, str(path))
    parts = spec.source.split("/")
    if len(parts) != 2 or not all(parts):
        import difflib

        close = difflib.get_close_matches(spec.source, list(EMBEDDED), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(
            f"unknown model {spec.source!r}: not an embedded alias ({', '.join(EMBEDDED)}), "
            f"not a local directory, not a hub id (owner/name){hint}"
        )
    _check_hub_id(spec)
    return PreparedModel(spec, spec.source)


def _check_hub_id(spec: ModelSpec) -> None:
    """Resolve a hub id's config (one small file, cached) so a typo fails before anything is measured."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(
            spec.source, revision=spec.revision, trust_remote_code=spec.trust_remote_code,
            **({"gguf_file": spec.gguf_file} if spec.gguf_file else {}),
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {spec.source}: cannot resolve it on the hub or in the local cache ({first})") from None


def _failed_row(model: dict, task, error: str) -> ResultRow:
    return ResultRow(
        model=model, task={"name": task.name, "kind": task.kind, "n": 0, "source": task.source_description},
        status="failed", error=error,
    )


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def run(config: RunConfig, backend=None, progress: Progress | None = None) -> RunResult:
    """Execute a run; returns the record (also written under config.out_dir)."""
    from llmbench.tasks import load_catalog

    progress = progress or _Quiet()
    catalog = load_catalog(list(config.tasks_dirs))
    tasks = catalog.resolve(list(config.tasks), config.limit) if config.tasks else []
    task_examples = {t.name: t.examples() for t in tasks}  # loads data now: a missing file fails early
    prepared = [preflight_model(spec) for spec in config.models]
    if config.lm_eval_tasks:  # lm-eval installed and every task known, before any model is loaded
        from llmbench.lmeval.bridge import preflight as lm_eval_preflight

        lm_eval_preflight(config)

    if backend is None:
        from llmbench.models.hf import HFBackend

        backend = HFBackend()
    from llmbench.meters.gpu import cuda_sync, gpu_info
    from llmbench.models.hf import resolve_device

    device = resolve_device(config.device)
    gen = config.generation
    record = RunRecord(
        run_id=create_run_dir(config.out_dir, config.name),  # created exclusively: a same-second run gets -2
        created_at=now_iso(),
        command=config.command,
        environment=capture_environment(device, gpu_info(device)),
        settings={
            "batch_size": gen.batch_size,
            "setting": "latency" if gen.batch_size == 1 else "throughput",
            "max_new_tokens": gen.max_new_tokens,
            "seed": gen.seed,
            "warmup": config.warmup,
            "warmup_full_length": config.warmup > 0 and device.startswith("cuda"),
            "warmup_prefills": warmup_prefills(device, config.warmup),
            "limit": config.limit,
            "device": device,
            "chat_template": gen.use_chat_template,
            "tasks": [t.name for t in tasks],
            "lm_eval_tasks": list(config.lm_eval_tasks),
        },
    )
    run_dir = Path(config.out_dir) / record.run_id
    samples: list[dict] = []
    path = store.write_run(record, config.out_dir)
    sync = cuda_sync(device)
    interrupted = False
    try:
        for i, pm in enumerate(prepared):
            progress.model_started(pm.spec.name, i + 1, len(prepared))
            _run_model(pm, tasks, task_examples, config, backend, device, sync, record, samples, progress)
            store.write_run(record, config.out_dir)
            store.write_samples(run_dir, samples)
    except KeyboardInterrupt:
        interrupted = True
        record.settings["interrupted"] = True
    finally:
        store.write_run(record, config.out_dir)
        store.write_samples(run_dir, samples)
    return RunResult(record, path, samples, interrupted)


def _run_model(pm, tasks, task_examples, config, backend, device, sync, record, samples, progress) -> None:
    from llmbench.meters.memory import MemoryMeter

    spec = pm.spec
    model_info = {"spec": spec.raw or spec.source, "name": spec.name, "parameters": None,
                  "dtype": spec.dtype, "device": device}
    load_mem = MemoryMeter(device)
    t0 = time.perf_counter()
    try:
        with load_mem.measure("load"):
            source = pm.source
            prepare_s = 0.0
            if pm.embedded:
                from llmbench.models.embedded import convert_in_subprocess, converted_dir, is_converted

                if not is_converted(pm.source):
                    progress.note(f"{pm.source}: first use, converting the packaged GGUF once into "
                                  f"{converted_dir(pm.source)} (later runs load it in seconds)")
                source = str(convert_in_subprocess(pm.source))
                prepare_s = time.perf_counter() - t0
            loaded = backend.load(spec, device, source=source)
    except KeyboardInterrupt:
        raise
    except UserError:
        raise
    except BaseException as exc:  # OOM, bad weights, missing files...: record and go on
        error = _error_text(exc)
        progress.note(f"{spec.name}: failed to load: {error}")
        for task in tasks:
            record.rows.append(_failed_row(model_info, task, f"load failed: {error}"))
            progress.row_done(record.rows[-1])
        return
    load_s = time.perf_counter() - t0
    load_memory = load_mem.result()
    model_info.update(
        parameters=loaded.parameters, dtype=loaded.dtype, device=loaded.device, source=loaded.source,
        load_time_s=load_s, prepare_s=prepare_s, chat_template=bool(
            (spec.chat_template if spec.chat_template is not None else config.generation.use_chat_template)
            and loaded.has_chat_template),
    )
    loaded.use_chat_template = bool(model_info["chat_template"])
    try:
        for task in tasks:
            row, rows_samples = _run_task(loaded, task, task_examples[task.name], config, backend, device,
                                          sync, model_info, load_memory, progress)
            record.rows.append(row)
            samples.extend(rows_samples)
            progress.row_done(row)
            store.write_run(record, config.out_dir)
            store.write_samples(Path(config.out_dir) / record.run_id, samples)
        if config.lm_eval_tasks:
            from llmbench.lmeval.bridge import run_lm_eval

            for row, row_samples in run_lm_eval(loaded, backend, config, device, sync, model_info, load_memory,
                                                progress):
                record.rows.append(row)
                samples.extend(row_samples)
                progress.row_done(row)
                store.write_run(record, config.out_dir)
                store.write_samples(Path(config.out_dir) / record.run_id, samples)
    finally:
        backend.unload(loaded)


def _run_task(loaded, task, examples, config, backend, device, sync, model_info, load_memory, progress):
    from llmbench.meters.energy import EnergyMeter, per_unit
    from llmbench.meters.memory import MemoryMeter
    from llmbench.metrics import evaluate

    gen = config.generation
    max_new = min(gen.max_new_tokens, task.max_new_tokens) if gen.max_new_tokens else task.max_new_tokens
    prompts = [backend.render(loaded, ex.messages, ex.prompt) for ex in examples]
    progress.task_started(loaded.name, task.name, len(prompts))
    try:
        _warm_up(backend, loaded, prompts, task, max_new, config, device, sync)
        mem, energy = MemoryMeter(device), EnergyMeter(device, sync=sync)
        generations = []
        window_start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stack.enter_context(mem.measure(task.name))
            stack.enter_context(energy.measure(task.name))
            for start in range(0, len(prompts), gen.batch_size):
                batch = prompts[start:start + gen.batch_size]
                generations.extend(
                    backend.generate(loaded, batch, max_new, task.stop, gen.batch_size, gen.seed, sync=sync)
                )
                progress.advance(len(batch))
        window_s = time.perf_counter() - window_start
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        error = _error_text(exc)
        progress.note(f"{loaded.name} / {task.name}: failed: {error}")
        if "out of memory" in error.lower():
            _free_cuda(device)
        return _failed_row(model_info, task, error), []

    # Generations are done: from here on nothing may lose them. A scoring error (a reference a metric cannot
    # read, a metric bug) makes this row `failed`, its samples are still written, and the run goes on.
    sample_lines = [
        {"model": loaded.name, "task": task.name, "index": ex.index, "prompt": g.prompt, "prediction": g.text,
         "references": list(ex.references), "scores": {}, "ttft_s": g.ttft_s, "tpot_s": g.tpot_s,
         "e2e_s": g.e2e_s, "new_tokens": g.new_tokens}
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
                              "load_peak_rss_bytes": load_memory.get("peak_rss_bytes"), **mem.result()}
        measured["energy"] = per_unit(energy.result(), len(generations), total_tokens)
        latency = _latency(generations, gen.batch_size, gen.seed)
        latency["window_s"] = window_s  # the whole metered window: meters started and stopped, every batch
        measured["latency"] = latency
        preds = [g.text for g in generations]
        refs = [list(ex.references) for ex in examples]
        quality, per_sample = evaluate(list(task.metrics), preds, refs, seed=gen.seed)
    except Exception as exc:  # not KeyboardInterrupt: Ctrl-C still stops the run
        reason = " ".join(str(exc).split()) if isinstance(exc, UserError) else _error_text(exc)
        error = f"scoring failed: {reason}"
        progress.note(f"{loaded.name} / {task.name}: {error}")
        # what was measured (latency, memory, energy) stays in the row; quality is what is missing
        row = ResultRow(model=dict(model_info), task=task_info, status="failed", error=error, **measured)
        return row, sample_lines
    for line, scores in zip(sample_lines, per_sample):
        line["scores"] = scores
    row = ResultRow(model=dict(model_info), task=task_info, quality=quality, **measured)
    return row, sample_lines


def _latency(generations, batch_size: int, seed: int) -> dict:
    """Per-sample summaries; throughput from batches so batched samples are not double-counted."""
    batches = [generations[i:i + batch_size] for i in range(0, len(generations), batch_size)]
    decode_tokens = sum(max(0, sum(g.new_tokens for g in b) - len(b)) for b in batches)
    decode_s = sum(b[0].e2e_s - b[0].ttft_s for b in batches if b[0].ttft_s is not None)
    total_tokens = sum(g.new_tokens for g in generations)
    wall = sum(b[0].e2e_s for b in batches)
    # answers of one batch share TTFT and end time: their CIs resample batches (None: each answer its own)
    groups = [i // batch_size for i in range(len(generations))] if batch_size > 1 else None
    return {
        "setting": "latency" if batch_size == 1 else "throughput",
        "batch_size": batch_size,
        "method": "perf_counter+streamer (device synchronised)",
        "ttft_s": Summary.from_values([g.ttft_s for g in generations], seed, groups).to_dict(),
        "tpot_s": Summary.from_values([g.tpot_s for g in generations], seed, groups).to_dict(),
        "e2e_s": Summary.from_values([g.e2e_s for g in generations], seed, groups).to_dict(),
        "new_tokens": Summary.from_values([g.new_tokens for g in generations], seed, groups).to_dict(),
        # no decode step (every answer one token long) is no throughput measured, not a rate of 0
        "tokens_per_s": decode_tokens / decode_s if decode_tokens > 0 and decode_s > 0 else None,
        "e2e_tokens_per_s": total_tokens / wall if wall > 0 else None,
        "total_new_tokens": total_tokens,
        "generate_s": wall,
    }


def _free_cuda(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def format_exception(exc: BaseException) -> str:
    """Full traceback text, for --verbose error reports."""
    return "".join(traceback.format_exception(exc))
