"""Run lm-eval tasks on the model llmbench already loaded, under llmbench's meters.

`run_lm_eval` (called by the runner after our own tasks, once per loaded model) wraps the loaded
transformers model and tokenizer in lm-eval's own HF model class (``HFLM(pretrained=<model instance>,
tokenizer=<tokenizer>)``: no second load) and calls ``lm_eval.simple_evaluate`` once per requested task
name. The wrapper is a subclass of HFLM that only adds measurement around lm-eval's own request methods:

- ``generate_until`` at batch size 1: requests are run one at a time through HFLM's own code; each
  request's TTFT comes from llmbench's timestamping streamer passed to ``model.generate`` and its
  end-to-end time from perf_counter (device synchronised), as for llmbench's own tasks.
  Method: ``perf_counter+streamer per lm-eval request (device synchronised)``.
- larger batches, and ``loglikelihood`` / ``loglikelihood_rolling`` requests (multiple-choice and
  perplexity tasks): one time per task, labelled ``perf_counter per task (...)``, with the mean per request.
- memory and energy: a MemoryMeter / EnergyMeter window around each task's requests (the model work
  only: building prompts and scoring are outside), merged when a task issues several request types.
- warm-up: ``--warmup`` runs of the task's first request before its window, not counted.

Rows are named ``lm-eval:<task>`` so that they never collide with llmbench tasks of the same name; their
quality entries carry lm-eval's values and ``stderr`` (no bootstrap CI: lm-eval computes none).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from llmbench.errors import UserError
from llmbench.lmeval import require_lm_eval
from llmbench.records import ResultRow

ROW_PREFIX = "lm-eval:"
PER_REQUEST_METHOD = "perf_counter+streamer per lm-eval request (device synchronised)"
_DEFAULT_SCALES = {"bleu": "0-100", "chrf": "0-100", "chrf++": "0-100", "ter": "0-100"}
_GEN_TOKEN_KEYS = ("max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens")


# ---------------------------------------------------------------------------------------------------------
# Task names -> a TaskManager (indexing lm-eval's ~15k built-in task files takes seconds: do it once)

_MANAGERS: dict[tuple[str | None, bool], Any] = {}


def _manager(include: Path | None, defaults: bool):
    key = (str(include) if include else None, defaults)
    if key not in _MANAGERS:
        from lm_eval.tasks import TaskManager

        with _quiet_lm_eval():
            _MANAGERS[key] = TaskManager(include_path=str(include) if include else None,
                                         include_defaults=defaults)
    return _MANAGERS[key]


def task_manager(names: Sequence[str], include: Path | str | None = None):
    """A TaskManager that knows every name in ``names``; unknown names are a UserError.

    When every name is defined under ``include``, lm-eval's built-in task folder is not indexed at all
    (it holds thousands of YAML files and takes seconds to index); otherwise both are, the include folder
    taking precedence. Managers are cached for the process.
    """
    require_lm_eval()
    if include is not None:
        include = Path(include)
        if not include.is_dir():
            raise UserError(f"--lm-eval-include {include}: folder not found")
        manager = _manager(include, defaults=False)
        if all(_known(manager, n) for n in names):
            return manager
    manager = _manager(include, defaults=True)
    for name in names:
        if not _known(manager, name):
            import difflib

            close = difflib.get_close_matches(name, manager.all_tasks, n=3, cutoff=0.6)
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            where = f" or under {include}" if include else " (add --lm-eval-include DIR for your own tasks)"
            raise UserError(f"unknown lm-eval task {name!r}: not an lm-eval task, group or tag{where}{hint}")
    return manager


def _known(manager, name: str) -> bool:
    return name in manager.task_index or (name.endswith((".yaml", ".yml")) and Path(name).is_file())


def preflight(config) -> None:
    """Check lm-eval is installed and every ``--lm-eval`` task exists, before any model is loaded."""
    if config.lm_eval_tasks:
        task_manager(config.lm_eval_tasks, config.lm_eval_include)


@contextlib.contextmanager
def _quiet_lm_eval():
    """lm-eval logs at INFO/WARNING, prints bootstrap progress to stdout, draws tqdm bars while it builds
    contexts and bootstraps stderrs, and runs `git describe` in the working folder (which prints "fatal: not a
    git repository" outside one). Keep stdout clean for --json and the console for llmbench's own progress
    (the one-line "bootstrapping for stddev" notes go to stderr: they say what is taking time); llmbench
    records its own git commit in the run's environment."""
    from unittest import mock

    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
            import lm_eval.api.metrics as metrics_mod
            import lm_eval.api.task as task_mod
            import lm_eval.evaluator as evaluator_mod

            if hasattr(task_mod, "tqdm"):
                stack.enter_context(mock.patch.object(task_mod, "tqdm", _silent_tqdm(task_mod.tqdm)))
            if hasattr(metrics_mod, "bootstrap_stderr"):
                stack.enter_context(mock.patch.object(metrics_mod, "bootstrap_stderr",
                                                      _without_bars(metrics_mod.bootstrap_stderr)))
            if hasattr(evaluator_mod, "get_git_commit_hash"):
                stack.enter_context(mock.patch.object(evaluator_mod, "get_git_commit_hash", lambda: None))
            yield
    finally:
        logger.setLevel(level)


def _silent_tqdm(base: type) -> type:
    """A subclass of the tqdm class ``base`` whose bars are disabled (still a class, for isinstance and
    subclassing)."""

    class SilentTqdm(base):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def _without_bars(bootstrap):
    """lm-eval's ``bootstrap_stderr``, its progress bars hidden.

    It takes its bar from ``from tqdm import tqdm`` at call time, so the package's ``tqdm`` is silenced
    during that call only: nothing is imported then that could keep it, and the bootstrap runs in lm-eval's
    main thread."""
    import functools

    @functools.wraps(bootstrap)
    def run(*args, **kwargs):
        from unittest import mock

        import tqdm as tqdm_package

        with mock.patch.object(tqdm_package, "tqdm", _silent_tqdm(tqdm_package.tqdm)):
            return bootstrap(*args, **kwargs)

    return run


# ---------------------------------------------------------------------------------------------------------
# Measurement around lm-eval's request methods


@dataclass
class Timing:
    """One generation request: same fields as llmbench's own samples."""

    ttft_s: float | None
    e2e_s: float
    new_tokens: int

    @property
    def tpot_s(self) -> float | None:
        from llmbench.models.base import time_per_output_token

        return time_per_output_token(self.ttft_s, self.e2e_s, self.new_tokens)


@dataclass
class TaskStats:
    """What the wrapper measured for one lm-eval task."""

    request_types: list[str] = field(default_factory=list)
    requests: int = 0
    busy_s: float = 0.0  # wall time of the request calls, warm-up excluded
    per_request: bool = True  # every request timed on its own
    timings: dict[int, list[Timing]] = field(default_factory=lambda: defaultdict(list))  # doc_id -> timings
    memory: list[dict] = field(default_factory=list)
    energy: list[dict] = field(default_factory=list)
    started: bool = False


class Metering:
    """Runs lm-eval's request batches per task: warm-up, meter windows, per-request timing, progress."""

    def __init__(self, device: str, sync, warmup: int, max_new_tokens: int | None, progress, model_name: str):
        self.device = device
        self.sync = sync or (lambda: None)
        self.warmup = warmup
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.model_name = model_name
        self.stats: dict[str, TaskStats] = defaultdict(TaskStats)
        self.last: Timing | None = None  # set by the wrapped _model_generate

    def run(self, lm, request_type: str, requests: list, call, per_request: bool) -> list:
        """Results of ``call`` for ``requests`` in their order, grouped by task under the meters."""
        from llmbench.meters.energy import EnergyMeter
        from llmbench.meters.memory import MemoryMeter

        results: list = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(str(req.task_name), []).append(i)
        for task, indices in groups.items():
            reqs = [requests[i] for i in indices]
            st = self.stats[task]
            if request_type == "generate_until" and self.max_new_tokens:
                for req in reqs:
                    _cap_new_tokens(req, self.max_new_tokens, lm.max_gen_toks)
            self.progress.task_started(self.model_name, ROW_PREFIX + task, len(reqs))
            if not st.started:
                st.started = True
                for _ in range(self.warmup):  # same shapes as the task's first request, not counted
                    call(reqs[:1])
            if request_type == "generate_until":
                # lm-eval keeps max_length - max_gen_toks of a context and batches by generation settings, so
                # a prompt near the context limit is prefilled at its measured length only approximately
                _prefill_warm_up(call, reqs, self.device, self.warmup, per_request, lm.max_gen_toks)
            st.request_types.append(request_type)
            st.per_request = st.per_request and per_request
            mem, energy = MemoryMeter(self.device), EnergyMeter(self.device, sync=self.sync)
            t0 = time.perf_counter()
            with contextlib.ExitStack() as stack:
                stack.enter_context(mem.measure(task))
                stack.enter_context(energy.measure(task))
                if per_request:
                    out = []
                    for req in reqs:
                        self.last = None
                        out.extend(call([req]))
                        if self.last is not None:
                            st.timings[int(req.doc_id)].append(self.last)
                        self.progress.advance(1)
                else:
                    out = list(call(reqs))
                    self.progress.advance(len(reqs))
            st.busy_s += time.perf_counter() - t0
            st.requests += len(reqs)
            st.memory.append(mem.result())
            st.energy.append(energy.result())
            for i, res in zip(indices, out):
                results[i] = res
        return results


def _prefill_warm_up(call, reqs: list, device: str, warmup: int, per_request: bool, default_max: int) -> None:
    """On CUDA, each generation request once with one new token before the window, as llmbench's own tasks
    do (``runner.warmup_prefills``): the first prefill of a new prompt length pays a one-off cost."""
    import copy

    from llmbench.runner import warmup_prefills

    if not warmup_prefills(device, warmup):
        return
    ones = []
    for req in reqs:
        one = copy.copy(req)  # the request itself keeps its own generation length
        _cap_new_tokens(one, 1, default_max)
        ones.append(one)
    if per_request:
        for one in ones:
            call([one])
    else:
        call(ones)


def _cap_new_tokens(req, cap: int, default: int) -> None:
    """Apply llmbench's --max-new-tokens as a cap on a generation request's own max_gen_toks."""
    context, kwargs = req.args[0], dict(req.args[1])
    current = next((kwargs[k] for k in _GEN_TOKEN_KEYS if k in kwargs), default)
    for k in _GEN_TOKEN_KEYS:
        kwargs.pop(k, None)
    kwargs["max_gen_toks"] = min(int(current), int(cap))
    req.arguments = (context, kwargs, *req.args[2:])


@cache
def _metered_lm_class():
    """HFLM subclass that adds timing and meters around lm-eval's own request methods (defined lazily so
    that importing this module does not import lm_eval)."""
    from lm_eval.models.huggingface import HFLM

    from llmbench.models.hf import _TokenClock

    class MeteredHFLM(HFLM):
        """lm-eval's HF model class on an already-loaded model, measured by llmbench."""

        def __init__(self, metering: Metering, **kwargs) -> None:
            super().__init__(**kwargs)
            self.metering = metering

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            clock = _TokenClock()
            sync = self.metering.sync
            sync()
            t0 = time.perf_counter()
            out = super()._model_generate(context, max_length, stop, streamer=clock, **generation_kwargs)
            sync()
            e2e = time.perf_counter() - t0
            ttft = clock.first_token_at - t0 if clock.first_token_at is not None else None
            new_tokens = int(out.shape[1] - context.shape[1]) if out.dim() == 2 else clock.steps
            self.metering.last = Timing(ttft, e2e, new_tokens)
            return out

        def generate_until(self, requests, disable_tqdm: bool = False):
            per_request = self.batch_size == 1
            return self.metering.run(
                self, "generate_until", requests,
                lambda reqs: HFLM.generate_until(self, reqs, disable_tqdm=True), per_request,
            )

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return self.metering.run(
                self, "loglikelihood", requests,
                lambda reqs: HFLM.loglikelihood(self, reqs, disable_tqdm=True), False,
            )

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            return self.metering.run(
                self, "loglikelihood_rolling", requests,
                lambda reqs: HFLM.loglikelihood_rolling(self, reqs, disable_tqdm=True), False,
            )

    return MeteredHFLM


# ---------------------------------------------------------------------------------------------------------
# The runner's hook


def run_lm_eval(loaded, backend, config, device, sync, model_info, load_memory,
                progress) -> Iterator[tuple[ResultRow, list[dict]]]:
    """Rows (and samples.jsonl lines) for every ``--lm-eval`` task on one loaded model, one task at a time.

    A generator: the runner writes each row as soon as it is finished. A task that fails is recorded as a
    failed row and the others go on; unknown task names and a missing lm-eval are user errors.
    """
    lm_eval_version = require_lm_eval()
    manager = task_manager(config.lm_eval_tasks, config.lm_eval_include)
    import lm_eval

    hf_model, tokenizer = loaded.handle
    gen = config.generation
    metering = Metering(device, sync, config.warmup, gen.max_new_tokens, progress, loaded.name)
    with _quiet_lm_eval():
        lm = _metered_lm_class()(metering, pretrained=hf_model, tokenizer=tokenizer, backend="causal",
                                 batch_size=gen.batch_size)
    chat = bool(model_info.get("chat_template"))
    reported: set[str] = set()
    for name in config.lm_eval_tasks:
        metering.stats.clear()  # each call measures its own tasks (a task may be asked for twice)
        try:
            with _quiet_lm_eval():
                results = lm_eval.simple_evaluate(
                    model=lm, tasks=[name], task_manager=manager, limit=config.limit,
                    batch_size=gen.batch_size, log_samples=True, apply_chat_template=chat,
                    fewshot_as_multiturn=chat,
                )
        except KeyboardInterrupt:
            raise
        except UserError:
            raise
        except BaseException as exc:  # a broken task, an OOM...: record it and go on
            error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}".strip()
            progress.note(f"{loaded.name} / lm-eval {name}: failed: {error}")
            yield ResultRow(model=dict(model_info),
                            task={"name": ROW_PREFIX + name, "kind": "lm-eval", "n": 0,
                                  "source": f"lm-eval {lm_eval_version}"},
                            status="failed", error=error), []
            continue
        for row, lines in rows_from_results(results, metering, loaded, config, model_info, load_memory,
                                            lm_eval_version):
            if row.task["name"] in reported:  # asked for directly and through a group: keep the first
                progress.note(f"{loaded.name}: {row.task['name']} was already reported; not repeated")
                continue
            reported.add(row.task["name"])
            yield row, lines


