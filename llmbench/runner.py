"""`llmbench run`, orchestration only: models x row producers -> rows -> a run record.

Data flow: RunConfig -> preflight (every row producer: task data, lm-eval task names; every model through
its backend, before anything is measured) -> for each model: the registry's backend loads it (metered) ->
each row producer yields rows (our tasks: llmbench.task_rows, one per load level of a served model and per
--batch-size level of an in-process one; lm-eval: llmbench.lmeval.rows) -> each row's samples appended to
samples.jsonl, then run.json rewritten (llmbench.records.writer). SIGTERM and SIGHUP stop a run like Ctrl-C
(llmbench.interrupts). No click or rich here: progress goes to a callback object.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

from llmbench.config import ModelSpec, RunConfig
from llmbench.errors import RecordWriteError, UserError, error_text
from llmbench.meters.timing import warmup_prefills
from llmbench.models import BACKENDS, is_served
from llmbench.models.base import LoadedModel, PreparedModel
from llmbench.records import ResultRow, RunRecord, capture_environment, create_run_dir, now_iso


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
class RunResult:
    record: RunRecord
    path: Path
    samples: list[dict] = field(default_factory=list)
    interrupted: bool = False
    signal: str | None = None  # SIGINT, SIGTERM or SIGHUP when interrupted


def preflight_model(spec: ModelSpec, backend=None) -> PreparedModel:
    """Check a model spec can be resolved by its backend, without loading weights (UserError if not)."""
    return (backend or BACKENDS.get(spec.backend)()).preflight(spec)


@dataclass
class ModelContext:
    """What a row producer needs about the model being measured."""

    loaded: LoadedModel
    backend: object
    config: RunConfig
    device: str
    sync: object
    model_info: dict
    load_memory: dict
    progress: Progress
    wanted: Callable[[tuple[str, str]], bool] = lambda key: True  # False: a row kept from an earlier session
    samples: list[dict] = field(default_factory=list)  # the lines written so far (kept ones included)
    peak: dict | None = None  # the run's peak bandwidth (llmbench.meters.bandwidth), for every row's roofline


class RowProducer(Protocol):
    """A source of result rows for one loaded model: llmbench's own tasks (llmbench.task_rows) and lm-eval
    tasks (llmbench.lmeval.rows) implement it."""

    def preflight(self) -> None:
        """Check everything this producer needs (data, libraries, task names) before any model is loaded."""
        ...

    def rows(self, ctx: ModelContext) -> Iterator[tuple[ResultRow, list[dict]]]:
        """(row, samples.jsonl lines) one at a time, so the runner writes each as soon as it is finished; a
        row whose key ``ctx.wanted`` refuses (kept from an earlier session by --resume) is not measured."""
        ...

    def failed_rows(self, model_info: dict, error: str) -> list[ResultRow]:
        """The rows this producer would have made, as failed (the model did not load); their keys are also
        the run's plan (``missing`` in the record)."""
        ...


def producers_for(config: RunConfig, catalog) -> list[RowProducer]:
    """Our YAML tasks, then the lm-eval tasks, as row producers."""
    from llmbench.task_rows import TaskRows

    tasks = catalog.resolve(list(config.tasks), config.limit) if config.tasks else []
    gen = config.generation
    producers: list[RowProducer] = [TaskRows(task, config.load.levels(), gen) for task in tasks]
    if config.lm_eval_tasks:
        from llmbench.lmeval.rows import LmEvalRows

        producers.append(LmEvalRows(config))
    return producers


def _run_device(config: RunConfig, devices: list[str]) -> str:
    """The run's device in its settings: the first in-process model's, else what --device said."""
    return next((d for d in devices if d in ("cpu", "mps") or d.startswith("cuda")), devices[0] if devices
                else config.device)


def run(config: RunConfig, backend=None, progress: Progress | None = None, resume=None) -> RunResult:
    """Execute a run; returns the record (also written under config.out_dir). Each model runs on the backend
    its spec names; ``backend`` replaces that choice for every model (tests). ``resume``
    (llmbench.records.resume.Resume) finishes an interrupted run in its own directory: its kept rows stay,
    every other planned row is measured here, whole."""
    from llmbench.tasks import load_catalog

    progress = progress or _Quiet()
    catalog = load_catalog(list(config.tasks_dirs))
    producers = producers_for(config, catalog)
    for producer in producers:  # every task's data, lm-eval and its task names, before any model is loaded
        producer.preflight()
    backends = [backend or BACKENDS.get(spec.backend)() for spec in config.models]
    for b in backends:  # a backend that takes run-wide settings (served: load levels, timeouts, telemetry)
        if hasattr(b, "configure"):
            b.configure(config)
    prepared = [b.preflight(spec) for b, spec in zip(backends, config.models)]
    devices = [b.resolve_device(config.device) for b in backends]

    from llmbench.meters.gpu import cuda_sync, gpu_info

    device = _run_device(config, devices)
    environment = capture_environment(device, gpu_info(device))
    plan = [_planned_keys(producer, pm.spec) for pm in prepared for producer in producers]
    if resume is not None:
        resume.check_environment(environment)  # UserError unless the same versions and machine (or forced)
        resume.check_examples(producers)  # ... and the same examples of every task kept rows ran
        record = resume.record
    else:
        record = _new_record(config, producers, backends, device, environment)
    from llmbench.meters.bandwidth import environment_entries, peak_bandwidth, recorded_peak

    # the roofline's peak, measured once per run: a resumed session on the same machine keeps its record's (every
    # row of a record against one peak); one forced onto another machine measures its own, kept in its session
    peak = recorded_peak(record.environment, device) if resume and not resume.environment_differs else None
    if peak is None:
        peak = peak_bandwidth(device)
        if resume is None:
            record.environment.update(environment_entries(peak))
        else:
            resume.peak = environment_entries(peak)
    from llmbench.interrupts import handled
    from llmbench.records.writer import RecordWriter

    interrupted = None
    with handled() as signals:
        if resume is None:
            writer = RecordWriter(record, config.out_dir, plan, hold=signals.hold)
        else:
            skip = {k for keys in plan for k in keys} - resume.rerun
            writer = RecordWriter(record, config.out_dir, plan, resume.kept, resume.kept_samples, skip, signals.hold)
        try:
            with signals.hold():  # a signal now stops the run after its first write, like any other
                if resume is None:
                    writer.start(config.command)
                else:
                    writer.start(resume.command or config.command, **resume.session_label())
            for i, (pm, b, dev) in enumerate(zip(prepared, backends, devices)):
                units = list(range(i * len(producers), (i + 1) * len(producers)))
                todo = [(u, p) for u, p in zip(units, producers) if writer.unit_wanted(u)]
                for u in units:
                    if not writer.unit_wanted(u):
                        writer.unit_done(u)  # every row kept: the model is not even loaded for it
                if not todo:
                    continue
                progress.model_started(pm.spec.name, i + 1, len(prepared))
                _run_model(pm, b, dev, cuda_sync(dev), todo, config, writer, progress, peak)
            with signals.hold(deliver=False):
                writer.finish()
        except KeyboardInterrupt as exc:
            interrupted = getattr(exc, "name", "SIGINT")
            record.settings["interrupted"] = True
            with signals.hold(deliver=False):
                writer.stop(f"interrupted ({interrupted})")
        except RecordWriteError:
            with contextlib.suppress(RecordWriteError), signals.hold(deliver=False):
                writer.stop("write failed")  # best effort: the disk may still be full
            raise
        except BaseException:
            with contextlib.suppress(RecordWriteError), signals.hold(deliver=False):
                writer.stop("failed")
            raise
    return RunResult(record, record.path, writer.samples, interrupted is not None, interrupted)


