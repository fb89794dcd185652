"""Is a difference between two rows real? Shared by `compare` and `gate`; reads records only.

Quality: over the samples both rows share (same task, same indices), a paired bootstrap for the CI of the
difference and a paired randomization test (samples swapped between the rows) for its p-value, both
recomputing the corpus metric from per-sample sufficient statistics, so BLEU is resampled as corpus BLEU,
not as a mean of sentence scores. Latency: a bootstrap of each side's per-sample values resampled
independently for the CI, a permutation test for the p-value (timings of two runs are separate draws, not
pairs). The tests are in llmbench.stats.permutation.

The per-sample statistics are taken from the scores stored in samples.jsonl when they determine them
(ROUGE, EM, F1: the statistic is the per-sample score, rescaled), else computed from the prediction and
references and kept for the rest of the process (keyed on the metric and that text), so a row compared
against many others is scored once.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from llmbench.errors import UserError
from llmbench.models.base import time_per_output_token
from llmbench.records import RunRecord
from llmbench.stats import (
    PairedDelta,
    Quantile,
    paired_bootstrap,
    paired_bootstrap_sums,
    paired_p_floor,
    unpaired_bootstrap,
    unpaired_p_floor,
)
from llmbench.stats.noninferiority import (
    Decision,
    Gain,
    normal_noninferiority,
    paired_gain,
    paired_noninferiority,
    undecided,
)

# the per-sample latency fields of a record (samples.jsonl and each row's ``latency`` summaries); the gate's
# rule paths ``latency.<field>.<stat>`` are built from this list
LATENCY_FIELDS = ("ttft_s", "tpot_s", "e2e_s")
# each takes ``axis`` like a numpy reduction, so the bootstrap evaluates all resamples in one call;
# Quantile gives np.median / np.percentile's values, sorting each resample once
_STATISTICS = {"mean": np.mean, "p50": Quantile(), "p90": Quantile(90), "p99": Quantile(99)}

# (metric, prediction, references) -> that sample's row of sufficient statistics
_STATS_CACHE: dict[tuple, np.ndarray] = {}
_STATS_CACHE_MAX = 200_000


def index_samples(samples: list[dict]) -> dict[tuple[str, str], dict[int, dict]]:
    """samples.jsonl lines -> {(model name, task name): {sample index: line}}."""
    out: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for s in samples:
        out[(s["model"], s["task"])][int(s["index"])] = s
    return dict(out)


def rescorable(metric: str, *entries) -> bool:
    """Whether a paired test may rescore ``metric`` sample by sample with llmbench's own scorer.

    Only for a metric of llmbench's registry that llmbench scored: lm-eval rows keep lm-eval's metric names
    (``exact_match``, ``bleu``, ``f1``...), whose scorers differ from ours (case, normalisation, scale), so
    their entries (``library: lm-eval``) are never rescored with the registry metric of the same name."""
    from llmbench.metrics import METRIC_NAMES

    if metric not in METRIC_NAMES:
        return False
    return not any(isinstance(e, dict) and e.get("library") == "lm-eval" for e in entries)


def higher_is_better(metric: str, *entries) -> bool:
    """A quality metric's direction: the first entry's ``higher_is_better`` that is true or false; else (absent
    or null) the registry metric's own direction for an llmbench-scored metric; else higher is better."""
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("higher_is_better"), bool):
            return entry["higher_is_better"]
    if rescorable(metric, *entries):
        from llmbench.metrics import get_metric

        return get_metric(metric).higher_is_better
    return True


class DifferentExamples(UserError):
    """Two rows' samples at one index are not the same example: pairing them would compare different work."""


def _same_example(a: dict, b: dict) -> bool:
    """Same example digest (``example``, see llmbench.tasks.Example.digest); lines written before digests
    were recorded: the same references."""
    da, db = a.get("example"), b.get("example")
    if da is not None and db is not None:
        return da == db
    return list(a.get("references") or ()) == list(b.get("references") or ())


def example_differences(baseline: dict[int, dict], candidate: dict[int, dict]) -> str | None:
    """Why the rows' shared indices are not the same examples ("3 of 40 shared examples differ, first index
    7"), or None when they are (or none is shared)."""
    shared = sorted(set(baseline) & set(candidate))
    differ = [i for i in shared if not _same_example(baseline[i], candidate[i])]
    if not differ:
        return None
    return (f"{len(differ):,} of {len(shared):,} shared examples differ (first: index {differ[0]}): the task's "
            "data, prompt or references changed between the rows, so they are not paired")


