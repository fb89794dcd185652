"""The significance and non-inferiority tests of a comparison, run once per pair of rows and cached: the
table's marks (``Tester.quality``, ``Tester.latency``) and the verdict's decisions, speed CIs and size-curve
gains (``TaskTests``, by model name)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from llmbench.errors import UserError
from llmbench.records.rows import examples_available
from llmbench.report.merge import MergedRow
from llmbench.stats import PairedDelta, Quantile
from llmbench.stats.noninferiority import Decision, Gain, undecided, unpaired_ratio
from llmbench.stats.significance import (
    DifferentExamples,
    latency_delta,
    latency_values,
    quality_delta,
    quality_gain,
    quality_noninferiority,
    recorded_noninferiority,
    rescorable,
)

if TYPE_CHECKING:  # compare runs the tests: importing it back at run time would be a cycle
    from llmbench.report.compare import TaskComparison


class Tester:
    """Runs and caches the significance tests of one comparison."""

    def __init__(self, resamples: int, seed: int):
        self.resamples, self.seed = resamples, seed
        self.untested: set[str] = set()
        self._cache: dict[tuple, PairedDelta | None] = {}

    def _cached(self, key: tuple, compute) -> PairedDelta | None:
        if self.resamples <= 0:
            return None
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def quality(self, metric: str, a: MergedRow, b: MergedRow) -> PairedDelta | None:
        def compute():
            if not rescorable(metric, a.row.quality.get(metric), b.row.quality.get(metric)):
                return None  # the task's notes say so
            try:
                return quality_delta(metric, a.samples, b.samples, seed=self.seed, resamples=self.resamples)
            except (UserError, KeyError, TypeError, ValueError) as exc:
                self.untested.add(f"quality significance not tested for {metric}: {exc}")
                return None

        return self._cached(("q", metric, a.run_id, a.model, b.run_id, b.model, a.task), compute)

    def latency(self, name: str, a: MergedRow, b: MergedRow) -> PairedDelta | None:
        return self._cached(("l", name, a.run_id, a.model, b.run_id, b.model, a.task), lambda: latency_delta(
            name, a.samples, b.samples, "p50", seed=self.seed, resamples=self.resamples))

    def noninferiority(self, metric: str, best: MergedRow, row: MergedRow, margin: float, hib: bool,
                       scale: str | None) -> Decision:
        """``row`` against ``best``: paired over their shared samples, else unpaired from recorded stderrs."""
        entries = best.row.quality.get(metric), row.row.quality.get(metric)
        if self.resamples <= 0:
            return undecided("untested (--resamples 0)", margin)
        found = None
        if rescorable(metric, *entries) and set(best.samples) & set(row.samples):
            try:
                found = quality_noninferiority(metric, best.samples, row.samples, margin, hib, scale,
                                               seed=self.seed, resamples=self.resamples)
            except DifferentExamples as exc:  # no test on other examples stands in, paired or not
                return undecided(f"untested: {exc}", margin)
            except (UserError, KeyError, TypeError, ValueError) as exc:
                self.untested.add(f"non-inferiority not tested for {metric}: {exc}")
        found = found or recorded_noninferiority(*entries, margin, hib, scale)
        if found is not None:
            return replace(found, available=examples_available(best.row, row.row))
        why = "no shared per-sample outputs" if rescorable(metric, *entries) else \
            f"no per-sample scorer for {metric} and no standard errors"
        return undecided(f"untested: {why}", margin)

    def gain(self, metric: str, small: MergedRow, large: MergedRow, hib: bool) -> Gain | None:
        """large - small on ``metric`` (positive = better) with its paired CI; None when untestable. Cached:
        the size curves on both axes and the knee's summary ask for the same pairs."""
        def compute():
            if not rescorable(metric, small.row.quality.get(metric), large.row.quality.get(metric)):
                return None
            try:
                return quality_gain(metric, small.samples, large.samples, hib, seed=self.seed,
                                    resamples=self.resamples)
            except (UserError, KeyError, TypeError, ValueError):
                return None  # its non-inferiority test says why

        return self._cached(("g", metric, hib, small.run_id, small.model, large.run_id, large.model,
                             small.task), compute)

    def speed(self, best: MergedRow, chosen: MergedRow) -> tuple | None:
        """best TPOT p50 / chosen TPOT p50 with an unpaired bootstrap CI; None without per-sample values."""
        return unpaired_ratio(latency_values(best.samples, "tpot_s"), latency_values(chosen.samples, "tpot_s"),
                              Quantile(), resamples=self.resamples, seed=self.seed)


class TaskTests:
    """The tests of one task's verdict, by model name: ``decide``, ``speed`` and ``gain``."""

    def __init__(self, tester: Tester, tc: TaskComparison, rows: dict[str, MergedRow], margin: float):
        self.tester, self.tc, self.rows, self.margin = tester, tc, rows, margin

    def decide(self, best: str, model: str) -> Decision:
        tc = self.tc
        return self.tester.noninferiority(tc.metric, self.rows[best], self.rows[model], self.margin,
                                          tc.higher_is_better, tc.scale)

    def speed(self, best: str, chosen: str) -> tuple | None:
        return self.tester.speed(self.rows[best], self.rows[chosen])

    def gain(self, smaller: str, larger: str) -> Gain | None:
        return self.tester.gain(self.tc.metric, self.rows[smaller], self.rows[larger], self.tc.higher_is_better)
