"""The size curve of a task and its knee: past which size do more parameters (or weight bytes) stop paying?

Points are the finished models sorted by size (the better one where two share a size); a *step* goes from
one size to the next larger one, and its gain per doubling is the direction-adjusted quality difference
over log2 of the size ratio, with the paired 95% bootstrap CI of that difference (over the shared samples,
the corpus metric recomputed on both sides). A step *pays* when the lower bound of its CI is above
``min_gain`` per doubling: with confidence, it gains more than the user asked for.

The *knee* is the largest size reached by a paying step after which no further step pays: past it, no
doubling gains more than ``min_gain`` with confidence. When the last step still pays there is no knee in
the range measured; when no step pays at all, the knee is the smallest model. A knee needs three or more
sizes. Quantized variants of one model share a parameter count but not their weight bytes: on the bytes
axis they are points of their own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

from llmbench.report.format import fmt_bytes, fmt_params, fmt_quality, fmt_signed_quality
from llmbench.stats.noninferiority import Gain

KNEE, NO_KNEE, UNDETERMINED, TOO_FEW = "knee", "no knee", "undetermined", "too few sizes"
AXES = {"parameters": ("parameters", fmt_params), "weights_bytes": ("weight bytes", fmt_bytes)}


@dataclass
class CurvePoint:
    """One size on the curve: the model, its size on the axis, its quality and the row's CI."""

    model: str
    size: float
    quality: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class CurveStep:
    """From one size to the next larger one: the gain per doubling with its CI, and whether it pays."""

    small: str
    large: str
    size_ratio: float
    gain_per_doubling: float
    ci_low: float | None
    ci_high: float | None
    pays: bool | None  # None: untested (no shared per-sample outputs, or --resamples 0)


@dataclass
class SizeCurve:
    """The curve of one task on one axis (``parameters`` or ``weights_bytes``) and its knee."""

    axis: str
    metric_label: str
    scale: str | None
    min_gain: float  # per doubling, in the metric's unit
    points: list[CurvePoint] = field(default_factory=list)
    steps: list[CurveStep] = field(default_factory=list)
    status: str = TOO_FEW
    knee: str | None = None
    knee_size: float | None = None
    past: Gain | None = None  # gain per doubling from the knee to the largest model

    def to_dict(self) -> dict:
        """Plain JSON-ready dict, with the two lines of text."""
        d = asdict(self)
        d["steps_text"], d["knee_text"] = self.steps_text, self.knee_text
        return d

    def gain_text(self, v: float | None, signed: bool = True) -> str:
        """A gain (signed) or a value on the metric's scale; 'n/a' for None."""
        if v is None:
            return "n/a"
        return fmt_signed_quality(v, self.scale) if signed else fmt_quality(v, self.scale)

    def _ci(self, lo: float | None, hi: float | None) -> str:
        return "" if lo is None or hi is None else f" [{self.gain_text(lo)}, {self.gain_text(hi)}]"

    @property
    def axis_label(self) -> str:
        return AXES[self.axis][0]

    def size_text(self, size: float | None) -> str:
        return AXES[self.axis][1](size)

    @property
    def steps_text(self) -> str:
        """'ROUGE-L per doubling of parameters: a → b +0.052 [+0.031, +0.074]; b → c ...'."""
        parts = [f"{s.small} → {s.large} {self.gain_text(s.gain_per_doubling)}{self._ci(s.ci_low, s.ci_high)}"
                 for s in self.steps]
        return f"{self.metric_label} per doubling of {self.axis_label}: " + "; ".join(parts) if parts else ""

    @property
    def knee_text(self) -> str:
        """One line: where more size stops paying, or why that cannot be said."""
        bar = f"{self.gain_text(self.min_gain)} {self.metric_label}, the --min-gain,"
        if self.status == TOO_FEW:
            return f"a knee needs three or more sizes ({len(self.points)} here)"
        if self.status == UNDETERMINED:
            return "knee not determined: the steps' gains have no CI (no shared per-sample outputs, or no resamples)"
        largest = self.points[-1]
        if self.status == NO_KNEE:
            return (f"every step up to {largest.model} ({self.size_text(largest.size)}) still gains more than {bar} "
                    "with confidence: no knee in this range")
        p = self.past
        each = "" if p is None else f", each doubling gains {self.gain_text(p.estimate)} {self.metric_label}" \
                                    f"{self._ci(p.ci_low, p.ci_high)}"
        stop = "parameters" if self.axis == "parameters" else "weight bytes"
        return (f"past {self.knee} ({self.size_text(self.knee_size)}){each}: more {stop} stop paying here "
                f"(no further doubling gains more than {bar} with confidence)")


def size_curve(results, axis: str, higher_is_better: bool, metric_label: str, scale: str | None,
               min_gain: float, gain: Callable[[str, str], Gain | None]) -> SizeCurve | None:
    """The curve over the finished, scored ``results`` (ModelResult) on ``axis``; None with fewer than two
    sizes. ``gain(smaller, larger)`` gives the paired Gain of the larger model's quality over the smaller's
    (positive = better), or None when it cannot be tested."""
    sign = 1 if higher_is_better else -1
    by_size: dict[float, object] = {}
    for r in results:
        size = getattr(r, axis)
        if r.ok and r.quality is not None and size:
            cur = by_size.get(size)
            if cur is None or sign * r.quality > sign * cur.quality:
                by_size[size] = r
    if len(by_size) < 2:
        return None
    curve = SizeCurve(axis, metric_label, scale, min_gain)
    curve.points = [CurvePoint(r.model, float(s), r.quality, r.quality_ci_low, r.quality_ci_high)
                    for s, r in sorted(by_size.items())]
    for a, b in zip(curve.points, curve.points[1:]):
        doublings = math.log2(b.size / a.size)
        g = gain(a.model, b.model)
        per = (g.scaled(doublings) if g is not None else
               Gain(sign * (b.quality - a.quality) / doublings, None, None, None, 0))
        pays = None if per.ci_low is None else per.ci_low > min_gain
        curve.steps.append(CurveStep(a.model, b.model, b.size / a.size, per.estimate, per.ci_low, per.ci_high, pays))
    if len(curve.points) < 3:
        return curve
    if any(s.pays is None for s in curve.steps):
        curve.status = UNDETERMINED
        return curve
    paying = [i for i, s in enumerate(curve.steps) if s.pays]
    knee_index = paying[-1] + 1 if paying else 0
    if knee_index == len(curve.points) - 1:
        curve.status = NO_KNEE
        return curve
    knee, largest = curve.points[knee_index], curve.points[-1]
    curve.status, curve.knee, curve.knee_size = KNEE, knee.model, knee.size
    g = gain(knee.model, largest.model)
    if g is not None:
        curve.past = g.scaled(math.log2(largest.size / knee.size))
    return curve