def rows_from_results(results: dict, metering: Metering, loaded, config, model_info: dict,
                      load_memory: dict, lm_eval_version: str) -> Iterator[tuple[ResultRow, list[dict]]]:
    """One row per leaf task of a ``simple_evaluate`` result, then one per group with its own metrics."""
    leaves = list(results.get("configs", {}))
    for task in leaves:
        stats = [metering.stats[task]] if task in metering.stats else []
        samples = _sample_lines(results, task, loaded.name, metering)
        yield _row(results, task, [task], stats, loaded, config, model_info, load_memory,
                   lm_eval_version), samples
    for group in results.get("group_subtasks", {}):
        if group in leaves or not _quality(results, group, {}):
            continue
        members = _leaves(results, group)
        stats = [metering.stats[t] for t in members if t in metering.stats]
        yield _row(results, group, members, stats, loaded, config, model_info, load_memory,
                   lm_eval_version), []


def _leaves(results: dict, group: str) -> list[str]:
    out: list[str] = []
    for child in results.get("group_subtasks", {}).get(group, []):
        if child in results.get("configs", {}):
            out.append(child)
        else:
            out.extend(_leaves(results, child))
    return out


def _row(results, task, members, stats, loaded, config, model_info, load_memory, lm_eval_version) -> ResultRow:
    from llmbench.meters.energy import per_unit

    n = sum(int((results.get("n-samples", {}).get(t) or {}).get("effective", 0)) for t in members)
    cfg = results.get("configs", {}).get(task, {})
    scales = ((cfg.get("metadata") or {}).get("llmbench_scales") or {}) if isinstance(cfg, dict) else {}
    quality = _quality(results, task, scales)
    for q in quality.values():
        q["n"] = q["n"] or n or None  # lm-eval counts samples per task, not per group
    timings = [t for st in stats for ts in st.timings.values() for t in ts]
    latency = _latency(stats, timings, config.generation.batch_size, config.generation.seed)
    memory = {"weights_bytes": loaded.weights_bytes, "load_peak_rss_bytes": load_memory.get("peak_rss_bytes"),
              **merge_memory([m for st in stats for m in st.memory])}
    total_tokens = sum(t.new_tokens for t in timings) or None
    energy = per_unit(merge_energy([e for st in stats for e in st.energy]), n, total_tokens)
    task_info = {
        "name": ROW_PREFIX + task, "kind": "lm-eval", "n": n,
        "source": f"lm-eval {lm_eval_version}: {task}"
                  + (f" (include {config.lm_eval_include})" if config.lm_eval_include else ""),
        "lm_eval_task": task,
        "output_type": cfg.get("output_type") if isinstance(cfg, dict) else None,
        "num_fewshot": results.get("n-shot", {}).get(task),
        "version": results.get("versions", {}).get(task),
        "chat_template": bool(model_info.get("chat_template")),
    }
    if len(members) > 1 or members != [task]:
        task_info["subtasks"] = members
    gen_kwargs = cfg.get("generation_kwargs") if isinstance(cfg, dict) else None
    if isinstance(gen_kwargs, dict) and "max_gen_toks" in gen_kwargs:
        cap = config.generation.max_new_tokens
        task_info["max_new_tokens"] = min(gen_kwargs["max_gen_toks"], cap) if cap else gen_kwargs["max_gen_toks"]
    return ResultRow(model=dict(model_info), task=task_info, quality=quality, latency=latency,
                     memory=memory, energy=energy)