def paired_stats(metric: str, baseline: dict[int, dict], candidate: dict[int, dict]):
    """(Metric, baseline stats, candidate stats) over the shared sample indices, both scored against the
    baseline's references; None when no index is shared; DifferentExamples when a shared index holds
    different examples in the two rows."""
    from llmbench.metrics import get_metric

    shared = sorted(set(baseline) & set(candidate))
    if not shared:
        return None
    why = example_differences(baseline, candidate)
    if why:
        raise DifferentExamples(why)
    m = get_metric(metric)
    refs = [list(baseline[i]["references"]) for i in shared]
    return m, shared_stats(m, [baseline[i] for i in shared], refs), shared_stats(m, [candidate[i] for i in shared],
                                                                                 refs)


def scale_range(scale: str | None) -> float:
    """The full range of a metric's scale: 100 for '0-100', else 1 (0-1 scales and unknown ones)."""
    return 100.0 if scale == "0-100" else 1.0


def quality_noninferiority(metric: str, reference: dict[int, dict], candidate: dict[int, dict], margin: float,
                           higher_is_better: bool, scale: str | None = None, seed: int = 0,
                           resamples: int = 1000, confidence: float = 0.95) -> Decision | None:
    """Is ``candidate`` within ``margin`` of ``reference`` on a quality metric, paired over the shared samples
    (``stats.noninferiority.paired_noninferiority``)? Where a ratio is meaningless the difference is used,
    with ``(1 - margin)`` of the scale's range as the allowed drop. None when no sample is shared."""
    found = paired_stats(metric, reference, candidate)
    if found is None:
        return None
    m, a, b = found
    if not m.additive:
        return undecided(f"{metric} is not resampled from column sums: no paired non-inferiority test", margin)
    return paired_noninferiority(a, b, m.aggregate_many, margin, higher_is_better,
                                 difference_margin=(1 - margin) * scale_range(scale), resamples=resamples,
                                 seed=seed, confidence=confidence)


def recorded_noninferiority(reference: dict | None, candidate: dict | None, margin: float, higher_is_better: bool,
                            scale: str | None = None, confidence: float = 0.95) -> Decision | None:
    """Non-inferiority from two rows' recorded quality entries (value, ``stderr``, ``n``), unpaired: for rows
    without shared per-sample outputs, such as lm-eval's metrics; None when an entry lacks them."""
    entries = (reference, candidate)
    if not all(isinstance(e, dict) for e in entries):
        return None
    values = [e.get("value") for e in entries]
    ses = [e.get("stderr") for e in entries]
    ns = [e.get("n") for e in entries]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values + ses) \
            or not all(isinstance(n, int) and n > 1 for n in ns):
        return None
    return normal_noninferiority(values[0], ses[0], values[1], ses[1], min(ns), margin, higher_is_better,
                                 difference_margin=(1 - margin) * scale_range(scale), confidence=confidence)


def quality_gain(metric: str, smaller: dict[int, dict], larger: dict[int, dict], higher_is_better: bool,
                 seed: int = 0, resamples: int = 1000, confidence: float = 0.95) -> Gain | None:
    """larger - smaller on a quality metric (positive = better) with its paired bootstrap CI over the shared
    samples; None when none are shared or the metric is not resampled from column sums."""
    found = paired_stats(metric, smaller, larger)
    if found is None or not found[0].additive:
        return None
    m, a, b = found
    return paired_gain(a, b, m.aggregate_many, higher_is_better, resamples=resamples, seed=seed,
                       confidence=confidence)


def quality_delta(
    metric: str,
    baseline: dict[int, dict],
    candidate: dict[int, dict],
    seed: int = 0,
    resamples: int = 1000,
) -> PairedDelta | None:
    """A quality metric's difference over the shared sample indices (paired bootstrap CI, paired
    randomization p); None when none are shared."""
    found = paired_stats(metric, baseline, candidate)
    if found is None:
        return None
    m, a, b = found
    if m.additive:
        return paired_bootstrap_sums(a, b, m.aggregate_many, statistic=m.aggregate, seed=seed,
                                     resamples=resamples)
    return paired_bootstrap(a, b, statistic=m.aggregate, seed=seed, resamples=resamples)


def _stored_stats(metric, lines: list[dict], references: list[list[str]]) -> np.ndarray | None:
    """The statistics rebuilt from the scores stored with the samples, when every line has a usable one.

    Only when the line's references are the ones scored against (a score measured against other
    references says nothing here)."""
    scores = []
    for line, refs in zip(lines, references):
        score = (line.get("scores") or {}).get(metric.name)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            return None
        if list(line.get("references", ())) != refs:
            return None
        scores.append(float(score))
    return metric.stats_from_scores(scores)


