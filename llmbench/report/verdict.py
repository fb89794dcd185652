"""The verdict of a task: is a smaller model enough, proven by a non-inferiority test, and where does size
stop paying?

Per task the *best* model has the best point value of the primary metric. Every other model is compared
with it (``llmbench.stats.noninferiority``): *enough* when the lower bound of the paired 95% CI of
(model / best), direction-adjusted, clears ``margin``; *not enough* when the upper bound falls below it;
*undecided* otherwise, with the examples that would decide. The verdict names the smallest *enough* model
and what it saves against the best (speed with its CI; memory and energy are one measurement per row, so
they have none), or says that no smaller model is proven enough. The size curve and its knee are in
``llmbench.report.sizecurve``. A task with sweep levels gets one verdict per level, among that level's models
(``llmbench.report.levels``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable

from llmbench.report.defaults import DEFAULT_MIN_GAIN
from llmbench.report.format import decision_details as _details
from llmbench.report.format import decision_text, fmt_pct, fmt_quality
from llmbench.report.sizecurve import SizeCurve, size_curve
from llmbench.stats.noninferiority import ENOUGH, UNDECIDED, Decision, Gain
from llmbench.stats.significance import scale_range

if TYPE_CHECKING:  # compare builds the verdict: importing it back at run time would be a cycle
    from llmbench.report.compare import TaskComparison

# how many smaller models a "none is proven enough" sentence names (the table and JSON hold them all)
_SHOWN = 3


def within_margin(value: float, best: float, margin: float, higher_is_better: bool) -> bool:
    """value >= best*margin (higher is better) or value <= best/margin (lower is better): the point values'
    rule, which the verdict no longer trusts on its own (see ``Decision``)."""
    return value >= best * margin if higher_is_better else value <= best / margin


def _frac(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den is not None and den > 0 else None


def _times(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}×"


@dataclass
class ModelDecision:
    """One model's decision against the best model of its task."""

    model: str
    parameters: int | None
    decision: Decision | None