def _number(value) -> float | None:
    """A finite float, else None (JSON has no inf/NaN, and a record must hold numbers or null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _quality(results: dict, task: str, scales: dict) -> dict:
    """lm-eval's ``metric,filter`` entries as llmbench quality entries (``metric`` or ``metric/filter``)."""
    res = (results.get("results") or {}).get(task) or {}
    hib = (results.get("higher_is_better") or {}).get(task) or {}
    n = int(((results.get("n-samples") or {}).get(task) or {}).get("effective", 0) or 0) or None
    out = {}
    for key, value in res.items():
        if "," not in key:
            continue
        metric, filt = key.split(",", 1)
        if metric.endswith("_stderr") or isinstance(value, bool) or not isinstance(value, (int, float)) \
                or math.isnan(value):
            continue
        name = metric if filt in ("none", "") else f"{metric}/{filt}"
        finite = _number(value)  # an infinite value (e.g. perplexity) is kept as null, with a note
        out[name] = {
            "value": finite,
            "stderr": _number(res.get(f"{metric}_stderr,{filt}")),
            "ci_low": None,
            "ci_high": None,
            "higher_is_better": True if hib.get(metric) is None else bool(hib[metric]),
            "scale": scales.get(metric) or _DEFAULT_SCALES.get(metric),
            "n": n,
            "library": "lm-eval",
        }
        if finite is None:
            out[name]["note"] = f"lm-eval reported {value}"
    return out


