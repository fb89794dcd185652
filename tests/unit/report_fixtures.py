"""Synthetic run records + samples.jsonl for the report tests (compare, export, plot), written with
llmbench.records.store so they have exactly the shape `llmbench run` writes. Everything is seeded: same bytes
every time, which the golden-file tests rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmbench.meters.bandwidth import roofline
from llmbench.metrics import get_metric
from llmbench.records import ResultRow, RunRecord
from llmbench.records.store import write_run, write_samples
from llmbench.stats import Summary

RUN_SMALL = "20250301-120000-smollm2"
RUN_LARGE = "20250302-120000-gemma3"

FR = [
    "le chat dort sur le canapé", "il fait beau aujourd'hui", "nous allons au marché demain",
    "la maison est très grande", "elle lit un livre intéressant", "les enfants jouent dans le jardin",
    "je voudrais un café s'il vous plaît", "le train part à huit heures", "mon frère travaille à Paris",
    "cette ville est magnifique", "le repas était délicieux", "ils ont acheté une voiture rouge",
]
EN = [
    "the cat sleeps on the sofa", "the weather is nice today", "we are going to the market tomorrow",
    "the house is very big", "she reads an interesting book", "the children play in the garden",
    "I would like a coffee please", "the train leaves at eight", "my brother works in Paris",
    "this city is beautiful", "the meal was delicious", "they bought a red car",
]
SUMMARY_REFS = [
    "the council approved the new budget for schools", "heavy rain caused floods in the north",
    "the team won the final after extra time", "prices rose for the third month in a row",
    "scientists found water ice near the moon's pole", "the museum reopens after two years of repairs",
    "a new bridge will link the two districts", "the company plans to hire two hundred people",
    "volunteers cleaned the beach on saturday", "the festival drew record crowds this year",
]


def _degrade(text: str, every: int, junk: str = "euh") -> str:
    """Replace every ``every``-th word (a weaker model's output)."""
    words = text.split()
    return " ".join(junk if every and i % every == 1 else w for i, w in enumerate(words))


def predictions(model: str, task: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(predictions, references, prompts) of one model on one task; the larger model is better."""
    if task == "translation-en-fr":
        refs = [[s] for s in FR]
        prompts = [f"Translate to French: {e}\nFrench:" for e in EN]
        every = 3 if model == "smollm2-135m" else 7
        preds = [_degrade(s, every) for s in FR]
    else:
        refs = [[s] for s in SUMMARY_REFS]
        prompts = [f"Summarize in one sentence: {s} (article text ...)\nSummary:" for s in SUMMARY_REFS]
        # both models lose about the same amount, on different samples: a difference inside the noise
        shift = 1 if model == "smollm2-135m" else 0
        preds = [_degrade(s, 3 if (i + shift) % 2 else 4) for i, s in enumerate(SUMMARY_REFS)]
    return preds, refs, prompts


_SPEED = {"smollm2-135m": (0.021, 0.0105, 1.05e9, 0.21), "gemma3-270m": (0.034, 0.0195, 1.52e9, 0.47)}
_PARAMS = {"smollm2-135m": 134515008, "gemma3-270m": 268098176, "gemma3-1b": 999885952}
_METRICS = {"translation-en-fr": ["bleu", "chrf"], "summarization": ["rougeL", "rouge1"]}


def make_row_and_samples(model: str, task: str, energy: bool = True, seed: int = 0,
                         tamper=None) -> tuple[ResultRow, list[dict]]:
    """A finished row and its samples, quality computed with the real metrics from the predictions."""
    preds, refs, prompts = predictions(model, task)
    if tamper:
        preds = tamper(list(preds))
    rng = np.random.default_rng(seed + len(model) + len(task))
    ttft0, tpot0, rss, joules = _SPEED[model]
    n = len(preds)
    new_tokens = [len(p.split()) * 2 + 1 for p in preds]
    ttft = [round(float(ttft0 * rng.lognormal(0, 0.08)), 6) for _ in range(n)]
    tpot = [round(float(tpot0 * rng.lognormal(0, 0.08)), 6) for _ in range(n)]
    e2e = [round(a + b * (k - 1), 6) for a, b, k in zip(ttft, tpot, new_tokens)]
    names = _METRICS[task]
    quality = {m: get_metric(m).compute(preds, refs) for m in names}
    scores = {m: get_metric(m).sample_scores(preds, refs) for m in names}
    decode = sum(e - t for e, t in zip(e2e, ttft))
    tpot_summary = Summary.from_values(tpot).to_dict()
    # the roofline: smollm2's run measured a peak (its row has a % of roofline), gemma3's did not (n/a)
    peak = ({"bytes_per_s": 2e11, "method": "numpy-triad (a = b + s*c, 2 passes)"} if model == "smollm2-135m"
            else {"bytes_per_s": None, "method": None, "reason": "no bandwidth probe for device 'test'"})
    row = ResultRow(
        model={"spec": model, "name": model, "parameters": _PARAMS[model], "dtype": "float32",
               "device": "cpu", "load_time_s": 1.5, "source": f"/cache/{model}"},
        task={"name": task, "kind": "translation" if "translation" in task else "summarization", "n": n,
              "source": f"tasks/data/{task}.jsonl"},
        quality=quality,
        latency={"setting": "latency", "batch_size": 1, "method": "perf_counter+streamer",
                 "ttft_s": Summary.from_values(ttft).to_dict(), "tpot_s": tpot_summary,
                 "e2e_s": Summary.from_values(e2e).to_dict(),
                 "new_tokens": Summary.from_values(new_tokens).to_dict(),
                 "tokens_per_s": round(sum(k - 1 for k in new_tokens) / decode, 4),
                 "total_new_tokens": sum(new_tokens), "generate_s": round(sum(e2e), 4),
                 "roofline": roofline(_PARAMS[model] * 4, 46080, 60.0, tpot_summary["p50"], peak)},
        memory={"weights_bytes": _PARAMS[model] * 4, "load_peak_rss_bytes": rss * 1.1, "peak_rss_bytes": rss,
                "rss_method": "procfs-vmhwm", "cuda_peak_allocated_bytes": None,
                "cuda_peak_reserved_bytes": None, "nvml_used_bytes": None},
        energy=({"available": True, "reason": None, "method": "rapl", "joules": joules * n,
                 "joules_per_sample": joules, "joules_per_token": round(joules * n / sum(new_tokens), 6),
                 "duration_s": round(sum(e2e), 4)} if energy else
                {"available": False, "reason": "no RAPL powercap interface at /sys/class/powercap",
                 "method": None, "joules": None, "joules_per_sample": None, "joules_per_token": None,
                 "duration_s": round(sum(e2e), 4)}),
    )
    samples = [{"model": model, "task": task, "index": i, "prompt": prompts[i], "prediction": preds[i],
                "references": refs[i], "scores": {m: scores[m][i] for m in names}, "ttft_s": ttft[i],
                "tpot_s": tpot[i], "e2e_s": e2e[i], "new_tokens": new_tokens[i]} for i in range(n)]
    return row, samples


def failed_row(model: str, task: str, error: str = "CUDA out of memory while loading") -> ResultRow:
    """A row whose model could not run: status failed, measurement sections empty."""
    return ResultRow(model={"spec": model, "name": model, "parameters": _PARAMS.get(model), "dtype": "float32",
                            "device": "cpu"},
                     task={"name": task, "kind": "translation", "n": 0, "source": None},
                     status="failed", error=error)


def environment(hostname: str = "bench-host", **over) -> dict:
    """A fixed environment (no live capture: records stay byte-identical)."""
    env = {"hostname": hostname, "platform": "Linux-6.1-x86_64", "python": "3.11.2", "torch": "2.5.1",
           "transformers": "5.0.0", "accelerate": "1.2.0", "lm_eval": None, "llmbench": "0.1.0",
           "git_commit": "0123456789abcdef", "device": "cpu", "cpu_model": "Test CPU @ 3.0GHz",
           "cpu_count": 16, "gpu_name": None, "gpu_driver": None, "cuda": None}
    env.update(over)
    return env


def write_record(out: Path, run_id: str, models: list[str], tasks: list[str], energy: bool = True,
                 failed: list[tuple[str, str]] = (), env: dict | None = None, tamper=None) -> Path:
    """Write one run (run.json + samples.jsonl) under ``out``; returns its directory."""
    rows, samples = [], []
    for model in models:
        for task in tasks:
            row, s = make_row_and_samples(model, task, energy=energy, tamper=tamper)
            rows.append(row)
            samples += s
    rows += [failed_row(m, t) for m, t in failed]
    record = RunRecord(run_id=run_id, created_at=f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T12:00:00+00:00",
                       command="llmbench run ...", environment=env or environment(),
                       settings={"batch_size": 1, "setting": "latency", "max_new_tokens": 64, "seed": 0,
                                 "warmup": 1, "limit": None, "device": "cpu", "chat_template": False,
                                 "tasks": tasks},
                       rows=rows)
    path = write_run(record, out)
    write_samples(path.parent, samples)
    return path.parent


def two_runs(out: Path, energy: bool = True, tamper=None) -> list[Path]:
    """The acceptance pair: smollm2-135m in one run, gemma3-270m (plus a failed gemma3-1b) in another."""
    tasks = ["translation-en-fr", "summarization"]
    a = write_record(out, RUN_SMALL, ["smollm2-135m"], tasks, energy=energy, tamper=tamper)
    b = write_record(out, RUN_LARGE, ["gemma3-270m"], tasks, energy=energy,
                     failed=[("gemma3-1b", "translation-en-fr")])
    return [a, b]
