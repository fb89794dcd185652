"""The verdict of a task: the smallest model within a margin of the best, what it saves, and how quality
grows per doubling of parameters between consecutive sizes (so diminishing returns are visible).

"Within the margin" reads the metric's direction: value >= best x margin when higher is better,
value <= best / margin when lower is better. Savings are the chosen model's cost against the best model's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

from llmbench.report.compare import ModelResult, TaskComparison, relative_quality
from llmbench.report.format import fmt_pct, fmt_quality, fmt_signed_quality

# a step is "diminishing" when its gain per doubling is under this fraction of the best earlier step's
DIMINISHING_FRACTION = 0.5


@dataclass
class ScalingStep:
    """From one size to the next larger one: direction-adjusted quality gain (positive = better)."""

    small: str
    large: str
    param_ratio: float
    gain: float
    gain_per_doubling: float
    diminishing: bool = False


@dataclass
class Verdict:
    """Best model, the smallest model within the margin of it, its savings and the scaling steps."""

    task: str
    metric: str | None
    metric_label: str
    scale: str | None
    margin: float
    best: str | None = None
    best_quality: float | None = None
    chosen: str | None = None
    chosen_quality: float | None = None
    quality_rel: float | None = None  # chosen / best, direction-adjusted
    quality_significant: bool | None = None  # chosen vs best, paired randomization test
    energy_frac: float | None = None  # chosen J/sample / best J/sample
    speed_ratio: float | None = None  # best TPOT p50 / chosen TPOT p50
    memory_frac: float | None = None
    params_frac: float | None = None
    steps: list[ScalingStep] = field(default_factory=list)
    diminishing_after: str | None = None
    smallest: bool = False  # the best model is also the smallest scored one

    def to_dict(self) -> dict:
        d = asdict(self)
        d["text"], d["scaling_text"] = self.text, self.scaling_text
        return d

    @property
    def text(self) -> str:
        """One sentence: who reaches what share of the best, at what cost."""
        label = self.metric_label
        if self.best is None:
            return f"no finished model has a {label} value"
        if self.chosen == self.best:
            head = f"{self.best} has the best {label} ({fmt_quality(self.best_quality, self.scale)})"
            if self.smallest:
                return head + " and is the smallest model"
            return head + f"; no smaller model is within {self.margin:.0%} of it"
        parts = []
        if self.energy_frac is not None:
            parts.append(f"{fmt_pct(self.energy_frac)} of the energy")
        if self.speed_ratio is not None:
            parts.append(f"{self.speed_ratio:.1f}× the speed")
        if self.memory_frac is not None:
            parts.append(f"{fmt_pct(self.memory_frac)} of the memory")
        sentence = f"{self.chosen} reaches {fmt_pct(self.quality_rel)} of {self.best}'s {label}"
        if parts:
            sentence += " at " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])
        notes = ["energy not measured"] if self.energy_frac is None else []
        if self.quality_significant is False:
            notes.append("the quality difference is not significant at 95%")
        return sentence + (f" ({'; '.join(notes)})" if notes else "")

    @property
    def scaling_text(self) -> str:
        """Gain per doubling of parameters between consecutive sizes, with diminishing returns flagged."""
        if not self.steps:
            return ""
        parts = [f"{s.small} → {s.large} {fmt_signed_quality(s.gain_per_doubling, self.scale)}"
                 + (" (diminishing)" if s.diminishing else "") for s in self.steps]
        text = f"{self.metric_label} per doubling of parameters: " + "; ".join(parts)
        if self.diminishing_after:
            text += f"; diminishing returns beyond {self.diminishing_after}"
        return text


def within_margin(value: float, best: float, margin: float, higher_is_better: bool) -> bool:
    """value >= best*margin (higher is better) or value <= best/margin (lower is better)."""
    return value >= best * margin if higher_is_better else value <= best / margin


def _frac(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den is not None and den > 0 else None


def scaling_steps(results: list[ModelResult], higher_is_better: bool) -> list[ScalingStep]:
    """Gain per doubling between consecutive distinct sizes (the better model where sizes tie)."""
    by_size: dict[int, ModelResult] = {}
    sign = 1 if higher_is_better else -1
    for r in results:
        if r.ok and r.quality is not None and r.parameters:
            cur = by_size.get(r.parameters)
            if cur is None or sign * r.quality > sign * cur.quality:
                by_size[r.parameters] = r
    sizes = sorted(by_size)
    steps: list[ScalingStep] = []
    peak = 0.0
    for a, b in zip(sizes, sizes[1:]):
        small, large = by_size[a], by_size[b]
        gain = sign * (large.quality - small.quality)
        per = gain / math.log2(b / a)
        diminishing = peak > 0 and per < DIMINISHING_FRACTION * peak
        steps.append(ScalingStep(small.model, large.model, b / a, gain, per, diminishing))
        peak = max(peak, per)
    return steps


def task_verdict(tc: TaskComparison, margin: float,
                 test: Callable[[object, object], object] | None = None,
                 rows: dict | None = None) -> Verdict:
    """The verdict of one compared task; ``test(row_a, row_b)`` gives the quality PairedDelta (optional)."""
    hib = tc.higher_is_better
    v = Verdict(tc.task, tc.metric, tc.metric_label, tc.scale, margin)
    scored = [r for r in tc.results if r.ok and r.quality is not None]
    if not scored:
        return v
    sign = 1 if hib else -1
    best = max(scored, key=lambda r: (sign * r.quality, r.parameters is not None, -(r.parameters or 0)))
    near = [r for r in scored if within_margin(r.quality, best.quality, margin, hib)]
    chosen = min(near, key=lambda r: (r.parameters is None, r.parameters or 0, r.model))
    v.best, v.best_quality, v.chosen, v.chosen_quality = best.model, best.quality, chosen.model, chosen.quality
    v.steps = scaling_steps(tc.results, hib)
    v.diminishing_after = next((s.small for s in v.steps if s.diminishing), None)
    if chosen is best:
        v.smallest = best is min(scored, key=lambda r: (r.parameters is None, r.parameters or 0, r.model))
        return v
    v.quality_rel = relative_quality(chosen.quality, best.quality, hib)
    v.energy_frac = _frac(chosen.joules_per_sample, best.joules_per_sample)
    v.speed_ratio = _frac(best.tpot_p50_s, chosen.tpot_p50_s)
    if chosen.memory_kind == best.memory_kind:
        v.memory_frac = _frac(chosen.peak_memory_bytes, best.peak_memory_bytes)
    v.params_frac = _frac(chosen.parameters, best.parameters)
    if test is not None and rows and tc.metric:
        delta = test(rows[best.model], rows[chosen.model])
        v.quality_significant = None if delta is None else bool(delta.significant)
    return v