def _latency(stats: list[TaskStats], timings: list[Timing], batch_size: int, seed: int) -> dict:
    from llmbench.stats import Summary

    setting = "latency" if batch_size == 1 else "throughput"
    requests = sum(st.requests for st in stats)
    busy = sum(st.busy_s for st in stats)
    types = sorted({t for st in stats for t in st.request_types})
    per_request = bool(stats) and all(st.per_request for st in stats) and types == ["generate_until"]
    out: dict[str, Any] = {
        "setting": setting,
        "batch_size": batch_size,
        "request_types": types,
        "requests": requests,
        "window_s": busy,
        "request_s_mean": busy / requests if requests else None,
    }
    if per_request and timings:
        decode_tokens = sum(max(0, t.new_tokens - 1) for t in timings)
        decode_s = sum(t.e2e_s - t.ttft_s for t in timings if t.ttft_s is not None)
        total_tokens = sum(t.new_tokens for t in timings)
        wall = sum(t.e2e_s for t in timings)
        out.update(
            method=PER_REQUEST_METHOD,
            ttft_s=Summary.from_values([t.ttft_s for t in timings], seed).to_dict(),
            tpot_s=Summary.from_values([t.tpot_s for t in timings], seed).to_dict(),
            e2e_s=Summary.from_values([t.e2e_s for t in timings], seed).to_dict(),
            new_tokens=Summary.from_values([t.new_tokens for t in timings], seed).to_dict(),
            tokens_per_s=decode_tokens / decode_s if decode_tokens > 0 and decode_s > 0 else None,
            e2e_tokens_per_s=total_tokens / wall if wall > 0 else None,
            total_new_tokens=total_tokens,
            generate_s=wall,
        )
    else:
        what = ", ".join(types) or "no"
        out.update(
            method=f"perf_counter per task ({what} requests, batch size {batch_size}; not timed one by one)",
            generate_s=busy,
        )
    return out