def shared_stats(metric, lines: list[dict], references: list[list[str]]) -> np.ndarray:
    """``metric.sample_stats`` of the lines' predictions against ``references`` (one list per line).

    From the stored per-sample scores when they determine the statistics, else computed, each sample once
    per process: later calls with the same metric, prediction and references reuse the row."""
    stored = _stored_stats(metric, lines, references)
    if stored is not None:
        return stored
    predictions = [line["prediction"] for line in lines]
    if not all(_hashable_text(p) for p in predictions) or not all(
            _hashable_text(r) for refs in references for r in refs):
        return metric.sample_stats(predictions, references)  # its own input checks say what is wrong
    keys = [(metric.name, p, tuple(refs)) for p, refs in zip(predictions, references)]
    found = [_STATS_CACHE.get(key) for key in keys]
    missing = [j for j, row in enumerate(found) if row is None]
    if missing:
        rows = np.asarray(metric.sample_stats([predictions[j] for j in missing],
                                              [references[j] for j in missing]), dtype=float)
        if len(_STATS_CACHE) + len(missing) > _STATS_CACHE_MAX:
            _STATS_CACHE.clear()
        for j, row in zip(missing, rows):
            row = row.copy()
            row.flags.writeable = False
            _STATS_CACHE[keys[j]] = found[j] = row
    return np.array(found, dtype=float)


def _hashable_text(value) -> bool:
    return value is None or isinstance(value, str)


def latency_values(samples: dict[int, dict], field: str) -> list[float]:
    """Independent values of a latency field (tpot_s derived when absent), None values skipped: one per
    sample, or at batch size > 1 one per batch (the mean of its answers, which share TTFT and end time), so
    that copies of one measurement are not tested as independent draws."""
    units: dict = {}
    for key, s in samples.items():
        v = s.get(field)
        if v is None and field == "tpot_s":
            v = time_per_output_token(s.get("ttft_s"), s.get("e2e_s"), s.get("new_tokens") or 0)
        if v is not None:
            unit = ("batch", s["batch"]) if isinstance(s.get("batch"), int) else ("sample", key)
            units.setdefault(unit, []).append(float(v))
    return [vs[0] if len(set(vs)) == 1 else math.fsum(vs) / len(vs) for vs in units.values()]


def quality_p_floor(baseline: dict[int, dict], candidate: dict[int, dict], resamples: int = 1000) -> float | None:
    """The smallest p ``quality_delta`` can give on these rows' shared samples; None when none are shared."""
    shared = len(set(baseline) & set(candidate))
    return paired_p_floor(shared, resamples) if shared else None


def latency_p_floor(field: str, baseline: dict[int, dict], candidate: dict[int, dict], statistic: str = "p50",
                    seed: int = 0, resamples: int = 1000) -> float | None:
    """The smallest p ``latency_delta`` can give for these rows' numbers of values; None without values."""
    a, b = latency_values(baseline, field), latency_values(candidate, field)
    if not a or not b or statistic not in _STATISTICS:
        return None
    return unpaired_p_floor(len(a), len(b), _STATISTICS[statistic], resamples, seed)


def latency_delta(
    field: str,
    baseline: dict[int, dict],
    candidate: dict[int, dict],
    statistic: str = "p50",
    seed: int = 0,
    resamples: int = 1000,
) -> PairedDelta | None:
    """A latency statistic's (mean/p50/p90/p99) difference between two rows (bootstrap CI, permutation p);
    None without values."""
    a, b = latency_values(baseline, field), latency_values(candidate, field)
    if not a or not b:
        return None
    return unpaired_bootstrap(a, b, statistic=_STATISTICS[statistic], seed=seed, resamples=resamples)


_ENV_KEYS = ("hostname", "cpu_model", "gpu_name", "gpu_driver", "device", "torch", "transformers", "llmbench")
# the metric libraries, whose versions can move BLEU or ROUGE; records that lack them are not a difference
_METRIC_LIBRARY_KEYS = ("sacrebleu", "rouge_score")


def environment_differences(records: list[RunRecord]) -> list[str]:
    """Human-readable differences in machine, device or library versions between records."""
    notes = []
    for key in _ENV_KEYS + _METRIC_LIBRARY_KEYS:
        values = {r.environment.get(key) for r in records}
        if key in _METRIC_LIBRARY_KEYS:
            values.discard(None)
        if len(values) > 1:
            shown = ", ".join(sorted(str(v) for v in values))
            notes.append(f"runs differ in {key}: {shown}")
    return notes
