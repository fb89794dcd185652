"""Synthetic run records for the gate tests: realistic rows (docs/results-schema.md) plus samples.jsonl.

Quality is SQuAD exact match over per-sample predictions; latency comes from seeded log-normal draws, so a
candidate built with the same ``latency_seed`` and ``latency_scale=1.1`` is exactly 10% slower at every
percentile, while ``latency_noise`` controls how hard that is to tell from chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmbench.metrics import get_metric
from llmbench.records import ResultRow, RunRecord
from llmbench.records.store import write_run, write_samples
from llmbench.stats import Summary

ENVIRONMENT = {
    "hostname": "ci-runner-1", "platform": "Linux-6.1-x86_64", "python": "3.11.7", "torch": "2.13.0",
    "transformers": "5.24.0", "accelerate": "1.15.0", "lm_eval": None, "llmbench": "0.1.0",
    "git_commit": "0123abc", "device": "cpu", "cpu_model": "Example CPU @ 2.0GHz", "cpu_count": 2,
    "gpu_name": None, "gpu_driver": None, "cuda": None,
}
SETTINGS = {"batch_size": 1, "setting": "latency", "max_new_tokens": 32, "seed": 0, "warmup": 1,
            "limit": None, "device": "cpu", "chat_template": True, "tasks": ["qa"]}


def qa_texts(n: int, correct: set[int]) -> tuple[list[str], list[list[str]]]:
    """Predictions (right on ``correct`` indices, wrong elsewhere) and one reference each."""
    refs = [[f"answer {i}"] for i in range(n)]
    preds = [f"answer {i}" if i in correct else f"wrong guess {i}" for i in range(n)]
    return preds, refs


def latencies(n: int, scale: float = 1.0, noise: float = 0.1, seed: int = 0) -> list[dict]:
    """Per-sample ttft/tpot/e2e/new_tokens; the same seed gives the same draws, multiplied by ``scale``."""
    rng = np.random.default_rng(seed)
    ttft = 0.05 * np.exp(noise * rng.standard_normal(n)) * scale
    tpot = 0.01 * np.exp(noise * rng.standard_normal(n)) * scale
    tokens = rng.integers(8, 17, size=n)
    e2e = ttft + (tokens - 1) * tpot
    return [{"ttft_s": float(a), "tpot_s": float(b), "e2e_s": float(c), "new_tokens": int(t)}
            for a, b, c, t in zip(ttft, tpot, e2e, tokens)]


def make_row(model: str, task: str, preds, refs, lat: list[dict], *, peak_rss: float = 1.1e9,
             energy_joules: float | None = None, energy_reason: str = "no RAPL powercap interface",
             extra_quality: dict | None = None, energy_short_window: bool = False) -> ResultRow:
    """A ResultRow shaped as `llmbench run` writes it."""
    n = len(preds)
    quality = {"exact_match": get_metric("exact_match").compute(preds, refs)}
    quality.update(extra_quality or {})
    total_tokens = sum(s["new_tokens"] for s in lat)
    decode = sum(s["e2e_s"] - s["ttft_s"] for s in lat)
    latency = {"setting": "latency", "batch_size": 1, "method": "perf_counter+streamer"}
    for key in ("ttft_s", "tpot_s", "e2e_s", "new_tokens"):
        latency[key] = Summary.from_values([s[key] for s in lat]).to_dict()
    latency.update(tokens_per_s=total_tokens / decode, total_new_tokens=total_tokens,
                   generate_s=sum(s["e2e_s"] for s in lat))
    if energy_joules is None:
        energy = {"available": False, "reason": energy_reason, "method": None, "joules": None,
                  "joules_per_sample": None, "joules_per_token": None, "duration_s": 1.0}
    else:
        energy = {"available": True, "reason": None, "method": "rapl", "joules": energy_joules,
                  "joules_per_sample": energy_joules / n, "joules_per_token": energy_joules / total_tokens,
                  "duration_s": 0.06 if energy_short_window else 1.0, "short_window": energy_short_window,
                  "warning": "window of 0.060 s is shorter than 0.2 s" if energy_short_window else None}
    return ResultRow(
        model={"spec": model, "name": model, "parameters": 96_000, "dtype": "float32", "device": "cpu",
               "load_time_s": 0.4, "source": f"/tmp/models/{model}"},
        task={"name": task, "kind": "qa", "n": n, "source": f"tasks/data/{task}.jsonl"},
        quality=quality, latency=latency,
        memory={"weights_bytes": 384_000, "load_peak_rss_bytes": 1.2e9, "peak_rss_bytes": peak_rss,
                "rss_method": "procfs-vmhwm", "cuda_peak_allocated_bytes": None,
                "cuda_peak_reserved_bytes": None, "nvml_used_bytes": None},
        energy=energy,
    )


def sample_lines(model: str, task: str, preds, refs, lat: list[dict]) -> list[dict]:
    """samples.jsonl lines for one row."""
    scorer = get_metric("exact_match")
    scores = scorer.sample_scores(preds, refs)
    return [{"model": model, "task": task, "index": i, "prompt": f"Question {i}?", "prediction": p,
             "references": r, "scores": {"exact_match": s}, **lt}
            for i, (p, r, s, lt) in enumerate(zip(preds, refs, scores, lat))]


def make_run(root: Path, run_id: str, *, rows=(("tiny-model", "qa"),), n: int = 40,
             correct: set[int] | None = None, latency_scale: float = 1.0, latency_noise: float = 0.1,
             latency_seed: int = 0, peak_rss: float = 1.1e9, energy_joules: float | None = None,
             environment: dict | None = None, failed: tuple = (), with_samples: bool = True,
             extra_quality: dict | None = None, energy_short_window: bool = False) -> Path:
    """Write a run directory under ``root`` and return it.

    ``correct``: indices answered right (default: 90% of them). ``failed``: (model, task) keys written
    as failed rows (model could not be loaded), with empty measurement sections and no samples.
    """
    correct = set(range(int(n * 0.9))) if correct is None else set(correct)
    out_rows, samples = [], []
    for model, task in rows:
        if (model, task) in failed:
            out_rows.append(ResultRow(model={"spec": model, "name": model}, task={"name": task, "kind": "qa",
                                      "n": n}, status="failed", error="CUDA out of memory"))
            continue
        preds, refs = qa_texts(n, correct)
        lat = latencies(n, latency_scale, latency_noise, latency_seed)
        out_rows.append(make_row(model, task, preds, refs, lat, peak_rss=peak_rss, energy_joules=energy_joules,
                                 extra_quality=extra_quality, energy_short_window=energy_short_window))
        samples += sample_lines(model, task, preds, refs, lat)
    record = RunRecord(run_id=run_id, created_at="2026-11-26T12:00:00+00:00",
                       command="llmbench run --models tiny-model --tasks qa",
                       environment=dict(environment or ENVIRONMENT), settings=dict(SETTINGS), rows=out_rows)
    path = write_run(record, root)
    if with_samples:
        write_samples(path.parent, samples)
    return path.parent
