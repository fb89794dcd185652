"""The comparison model: per task, every model's numbers and its ratios to a reference model.

Pure data, no formatting library: the CLI, the exporters and the plots all read a ``Comparison``.
Significance comes from ``llmbench.stats.significance``: a paired randomization test over the shared samples for
quality, a permutation test of the p50 over per-sample values for TTFT and TPOT (llmbench.stats.permutation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from llmbench.errors import UserError
from llmbench.report.cost import CorrectCost, correct_cost
from llmbench.report.defaults import DEFAULT_MARGIN, DEFAULT_MIN_GAIN, DEFAULT_RESAMPLES
from llmbench.report.format import roofline_is_lower_bound, roofline_percent
from llmbench.report.levels import row_level
from llmbench.report.merge import MergedRow, MergedRuns
from llmbench.report.served import SERVED_FIELDS, served_figures
from llmbench.report.tester import TaskTests, Tester
from llmbench.stats import PairedDelta
from llmbench.stats.noninferiority import Decision
from llmbench.stats.significance import higher_is_better, rescorable

METRIC_LABELS = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2",
                 "rougeL": "ROUGE-L", "exact_match": "EM", "f1": "F1"}


def metric_label(name: str) -> str:
    """Display name of a metric ('rougeL' -> 'ROUGE-L'); unknown names unchanged."""
    return METRIC_LABELS.get(name, name)


@dataclass
class ModelResult:
    """One model on one task: measured values, then ratios to the task's reference (None = n/a).

    ``*_significant`` is True/False for a tested difference at 95%, None when untested (the reference
    itself, no shared samples, or a metric that cannot be recomputed from samples).
    """

    model: str
    parameters: int | None
    status: str
    run_id: str
    error: str | None = None
    device: str | None = None
    dtype: str | None = None
    quality: float | None = None
    quality_ci_low: float | None = None
    quality_ci_high: float | None = None
    quality_stderr: float | None = None  # lm-eval's metrics come with a standard error instead of a CI
    ttft_p50_s: float | None = None
    tpot_p50_s: float | None = None
    tokens_per_s: float | None = None
    peak_memory_bytes: float | None = None
    memory_kind: str | None = None
    joules_per_sample: float | None = None
    joules_per_token: float | None = None
    energy_method: str | None = None
    energy_reason: str | None = None
    is_ref: bool = False
    quality_rel: float | None = None  # quality as a fraction of the reference's (direction-adjusted)
    quality_significant: bool | None = None
    ttft_significant: bool | None = None
    speed_ratio: float | None = None  # reference TPOT p50 / this TPOT p50: > 1 is faster
    speed_significant: bool | None = None
    memory_ratio: float | None = None  # this / reference
    energy_ratio: float | None = None  # this / reference, J per sample
    metrics: dict[str, float | None] = field(default_factory=dict)  # every quality metric of the row
    weights_bytes: float | None = None  # the size axis of quantized variants
    roofline_percent: float | None = None  # latency.roofline.percent_of_peak: decode bandwidth / device peak
    roofline_lower_bound: bool = False  # the KV-cache bytes unknown: the percentage counts the weights only
    decision: Decision | None = None  # non-inferiority against the task's best model (set by the verdict)
    correct: CorrectCost | None = None  # latency and energy per correct answer, where the task has the notion
    # served rows (backend openai) only; None elsewhere, and left out of to_dict then, so in-process exports
    # keep their shape
    requests_per_s: float | None = None  # answered requests / the level's wall time
    output_tokens_per_s: float | None = None  # output tokens / the level's wall time
    goodput_fraction: float | None = None  # share of the sent requests that met every --slo bound
    goodput_requests_per_s: float | None = None
    requests_sent: int | None = None
    requests_failed: int | None = None
    energy_scope: str | None = None  # "device-wide ...": the whole device's energy, not the model's own
    # the row's sweep level, the suffix of its name (``@b4``, ``@n64``, ``@b4@n64``, ``@c4``; "" for none): the
    # verdict decides among the models of one level (llmbench.report.levels); left out of to_dict when ""
    level: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def joules_per_correct(self) -> float | None:
        """Energy per correct answer, where the task has a per-sample notion of correct."""
        return self.correct.joules_per_correct if self.correct is not None else None

    @property
    def seconds_per_correct(self) -> float | None:
        """Generation time per correct answer, where the task has a per-sample notion of correct."""
        return self.correct.seconds_per_correct if self.correct is not None else None

    @property
    def device_wide_energy(self) -> bool:
        """Whether the row's energy is the whole device's (a served model's GPU), not the model's own."""
        return self.joules_per_sample is not None and str(self.energy_scope or "").startswith("device-wide")

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in SERVED_FIELDS:
            if d[key] is None:
                del d[key]
        if not d["level"]:
            del d["level"]
        return d


@dataclass
class TaskComparison:
    """All models of one task, sorted by size, with the reference and the primary metric."""

    task: str
    metric: str | None
    higher_is_better: bool
    scale: str | None
    ref: str | None
    results: list[ModelResult]
    notes: list[str] = field(default_factory=list)
    verdict: object | None = None  # llmbench.report.verdict.Verdict: the task's only level's; None with several
    verdicts: list = field(default_factory=list)  # one Verdict per sweep level (llmbench.report.levels)
    samples: dict[str, dict[int, dict]] = field(default_factory=dict, repr=False)  # model -> index -> line

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric) if self.metric else "quality"

    @property
    def level_verdicts(self) -> list:
        """Every level's verdict (``verdicts``), or the one ``verdict`` of a comparison built by hand."""
        return self.verdicts or ([self.verdict] if self.verdict is not None else [])

    def result(self, model: str) -> ModelResult | None:
        """The result of one model, or None."""
        return next((r for r in self.results if r.model == model), None)

    def to_dict(self) -> dict:
        return {"task": self.task, "metric": self.metric, "higher_is_better": self.higher_is_better,
                "scale": self.scale, "ref": self.ref, "results": [r.to_dict() for r in self.results],
                "notes": list(self.notes),
                "verdict": self.verdict.to_dict() if self.verdict is not None else None,
                "verdicts": [v.to_dict() for v in self.level_verdicts]}


@dataclass
class Comparison:
    """Every task's comparison plus the notes that apply to all of them (machines, versions, settings)."""

    run_ids: list[str]
    tasks: list[TaskComparison]
    notes: list[str]
    margin: float
    resamples: int
    min_gain: float = DEFAULT_MIN_GAIN

    def to_dict(self) -> dict:
        return {"runs": list(self.run_ids), "margin": self.margin, "resamples": self.resamples,
                "min_gain": self.min_gain, "notes": list(self.notes), "tasks": [t.to_dict() for t in self.tasks]}


def relative_quality(value: float | None, ref: float | None, higher_is_better: bool) -> float | None:
    """Quality as a fraction of ``ref``: value/ref, or ref/value when lower is better; None if undefined."""
    if value is None or ref is None:
        return None
    num, den = (value, ref) if higher_is_better else (ref, value)
    return num / den if den > 0 else None


def peak_memory(row) -> tuple[float | None, str | None]:
    """(bytes, kind): CUDA peak allocated when measured on a GPU, else the process peak RSS."""
    mem = row.memory or {}
    for key, kind in (("cuda_peak_allocated_bytes", "cuda"), ("peak_rss_bytes", "rss")):
        if mem.get(key) is not None:
            return float(mem[key]), kind
    return None, None


def _p50(row, name: str) -> float | None:
    summary = row.latency.get(name)
    value = summary.get("p50") if isinstance(summary, dict) else None
    return float(value) if value is not None else None


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den is not None and den > 0 else None


def primary_metric(rows: list[MergedRow], wanted: str | None = None) -> str | None:
    """``wanted`` when a row of the task has it, else the first metric of the first finished row."""
    for r in rows:
        if wanted and wanted in r.row.quality:
            return wanted
    for r in rows:
        if r.ok and r.row.quality:
            return next(iter(r.row.quality))
    return None


def model_result(m: MergedRow, metric: str | None) -> ModelResult:
    """The measured values of one row, before any comparison."""
    row = m.row
    res = ModelResult(model=m.model, parameters=m.parameters, status=row.status or "ok", run_id=m.run_id,
                      error=row.error, device=row.model.get("device"), dtype=row.model.get("dtype"),
                      level=row_level(row.model))
    if isinstance((row.latency or {}).get("requests"), dict):
        served_figures(res, row)
    if not m.ok:
        return res
    res.metrics = {k: v.get("value") for k, v in row.quality.items() if isinstance(v, dict)}
    q = row.quality.get(metric) if metric else None
    if isinstance(q, dict):
        res.quality, res.quality_ci_low, res.quality_ci_high = q.get("value"), q.get("ci_low"), q.get("ci_high")
        res.quality_stderr = q.get("stderr")
    res.ttft_p50_s, res.tpot_p50_s = _p50(row, "ttft_s"), _p50(row, "tpot_s")
    res.tokens_per_s = row.latency.get("tokens_per_s")
    res.roofline_percent = roofline_percent(row.latency)
    res.roofline_lower_bound = res.roofline_percent is not None and roofline_is_lower_bound(row.latency)
    res.peak_memory_bytes, res.memory_kind = peak_memory(row)
    weights = (row.memory or {}).get("weights_bytes")
    res.weights_bytes = float(weights) if isinstance(weights, (int, float)) and weights > 0 else None
    res.correct = correct_cost(row, m.samples)
    energy = row.energy or {}
    if energy.get("available") and energy.get("short_window"):
        res.energy_reason = energy.get("warning") or "window too short for the sensor"
    elif energy.get("available") and energy.get("joules_per_sample") is not None:
        res.joules_per_sample, res.energy_method = float(energy["joules_per_sample"]), energy.get("method")
        per_token = energy.get("joules_per_token")
        res.joules_per_token = float(per_token) if isinstance(per_token, (int, float)) else None
    else:
        res.energy_reason = energy.get("reason") or "not measured"
    return res


def _significant(delta: PairedDelta | None) -> bool | None:
    return None if delta is None else bool(delta.significant)


def _largest(rows: list[MergedRow], metric: str | None) -> MergedRow | None:
    ok = [r for r in rows if r.ok and (metric is None or metric in r.row.quality)]
    return max(ok, key=lambda r: (r.parameters or -1, r.model), default=None)


def compare_task(task: str, rows: list[MergedRow], ref: str | None = None, metric: str | None = None,
                 tester: Tester | None = None) -> TaskComparison:
    """Compare the rows of one task against ``ref`` (default: the largest finished model)."""
    tester = tester or Tester(DEFAULT_RESAMPLES, 0)
    rows = sorted(rows, key=lambda r: (r.parameters is None, r.parameters or 0, r.model))
    metric = primary_metric(rows, metric)
    first = next((r.row.quality[metric] for r in rows if metric in r.row.quality), {}) if metric else {}
    hib = higher_is_better(metric, *(r.row.quality.get(metric) for r in rows)) if metric else True
    notes = []
    if ref is None:
        ref_row = _largest(rows, metric)
    else:
        ref_row = next((r for r in rows if r.model == ref and r.ok), None)
        if ref_row is None:
            notes.append(f"reference {ref} has no finished row for this task; ratios are n/a")
    results = [model_result(r, metric) for r in rows]
    tc = TaskComparison(task, metric, hib, first.get("scale"), ref_row.model if ref_row else None, results,
                        notes, samples={r.model: r.samples for r in rows})
    if ref_row is None:
        return tc
    base = model_result(ref_row, metric)
    for r, res in zip(rows, results):
        if not res.ok:
            continue
        if r is ref_row:
            res.is_ref = True
            continue
        res.quality_rel = relative_quality(res.quality, base.quality, hib)
        res.speed_ratio = _ratio(base.tpot_p50_s, res.tpot_p50_s)
        if res.memory_kind == base.memory_kind:
            res.memory_ratio = _ratio(res.peak_memory_bytes, base.peak_memory_bytes)
        res.energy_ratio = _ratio(res.joules_per_sample, base.joules_per_sample)
        if metric and res.quality is not None:
            res.quality_significant = _significant(tester.quality(metric, ref_row, r))
        res.ttft_significant = _significant(tester.latency("ttft_s", ref_row, r))
        if res.speed_ratio is not None:
            res.speed_significant = _significant(tester.latency("tpot_s", ref_row, r))
    if tester.resamples > 0 and any(
            not x.is_ref and x.ok and x.quality is not None and x.quality_significant is None for x in results):
        if rescorable(metric, *(r.row.quality.get(metric) for r in rows)):
            notes.append("no shared per-sample outputs for some rows: their quality difference is untested")
        else:
            notes.append(f"quality differences untested: llmbench has no per-sample scorer for {metric} "
                         "(e.g. lm-eval's own metrics)")
    return tc


def build_comparison(merged: MergedRuns, ref: str | None = None, metric: str | None = None,
                     margin: float = DEFAULT_MARGIN, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = 0, min_gain: float = DEFAULT_MIN_GAIN) -> Comparison:
    """Compare every task of ``merged``; ``ref`` and ``metric`` are checked and raise UserError if unknown.

    ``margin``: a model is enough when the paired CI of its quality over the best's clears it; ``min_gain``:
    the gain per doubling (points of a 0-100 scale) below which more size stops paying (the knee). Each task
    gets one verdict per sweep level, among that level's models (``llmbench.report.levels``)."""
    from llmbench.report.levels import level_verdicts

    if not 0 < margin <= 1:
        raise UserError(f"--margin must be in (0, 1], e.g. 0.95 for within 95% of the best; got {margin}")
    if not min_gain >= 0 or min_gain == float("inf"):
        raise UserError(f"--min-gain must be a finite number >= 0 (points of a 0-100 scale per doubling); "
                        f"got {min_gain}")
    if not merged.rows:
        raise UserError("no rows to compare")
    models = {r.model for r in merged.rows}
    if ref is not None and ref not in models:
        raise UserError(f"--ref {ref!r} is not a model of these runs (models: {', '.join(sorted(models))})")
    if metric is not None and not any(metric in r.row.quality for r in merged.rows):
        known = sorted({m for r in merged.rows for m in r.row.quality})
        raise UserError(f"--metric {metric!r} is in no row (metrics: {', '.join(known) or 'none'})")
    tester = Tester(resamples, seed)
    tasks = []
    for task in merged.tasks():
        tc = compare_task(task, merged.rows_for(task), ref, metric, tester)
        if metric and tc.metric != metric:
            tc.notes.append(f"no {metric} for this task; using {tc.metric}")
        tests = TaskTests(tester, tc, {r.model: r for r in merged.rows_for(task)}, margin)
        tc.verdicts = level_verdicts(tc, margin, decide=tests.decide, speed=tests.speed, gain=tests.gain,
                                     min_gain=min_gain)
        tc.verdict = tc.verdicts[0] if len(tc.verdicts) == 1 else None
        tasks.append(tc)
    return Comparison(merged.run_ids, tasks, list(merged.notes) + sorted(tester.untested), margin, resamples,
                      min_gain)