def merge_memory(windows: list[dict]) -> dict:
    """One memory result from several windows: the largest peak of each kind, the last end RSS."""
    if not windows:
        return {}
    out = dict(windows[0])
    for w in windows[1:]:
        for key, value in w.items():
            if key == "rss_end_bytes":
                out[key] = value
            elif key.endswith("_bytes") and key != "rss_start_bytes" and isinstance(value, (int, float)):
                prev = out.get(key)
                out[key] = max(prev, value) if isinstance(prev, (int, float)) else value
    if len(windows) > 1:
        out["windows"] = len(windows)
    return out


def merge_energy(windows: list[dict]) -> dict:
    """One energy result from several windows: joules and durations summed; unavailable if any window was."""
    if not windows:
        return {"available": False, "reason": "no lm-eval requests were run", "method": None, "joules": None,
                "duration_s": None}
    if len(windows) == 1:
        return dict(windows[0])
    duration = sum(w.get("duration_s") or 0.0 for w in windows)
    bad = next((w for w in windows if not w.get("available")), None)
    if bad is not None:
        return {**bad, "duration_s": duration, "windows": len(windows)}
    out = dict(windows[0])
    out.update(joules=sum(w["joules"] for w in windows), duration_s=duration, windows=len(windows),
               warning="; ".join(sorted({w["warning"] for w in windows if w.get("warning")})) or None,
               raw=[w.get("raw") for w in windows],
               # one window the sensor could not resolve makes the sum as coarse as that window
               short_window=any(bool(w.get("short_window")) for w in windows))
    return out