@dataclass
class Verdict:
    """The best model, each other model's decision against it, the smallest enough one and its savings."""

    task: str
    metric: str | None
    metric_label: str
    scale: str | None
    margin: float
    best: str | None = None
    best_quality: float | None = None
    chosen: str | None = None  # the smallest enough model; the best when no smaller one is proven enough
    chosen_quality: float | None = None
    smallest: bool = False  # the best model is also the smallest scored one (or as small as the smallest)
    size_ties: list[str] = field(default_factory=list)  # when smallest: the others of the same parameter count
    runner_up: str | None = None  # when the best is the smallest: the best of the others
    # ... and the best's own decision against it: a best point value on few samples proves nothing either
    smallest_decision: Decision | None = None
    decisions: list[ModelDecision] = field(default_factory=list)  # every other scored model, by size
    quality_rel: float | None = None  # chosen / best, direction-adjusted (point value)
    speed_ratio: float | None = None  # best TPOT p50 / chosen TPOT p50
    speed_ci_low: float | None = None
    speed_ci_high: float | None = None
    memory_frac: float | None = None
    energy_frac: float | None = None
    params_frac: float | None = None
    curve: SizeCurve | None = None  # quality against parameters
    bytes_curve: SizeCurve | None = None  # against weight bytes, when variants make it a different curve
    # the sweep level this verdict decides among and how it is named (llmbench.report.levels); "" for a task
    # of one level
    level: str = ""
    level_label: str = ""
    alone: bool = False  # one of several levels, and the only model with a value at it: nothing to compare

    def to_dict(self) -> dict:
        """Plain JSON-ready dict, with the sentences."""
        d = asdict(self)
        d["text"], d["decision_lines"] = self.text, self.decision_lines
        d["scaling_text"], d["knee_text"] = self.scaling_text, self.knee_text
        return d

    def decision(self, model: str) -> Decision | None:
        """The decision of ``model`` against the best, or None."""
        return next((d.decision for d in self.decisions if d.model == model), None)

    def _smaller(self) -> list[ModelDecision]:
        """Decisions of the models of known size smaller than the best, smallest first."""
        best_params = next((d.parameters for d in self.decisions if d.model == self.best), None)
        return [d for d in self.decisions if d.model != self.best and d.parameters is not None
                and (best_params is None or d.parameters < best_params)]

    @property
    def text(self) -> str:
        """One sentence: which smaller model is proven enough and what it saves, or that none is."""
        label = self.metric_label
        if self.best is None:
            return f"no finished model has a {label} value"
        if self.alone:
            return (f"{self.best} is the only model scored at this level ({label} "
                    f"{fmt_quality(self.best_quality, self.scale)}): no other model to compare it with")
        head = f"{self.best} has the best {label} ({fmt_quality(self.best_quality, self.scale)})"
        if self.smallest:
            # never "the smallest" when another model has as many parameters
            size = f"is as small as {', '.join(self.size_ties)}" if self.size_ties else "is the smallest model"
            d = self.smallest_decision
            if self.runner_up is None or d is None:
                return head + f" and {size}"
            details = _details(d, self.runner_up, label, self.scale)
            if d.outcome == ENOUGH:
                return head + f" and {size}; enough against {self.runner_up}: {details}"
            return (head + f" and {size}, but not proven enough against {self.runner_up}: "
                    f"{d.outcome} ({details})")
        smaller = self._smaller()
        if self.chosen is None or self.chosen == self.best:
            if not smaller:
                return head + "; no model of known smaller size to compare"
            # the largest smaller models first: the likeliest to be enough
            shown = [f"{d.model} is " + ("untested" if d.decision is None else
                                         f"{d.decision.outcome} ({_details(d.decision, self.best, label, self.scale)})")
                     for d in reversed(smaller[-_SHOWN:])]
            more = f"; and {len(smaller) - _SHOWN} more" if len(smaller) > _SHOWN else ""
            return f"no smaller model is proven enough: {head}; " + "; ".join(shown) + more
        d = self.decision(self.chosen)
        text = f"{self.chosen} is enough: {_details(d, self.best, label, self.scale)}"
        parts = []
        if self.speed_ratio is not None:
            ci = "" if self.speed_ci_low is None else f" [{_times(self.speed_ci_low)}, {_times(self.speed_ci_high)}]"
            parts.append(f"{_times(self.speed_ratio)} the speed{ci}")
        if self.memory_frac is not None:
            parts.append(f"{fmt_pct(self.memory_frac)} of the memory")
        if self.energy_frac is not None:
            parts.append(f"{fmt_pct(self.energy_frac)} of the energy")
        if parts:
            text += "; at " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])
        notes = []
        if self.memory_frac is not None or self.energy_frac is not None:
            notes.append("memory and energy: one measurement per row, no CI")
        if self.energy_frac is None:
            notes.append("energy not measured")
        below = [m.model for m in smaller if m.model != self.chosen and m.decision is not None
                 and m.decision.outcome == UNDECIDED and (m.parameters or 0) < self._chosen_params()]
        if below:
            notes.append(f"smaller and undecided: {', '.join(below)}")
        return text + (f" ({'; '.join(notes)})" if notes else "")

    def _chosen_params(self) -> int:
        return next((d.parameters or 0 for d in self.decisions if d.model == self.chosen), 0)

    @property
    def decision_lines(self) -> list[str]:
        """'model: enough: 98% of best's ROUGE-L [96%, 101%], above a 95% margin' for every other model."""
        return [f"{d.model}: {decision_text(d.decision, self.best or '?', self.metric_label, self.scale)}"
                for d in self.decisions if d.model != self.best]

    @property
    def scaling_text(self) -> str:
        """The size curve's steps (gain per doubling with its CI), '' with fewer than two sizes."""
        curves = [c for c in (self.curve, self.bytes_curve) if c is not None]
        return " | ".join(c.steps_text for c in curves)

    @property
    def knee_text(self) -> str:
        """Where more parameters stop paying (or why that cannot be said), '' with fewer than two sizes."""
        curves = [c for c in (self.curve, self.bytes_curve) if c is not None]
        return " | ".join(c.knee_text for c in curves)


