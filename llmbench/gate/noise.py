"""The gate's noise model: is a worsening beyond a rule's margin real, and could the test have told at all?

Quality: paired randomization over the samples both rows share (``significance.quality_delta``); latency
``<field>.<stat>``: permutation test of that statistic over each run's per-sample values
(``significance.latency_delta``). Without per-sample data, quality and latency means fall back to the
recorded 95% CIs (non-overlap) or lm-eval's stderr. Memory, energy and tokens/s are single values per row:
no noise model (``noise`` returns None). ``p_floor`` is the smallest p-value a test could give on the rows'
samples whatever the change: at or above the significance level the check could not have failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmbench.gate.checks import Check
from llmbench.records import ResultRow
from llmbench.stats import smallest_unpaired_p
from llmbench.stats.noninferiority import examples_to_decide, fewest_paired_samples, side_se, z_value
from llmbench.stats.significance import (
    latency_delta,
    latency_p_floor,
    quality_delta,
    quality_p_floor,
    rescorable,
)

# random arrangements resolve p only down to 1 / (resamples + 1): a level below 20 / resamples gets more
# of them, up to this many (beyond it a check that cannot reach the level is reported as such)
MAX_RESAMPLES = 20_000
_Z95 = z_value(0.95)


def resamples_for(resamples: int, alpha: float) -> int:
    """Enough random arrangements to resolve p-values at the level ``alpha`` (at most MAX_RESAMPLES)."""
    return max(resamples, min(math.ceil(20 / alpha), MAX_RESAMPLES))


def number(v) -> float | None:
    """A finite number as float; None for anything else (missing, bool, NaN, text)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


@dataclass
class Noise:
    """What the noise test said about one worsening."""

    method: str
    significant: bool
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None  # shared samples (paired) or the smaller side's timings (unpaired)
    paired: bool = True


def _from_delta(d, method: str, worse_sign: int, alpha: float, paired: bool = True) -> Noise:
    significant = d.p_value < alpha and d.delta * worse_sign > 0
    return Noise(method, significant, d.p_value, d.ci_low, d.ci_high, d.n, paired)


def _ci_fallback(b_entry, c_entry, why: str, alpha: float) -> Noise | None:
    if not isinstance(b_entry, dict) or not isinstance(c_entry, dict):
        return None
    if any(isinstance(e.get("n"), int) and e["n"] < 2 for e in (b_entry, c_entry)):
        # a one-sample "CI" has zero width; as with samples (smallest_paired_p(1) == 1), nothing can be told
        return Noise("one sample: too few to tell a change from noise", False, p_value=1.0)
    bl, bh = number(b_entry.get("ci_low")), number(b_entry.get("ci_high"))
    cl, ch = number(c_entry.get("ci_low")), number(c_entry.get("ci_high"))
    bv, cv = number(b_entry.get("value")), number(c_entry.get("value"))
    ns = [e.get("n") for e in (b_entry, c_entry) if isinstance(e.get("n"), int)]
    n = min(ns) if ns else None
    if None not in (bl, bh, cl, ch):
        # non-overlap of two 95% CIs is a conservative test (stricter than alpha=0.05); the difference's CI,
        # for the examples that would decide, from the two half-widths as normal standard errors
        se = math.hypot((bh - bl) / 2, (ch - cl) / 2) / _Z95
        ci = (None, None) if bv is None or cv is None else (cv - bv - _Z95 * se, cv - bv + _Z95 * se)
        return Noise(f"95% CI overlap, {why}", ch < bl or cl > bh, None, *ci, n, paired=False)
    bs, cs = number(b_entry.get("stderr")), number(c_entry.get("stderr"))
    if None not in (bs, cs, bv, cv) and (bs > 0 or cs > 0):
        se = math.hypot(bs, cs)
        z = (cv - bv) / se
        p = math.erfc(abs(z) / math.sqrt(2))
        return Noise(f"normal test on stderr, {why}", p < alpha, p, cv - bv - _Z95 * se, cv - bv + _Z95 * se, n,
                     paired=False)
    return None