def _sample_lines(results: dict, task: str, model_name: str, metering: Metering) -> list[dict]:
    """samples.jsonl lines from lm-eval's logged samples (one per document; other filters' metrics added)."""
    logged = (results.get("samples") or {}).get(task) or []
    by_doc: dict[int, dict] = {}
    timings = metering.stats[task].timings if task in metering.stats else {}
    for s in logged:
        doc_id = int(s.get("doc_id", len(by_doc)))
        filt = s.get("filter", "none")
        scores = {}
        for m in s.get("metrics", []):
            v = _number(s.get(m))
            if v is not None:
                scores[m if filt in ("none", "") else f"{m}/{filt}"] = v
        if doc_id in by_doc:
            by_doc[doc_id]["scores"].update(scores)
            continue
        args = s.get("arguments") or []
        first = args[0] if args else ()
        prompt = first[0] if isinstance(first, (list, tuple)) and first else None
        filtered = s.get("filtered_resps") or []
        prediction = filtered[0] if filtered else None
        target = s.get("target")
        refs = [str(r) for r in target] if isinstance(target, (list, tuple)) else [str(target)]
        t = (timings.get(doc_id) or [None])[0]
        by_doc[doc_id] = {
            "model": model_name, "task": ROW_PREFIX + task, "index": doc_id, "prompt": prompt,
            "prediction": prediction if isinstance(prediction, str) or prediction is None else str(prediction),
            "references": refs, "scores": scores,
            "ttft_s": t.ttft_s if t else None, "tpot_s": t.tpot_s if t else None,
            "e2e_s": t.e2e_s if t else None, "new_tokens": t.new_tokens if t else None,
        }
    return [by_doc[k] for k in sorted(by_doc)]