def _untested(smaller: str, larger: str) -> None:
    return None


def task_verdict(tc: TaskComparison, margin: float, decide: Callable[[str, str], Decision | None] | None = None,
                 speed: Callable[[str, str], tuple | None] | None = None,
                 gain: Callable[[str, str], Gain | None] | None = None,
                 min_gain: float = DEFAULT_MIN_GAIN) -> Verdict:
    """The verdict of one compared task.

    ``decide(best, model)``: the non-inferiority Decision of ``model`` against ``best``; ``speed(best,
    chosen)``: (ratio, ci_low, ci_high) of best TPOT p50 / chosen TPOT p50; ``gain(smaller, larger)``: the
    paired quality Gain of the larger model. ``min_gain`` is in points of a 0-100 scale per doubling.
    Without ``decide`` nothing is proven and no smaller model is chosen.
    """
    hib = tc.higher_is_better
    v = Verdict(tc.task, tc.metric, tc.metric_label, tc.scale, margin)
    scored = [r for r in tc.results if r.ok and r.quality is not None]
    if not scored:
        return v
    sign = 1 if hib else -1
    best = max(scored, key=lambda r: (sign * r.quality, r.parameters is not None, -(r.parameters or 0)))
    v.best, v.best_quality = best.model, best.quality
    by_size = sorted(scored, key=lambda r: (r.parameters is None, r.parameters or 0, r.model))
    others = [r for r in scored if r is not best]
    # a tie in parameters with the smallest makes the best as small as it, whichever name sorts first
    v.smallest = by_size[0] is best or (best.parameters is not None and best.parameters == by_size[0].parameters)
    if v.smallest and best.parameters is not None:
        v.size_ties = [r.model for r in by_size if r is not best and r.parameters == best.parameters]
    if v.smallest and others and decide is not None:
        runner = max(others, key=lambda r: (sign * r.quality, r.parameters is not None, -(r.parameters or 0)))
        v.runner_up, v.smallest_decision = runner.model, decide(runner.model, best.model)
    for r in by_size:
        d = decide(best.model, r.model) if decide is not None and r is not best else None
        r.decision = d
        v.decisions.append(ModelDecision(r.model, r.parameters, d))
    unit_gain = min_gain * scale_range(tc.scale) / 100.0
    gain = gain or _untested
    v.curve = size_curve(tc.results, "parameters", hib, tc.metric_label, tc.scale, unit_gain, gain)
    bytes_curve = size_curve(tc.results, "weights_bytes", hib, tc.metric_label, tc.scale, unit_gain, gain)
    if bytes_curve is not None and v.curve is not None and \
            [p.model for p in bytes_curve.points] != [p.model for p in v.curve.points]:
        v.bytes_curve = bytes_curve  # variants (e.g. quantized) that share a parameter count
    enough = [r for r in by_size if r is not best and r.decision is not None and r.decision.outcome == ENOUGH
              and r.parameters is not None and (best.parameters is None or r.parameters < best.parameters)]
    chosen = enough[0] if enough else best
    v.chosen, v.chosen_quality = chosen.model, chosen.quality
    if chosen is best:
        return v
    v.quality_rel = _frac(*((chosen.quality, best.quality) if hib else (best.quality, chosen.quality)))
    if speed is not None and (found := speed(best.model, chosen.model)) is not None:
        v.speed_ratio, v.speed_ci_low, v.speed_ci_high = found
    else:
        v.speed_ratio = _frac(best.tpot_p50_s, chosen.tpot_p50_s)
    v.energy_frac = _frac(chosen.joules_per_sample, best.joules_per_sample)
    if chosen.memory_kind == best.memory_kind:
        v.memory_frac = _frac(chosen.peak_memory_bytes, best.peak_memory_bytes)
    v.params_frac = _frac(chosen.parameters, best.parameters)
    return v