def p_floor(path: str, base: ResultRow, cand: ResultRow, b_samples: dict | None, c_samples: dict | None,
            resamples: int, seed: int) -> float | None:
    """The smallest p-value ``noise`` could return for this metric on these rows' samples, whatever the
    change; None when its test has no such floor (CI overlap, stderr) or the metric has no noise model."""
    section, _, rest = path.partition(".")
    if section == "quality":
        entries = base.quality.get(rest), cand.quality.get(rest)
        floor = quality_p_floor(b_samples or {}, c_samples or {}, resamples) if rescorable(rest, *entries) else None
        if floor is None and any(isinstance(e, dict) and isinstance(e.get("n"), int) and e["n"] < 2
                                 for e in entries):
            return 1.0
        return floor
    if section == "latency" and rest != "tokens_per_s" and b_samples and c_samples:
        fld, _, stat = rest.partition(".")
        return latency_p_floor(fld, b_samples, c_samples, stat, seed, resamples)
    return None


def noise(path: str, base: ResultRow, cand: ResultRow, b_samples: dict | None, c_samples: dict | None,
          worse_sign: int, alpha: float, seed: int, resamples: int) -> Noise | None:
    """How sure we are that the change is real; None when the metric has no noise model."""
    section, _, rest = path.partition(".")
    if section == "quality":
        shared = set(b_samples or {}) & set(c_samples or {})
        entries = base.quality.get(rest), cand.quality.get(rest)
        ours = rescorable(rest, *entries)
        if shared and ours:
            d = quality_delta(rest, b_samples, c_samples, seed=seed, resamples=resamples)
            return _from_delta(d, f"paired randomization test over {len(shared)} shared samples", worse_sign, alpha)
        why = "no shared samples" if ours else "no per-sample scorer"
        return _ci_fallback(*entries, why, alpha)
    if section == "latency" and rest != "tokens_per_s":
        fld, _, stat = rest.partition(".")
        if b_samples and c_samples:
            d = latency_delta(fld, b_samples, c_samples, statistic=stat, seed=seed, resamples=resamples)
            if d is not None:
                return _from_delta(d, f"permutation test of {stat} over per-sample values", worse_sign, alpha,
                                   paired=False)
        if stat == "mean":
            return _ci_fallback(base.latency.get(fld), cand.latency.get(fld), "no per-sample values", alpha)
    return None


def could_not_fail(check: Check, alpha: float) -> bool:
    """True when the check's noise test could not have failed on these samples, whatever the change."""
    return check.p_floor is not None and check.p_floor >= alpha


def blind_checks(checks: list[Check], alpha: float) -> list[Check]:
    """Checks whose noise test could not have failed on these samples, whatever the change."""
    return [c for c in checks if could_not_fail(c, alpha)]


def examples_to_tell(check: Check, paired: bool, alpha: float) -> int | None:
    """For an undecided change check: the examples (shared samples, or timings per side) at which a change
    like the observed one would be significant at ``alpha`` in 80% of runs, from the spread of its 95%
    bootstrap CI (``stats.noninferiority.examples_to_decide`` against no change); at least enough for the
    randomization test to reach ``alpha`` at all. None without a CI or a sample count."""
    d, n = check.delta, check.n
    if d is None or n is None or n < 1 or check.ci_low is None or check.ci_high is None:
        return None
    floor = n + 1
    if paired:
        floor = max(floor, fewest_paired_samples(alpha))
    else:
        while smallest_unpaired_p(floor, floor) >= alpha:
            floor += 1
    se = side_se(d, check.ci_low, check.ci_high, 0.0, n) if n > 1 else None
    return examples_to_decide(n, d, se, 0.0, confidence=1 - alpha, at_least=floor)


def blind_note(checks: list[Check], alpha: float) -> str | None:
    """The warning that names the rows whose checks could not have decided, or None when there are none."""
    blind = blind_checks(checks, alpha)
    if not blind:
        return None
    rows = sorted({c.row for c in blind})
    shown = ", ".join(rows[:4]) + (f" and {len(rows) - 4} more" if len(rows) > 4 else "")
    needs = []
    if any(c.metric.startswith("quality.") for c in blind):
        needs.append(f"a quality check needs at least {fewest_paired_samples(alpha)} samples that differ between "
                     "the runs")
    if any(c.metric.startswith("latency.") for c in blind):
        needs.append("a latency check more timings per side")
    return (f"{len(blind)} of {len(checks)} checks could not fail, whatever the change: their rows have too few "
            f"samples for any change to be significant at {alpha:g} ({shown}); {' and '.join(needs)}. "
            "Gate on more examples per task (--limit), or use --strict")
