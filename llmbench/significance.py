"""Is a difference between two rows real? Shared by `compare` and `gate`; reads records only.

Quality: paired bootstrap over the samples both rows share (same task, same indices), recomputing the
corpus metric from per-sample sufficient statistics, so BLEU is resampled as corpus BLEU, not as a mean
of sentence scores. Latency: each side's per-sample values resampled independently (timings of two runs
are separate draws, not pairs).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from llmbench.records import RunRecord
from llmbench.stats import PairedDelta, paired_bootstrap, unpaired_bootstrap

LATENCY_FIELDS = ("ttft_s", "tpot_s", "e2e_s")
_STATISTICS = {"mean": np.mean, "p50": np.median,
               "p90": lambda a: np.percentile(a, 90), "p99": lambda a: np.percentile(a, 99)}


def index_samples(samples: list[dict]) -> dict[tuple[str, str], dict[int, dict]]:
    """samples.jsonl lines -> {(model name, task name): {sample index: line}}."""
    out: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for s in samples:
        out[(s["model"], s["task"])][int(s["index"])] = s
    return dict(out)


def quality_delta(
    metric: str,
    baseline: dict[int, dict],
    candidate: dict[int, dict],
    seed: int = 0,
    resamples: int = 1000,
) -> PairedDelta | None:
    """Paired bootstrap of a quality metric over the shared sample indices; None when none are shared."""
    from llmbench.metrics import get_metric

    shared = sorted(set(baseline) & set(candidate))
    if not shared:
        return None
    m = get_metric(metric)
    refs = [list(baseline[i]["references"]) for i in shared]
    a = m.sample_stats([baseline[i]["prediction"] for i in shared], refs)
    b = m.sample_stats([candidate[i]["prediction"] for i in shared], refs)
    return paired_bootstrap(a, b, statistic=m.aggregate, seed=seed, resamples=resamples)


def latency_values(samples: dict[int, dict], field: str) -> list[float]:
    """Per-sample values of a latency field (tpot_s derived when absent); None values skipped."""
    vals = []
    for s in samples.values():
        v = s.get(field)
        if v is None and field == "tpot_s":
            ttft, e2e, n = s.get("ttft_s"), s.get("e2e_s"), s.get("new_tokens") or 0
            v = (e2e - ttft) / (n - 1) if ttft is not None and e2e is not None and n > 1 else None
        if v is not None:
            vals.append(float(v))
    return vals


def latency_delta(
    field: str,
    baseline: dict[int, dict],
    candidate: dict[int, dict],
    statistic: str = "p50",
    seed: int = 0,
    resamples: int = 1000,
) -> PairedDelta | None:
    """Bootstrap of a latency statistic (mean/p50/p90/p99) between two rows; None without values."""
    a, b = latency_values(baseline, field), latency_values(candidate, field)
    if not a or not b:
        return None
    return unpaired_bootstrap(a, b, statistic=_STATISTICS[statistic], seed=seed, resamples=resamples)


_ENV_KEYS = ("hostname", "cpu_model", "gpu_name", "gpu_driver", "device", "torch", "transformers", "llmbench")


def environment_differences(records: list[RunRecord]) -> list[str]:
    """Human-readable differences in machine, device or library versions between records."""
    notes = []
    for key in _ENV_KEYS:
        values = {r.environment.get(key) for r in records}
        if len(values) > 1:
            shown = ", ".join(sorted(str(v) for v in values))
            notes.append(f"runs differ in {key}: {shown}")
    return notes