def _planned_keys(producer: RowProducer, spec: ModelSpec) -> list[tuple[str, str]]:
    """The row keys ``producer`` gives for the model: those of the rows it would record, failed."""
    info = {"name": spec.name, **({"backend": spec.backend} if spec.backend != "hf" else {})}
    return [row.key for row in producer.failed_rows(info, "")]


def _new_record(config: RunConfig, producers, backends, device: str, environment: dict) -> RunRecord:
    gen = config.generation
    task_names = [p.task.name for p in producers if hasattr(p, "task")]
    record = RunRecord(
        run_id=create_run_dir(config.out_dir, config.name),  # created exclusively: a same-second run gets -2
        created_at=now_iso(),
        command=config.command,
        environment=environment,
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
            "tasks": task_names,
            "lm_eval_tasks": list(config.lm_eval_tasks),
        },
    )
    if gen.is_batch_sweep:  # a sweep: settings.batch_size is its first level, each row's model entry its own
        record.settings["batch_sizes"] = list(gen.batch_levels)
    if gen.new_tokens:  # every task's generation budget (one row per level in a length sweep)
        record.settings["new_tokens"] = list(gen.new_tokens)
    if any(is_served(spec.backend) for spec in config.models) or not config.load.is_default:
        record.settings["load"] = config.load.to_settings()
    return record


def _run_model(pm: PreparedModel, backend, device: str, sync, todo: list[tuple[int, RowProducer]],
               config: RunConfig, writer, progress: Progress, peak: dict | None = None) -> None:
    """One model's units (``todo``: (unit, producer) pairs this session measures), each row written by
    ``writer`` as soon as it is finished."""
    from llmbench.meters.memory import MemoryMeter

    spec = pm.spec
    model_info = {"spec": spec.raw or spec.source, "name": spec.name, "parameters": None,
                  "dtype": spec.option("dtype", "auto"), "device": device}
    if spec.backend != "hf":
        model_info["backend"] = spec.backend
    load_mem = MemoryMeter(device)
    t0 = time.perf_counter()
    try:
        with load_mem.measure("load"):
            loaded = backend.load(pm, device, progress.note)
    except KeyboardInterrupt:
        raise
    except UserError:
        raise
    except BaseException as exc:  # OOM, bad weights, missing files...: record and go on
        error = error_text(exc)
        progress.note(f"{spec.name}: failed to load: {error}")
        for unit, producer in todo:
            for row in producer.failed_rows(model_info, f"load failed: {error}"):
                if writer.wanted(row.key):
                    writer.add(unit, row, [])
                    progress.row_done(row)
            writer.unit_done(unit)
        return
    load_s = time.perf_counter() - t0
    model_info.update(
        parameters=loaded.parameters, dtype=loaded.dtype, device=loaded.device, source=loaded.source,
        load_time_s=load_s, prepare_s=loaded.prepare_s, chat_template=bool(
            (spec.chat_template if spec.chat_template is not None else config.generation.use_chat_template)
            and loaded.has_chat_template),
        **loaded.info,
    )
    loaded.use_chat_template = bool(model_info["chat_template"])
    ctx = ModelContext(loaded, backend, config, device, sync, model_info, load_mem.result(), progress,
                       writer.wanted, writer.samples, peak)
    try:
        for unit, producer in todo:
            for row, row_samples in producer.rows(ctx):
                if row.key in writer.kept_keys:  # kept from an earlier session (an lm-eval group's task)
                    continue
                writer.add(unit, row, row_samples)  # samples appended and fsync'd, then run.json
                progress.row_done(row)
            writer.unit_done(unit)
    finally:
        backend.unload(loaded)


def format_exception(exc: BaseException) -> str:
    """Full traceback text, for --verbose error reports."""
    return "".join(traceback.format_exception(exc))
