"""lm-eval's ``simple_evaluate`` results -> llmbench rows and samples.jsonl lines, with what the metered LM
measured (latency, memory, energy)."""

from __future__ import annotations

import math
from typing import Any, Iterator

from llmbench.lmeval.metered import ROW_PREFIX, Metering, TaskStats, Timing
from llmbench.meters.merge import merge_energy, merge_memory
from llmbench.meters.timing import latency_summary
from llmbench.records import ResultRow

PER_REQUEST_METHOD = "perf_counter+streamer per lm-eval request (device synchronised)"
_DEFAULT_SCALES = {"bleu": "0-100", "chrf": "0-100", "chrf++": "0-100", "ter": "0-100"}


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
    energy = merge_energy([e for st in stats for e in st.energy], "no lm-eval requests were run")
    energy = per_unit(energy, n, total_tokens)
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
    if per_request and timings:  # one request at a time: the summary of llmbench's own tasks at batch size 1
        summary = latency_summary(timings, 1, seed, PER_REQUEST_METHOD)
        out.update({k: v for k, v in summary.items() if k not in ("setting", "batch_size")})
    else:
        what = ", ".join(types) or "no"
        out.update(
            method=f"perf_counter per task ({what} requests, batch size {batch_size}; not timed one by one)",
            generate_s=busy,
        )
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
