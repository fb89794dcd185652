"""Apply gate rules to the matching rows of two run records: one Check per rule x metric x row.

Pure data in, pure data out: no console, no files written. A change fails only when it is worse than the
rule's margin AND the worsening is significant (two-sided p-value of a randomization test below the chosen
level, llmbench.stats.permutation), unless ``strict`` asks for point values only. Quality: paired randomization
over the samples both rows share (significance.quality_delta); latency ``<field>.<stat>``: permutation test
of that statistic over each run's per-sample values (significance.latency_delta). Without per-sample data,
quality and latency means fall back to the recorded 95% CIs (non-overlap) or lm-eval's stderr; memory,
energy and tokens/s are single values per row, so they have no noise model and are compared as point
values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmbench.errors import UserError
from llmbench.gate.rules import Rule
from llmbench.records import ResultRow, RunRecord
from llmbench.stats import smallest_paired_p
from llmbench.stats.significance import (
    environment_differences,
    higher_is_better,
    index_samples,
    latency_delta,
    latency_p_floor,
    quality_delta,
    quality_p_floor,
    rescorable,
)

PASS, FAIL, MISSING, SKIPPED = "pass", "fail", "missing", "skipped"
NO_NOISE_MODEL = "no noise model: compared as point values"
STRICT = "point values (--strict)"
_SETTINGS_KEYS = ("setting", "batch_size", "max_new_tokens", "limit", "seed", "device", "chat_template")


@dataclass
class Check:
    """The verdict of one rule on one metric of one model x task row."""

    rule: str
    metric: str
    model: str
    task: str
    status: str  # pass | fail | missing | skipped
    baseline: float | None = None
    candidate: float | None = None
    limit: float | None = None  # largest allowed worsening, in the metric's unit
    higher_is_better: bool | None = None
    p_value: float | None = None
    ci_low: float | None = None  # 95% CI of candidate - baseline, when a bootstrap ran
    ci_high: float | None = None
    method: str = ""  # how noise was judged
    message: str = ""
    # the smallest p-value the noise test could give on these samples; at or above the significance level,
    # no change of this metric could have failed the check (see docs/ci.md, Noise)
    p_floor: float | None = None

    @property
    def row(self) -> str:
        """'model / task'."""
        return f"{self.model} / {self.task}"

    @property
    def delta(self) -> float | None:
        """candidate - baseline."""
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline

    @property
    def relative(self) -> float | None:
        """(candidate - baseline) / |baseline|; None when undefined."""
        d = self.delta
        if d is None or not self.baseline:
            return None
        return d / abs(self.baseline)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        d = dict(self.__dict__)
        d.update(row=self.row, delta=self.delta, relative=self.relative)
        return d


@dataclass
class GateReport:
    """Everything a verdict table, Markdown comment or JUnit file shows."""

    baseline_id: str
    candidate_id: str
    rules: list[Rule]
    rules_source: str
    significance: float
    strict: bool
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # rows only in the candidate, duplicate rows, ...
    environment: list[str] = field(default_factory=list)  # machine / version / settings differences

    @property
    def failures(self) -> list[Check]:
        """Checks that failed."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression."""
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        """Checks per status."""
        out = {PASS: 0, FAIL: 0, MISSING: 0, SKIPPED: 0}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def groups(self) -> dict[tuple[str, str, str], list[Check]]:
        """Checks grouped by (rule, model, task), in order: one group per rule x row."""
        out: dict[tuple[str, str, str], list[Check]] = {}
        for c in self.checks:
            out.setdefault((c.rule, c.model, c.task), []).append(c)
        return out


def format_value(metric: str, value: float | None) -> str:
    """A metric value for people: bytes in binary units, everything else to 4 significant digits."""
    if value is None:
        return "n/a"
    if metric.startswith("memory."):
        n = float(value)
        for unit in ("B", "KiB", "MiB", "GiB"):
            if abs(n) < 1024:
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
        return f"{n:.1f} TiB"
    return f"{value:.4g}"


def format_change(check: Check) -> str:
    """'+0.012 (+8.3%)' or 'n/a'."""
    d = check.delta
    if d is None:
        return "n/a"
    if check.metric.startswith("memory."):
        shown = ("+" if d >= 0 else "-") + format_value(check.metric, abs(d))
    else:
        shown = f"{d:+.4g}"
    rel = check.relative
    return f"{shown} ({rel * 100:+.1f}%)" if rel is not None else shown


def format_limit(check: Check) -> str:
    """The largest allowed change, signed in the worsening direction: '-1.8' or '+7.4 MiB'."""
    if check.limit is None or check.higher_is_better is None:
        return "n/a"
    return ("-" if check.higher_is_better else "+") + format_value(check.metric, check.limit)


def format_p(p: float | None) -> str:
    """'0.032', '<0.001' or 'n/a'."""
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def describe(check: Check) -> str:
    """One line that names the row, the rule and why the check has its status."""
    head = f"{check.row}: {check.metric} [{check.rule}]"
    if check.baseline is None or check.candidate is None:
        return f"{head}: {check.message}"
    text = (f"{head}: {format_value(check.metric, check.baseline)} -> "
            f"{format_value(check.metric, check.candidate)}, {format_change(check)}")
    return f"{text}; {check.message}" if check.message else text


# ---------------------------------------------------------------------------------------------- values

def _value(row: ResultRow, path: str):
    section, _, rest = path.partition(".")
    if section == "quality":
        entry = row.quality.get(rest)
        return entry.get("value") if isinstance(entry, dict) else entry
    if section == "latency":
        if rest == "tokens_per_s":
            return row.latency.get("tokens_per_s")
        fld, _, stat = rest.partition(".")
        entry = row.latency.get(fld)
        return entry.get(stat) if isinstance(entry, dict) else None
    return getattr(row, section).get(rest)


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _higher_is_better(path: str, base: ResultRow, cand: ResultRow) -> bool:
    section, _, rest = path.partition(".")
    if section == "quality":
        return higher_is_better(rest, base.quality.get(rest), cand.quality.get(rest))
    return path == "latency.tokens_per_s"


# ------------------------------------------------------------------------------------------------ noise

@dataclass
class _Noise:
    method: str
    significant: bool
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


def _from_delta(d, method: str, worse_sign: int, alpha: float) -> _Noise:
    significant = d.p_value < alpha and d.delta * worse_sign > 0
    return _Noise(method, significant, d.p_value, d.ci_low, d.ci_high)


def _ci_fallback(b_entry, c_entry, why: str, alpha: float) -> _Noise | None:
    if not isinstance(b_entry, dict) or not isinstance(c_entry, dict):
        return None
    if any(isinstance(e.get("n"), int) and e["n"] < 2 for e in (b_entry, c_entry)):
        # a one-sample "CI" has zero width; as with samples (smallest_paired_p(1) == 1), nothing can be told
        return _Noise("one sample: too few to tell a change from noise", False, p_value=1.0)
    bl, bh = _number(b_entry.get("ci_low")), _number(b_entry.get("ci_high"))
    cl, ch = _number(c_entry.get("ci_low")), _number(c_entry.get("ci_high"))
    if None not in (bl, bh, cl, ch):
        # non-overlap of two 95% CIs is a conservative test (stricter than alpha=0.05)
        return _Noise(f"95% CI overlap, {why}", ch < bl or cl > bh)
    bs, cs = _number(b_entry.get("stderr")), _number(c_entry.get("stderr"))
    bv, cv = _number(b_entry.get("value")), _number(c_entry.get("value"))
    if None not in (bs, cs, bv, cv) and (bs > 0 or cs > 0):
        z = (cv - bv) / math.hypot(bs, cs)
        p = math.erfc(abs(z) / math.sqrt(2))
        return _Noise(f"normal test on stderr, {why}", p < alpha, p_value=p)
    return None


def _p_floor(path: str, base: ResultRow, cand: ResultRow, b_samples: dict | None, c_samples: dict | None,
             resamples: int, seed: int) -> float | None:
    """The smallest p-value ``_noise`` could return for this metric on these rows' samples, whatever the
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


def _noise(path: str, base: ResultRow, cand: ResultRow, b_samples: dict | None, c_samples: dict | None,
           worse_sign: int, alpha: float, seed: int, resamples: int) -> _Noise | None:
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
                return _from_delta(d, f"permutation test of {stat} over per-sample values", worse_sign, alpha)
        if stat == "mean":
            return _ci_fallback(base.latency.get(fld), cand.latency.get(fld), "no per-sample values", alpha)
    return None


# ----------------------------------------------------------------------------------------------- checks

def _energy_skip(base: ResultRow, cand: ResultRow) -> str | None:
    for side, row in (("baseline", base), ("candidate", cand)):
        if row.energy.get("available") and row.energy.get("short_window"):
            return (f"energy window too short to compare in {side}: "
                    f"{row.energy.get('warning') or 'shorter than the sensor resolves'}")
    for side, row in (("baseline", base), ("candidate", cand)):
        if not row.energy.get("available"):
            reason = row.energy.get("reason") or "not measured"
            both = not (cand if side == "baseline" else base).energy.get("available")
            where = "" if both else f" in {side}"
            return f"energy unavailable{where}: {reason}"
    return None


def _check_metric(rule: Rule, path: str, key: tuple[str, str], base: ResultRow, cand: ResultRow,
                  samples: tuple[dict | None, dict | None], opts: dict) -> Check:
    check = Check(rule=rule.text, metric=path, model=key[0], task=key[1], status=PASS)
    if cand.status != "ok":
        check.status, check.message = FAIL, f"candidate row failed: {cand.error or cand.status}"
        return check
    if path.startswith("energy."):
        skip = _energy_skip(base, cand)
        if skip:
            check.status, check.message = SKIPPED, skip
            return check
    bv, cv = _number(_value(base, path)), _number(_value(cand, path))
    check.baseline, check.candidate = bv, cv
    if bv is None or cv is None:
        if bv is None and cv is None:
            check.status, check.message = SKIPPED, "not measured in either row"
        else:
            side = "baseline" if bv is None else "candidate"
            check.status = FAIL if opts["fail_on_missing"] else MISSING
            check.message = f"missing in {side}"
        return check
    hib = _higher_is_better(path, base, cand)
    check.higher_is_better = hib
    if not opts["strict"]:
        check.p_floor = _p_floor(path, base, cand, *samples, resamples=_resamples(opts), seed=opts["seed"])
    worsening = (bv - cv) if hib else (cv - bv)
    check.limit = rule.amount * abs(bv) if rule.relative else rule.amount
    if worsening <= check.limit + 1e-12 * max(1.0, abs(bv)):
        check.message = "within limit"
        return check
    worse_word = "drop" if hib else "growth"
    if opts["strict"]:
        check.status, check.method = FAIL, STRICT
        check.message = f"{worse_word} beyond the allowed {rule.describe_limit()} ({STRICT})"
        return check
    noise = _noise(path, base, cand, *samples, worse_sign=-1 if hib else 1, alpha=opts["alpha"],
                   seed=opts["seed"], resamples=_resamples(opts))
    if noise is None:
        check.status, check.method = FAIL, NO_NOISE_MODEL
        check.message = f"{worse_word} beyond the allowed {rule.describe_limit()} ({NO_NOISE_MODEL})"
        return check
    check.method, check.p_value = noise.method, noise.p_value
    check.ci_low, check.ci_high = noise.ci_low, noise.ci_high
    shown = format_p(noise.p_value)
    p = "" if noise.p_value is None else f"p{shown}, " if shown.startswith("<") else f"p={shown}, "
    if noise.significant:
        check.status = FAIL
        check.message = f"significant {worse_word} beyond the allowed {rule.describe_limit()} ({p}{noise.method})"
    elif could_not_fail(check, opts["alpha"]):
        check.message = (f"beyond {rule.describe_limit()} but too few samples for any change to be significant "
                         f"(smallest possible p={format_p(check.p_floor)}; {noise.method})")
    else:
        check.message = f"beyond {rule.describe_limit()} but within the noise ({p}{noise.method})"
    return check


def could_not_fail(check: Check, alpha: float) -> bool:
    """True when the check's noise test could not have failed on these samples, whatever the change."""
    return check.p_floor is not None and check.p_floor >= alpha


def blind_checks(checks: list[Check], alpha: float) -> list[Check]:
    """Checks whose noise test could not have failed on these samples, whatever the change."""
    return [c for c in checks if could_not_fail(c, alpha)]


def verdict_mark(check: Check, alpha: float) -> str:
    """The check's status, or for a pass beyond its margin 'pass~' (within the noise) or 'pass?' (too few
    samples for any change to be significant)."""
    if check.status == PASS and check.message.startswith("beyond"):
        return "pass?" if could_not_fail(check, alpha) else "pass~"
    return check.status


def _blind_note(checks: list[Check], alpha: float) -> str | None:
    blind = blind_checks(checks, alpha)
    if not blind:
        return None
    rows = sorted({c.row for c in blind})
    shown = ", ".join(rows[:4]) + (f" and {len(rows) - 4} more" if len(rows) > 4 else "")
    needs = []
    if any(c.metric.startswith("quality.") for c in blind):
        need = 1
        while smallest_paired_p(need) >= alpha:  # 0.0 from 1024 samples on: the loop ends
            need += 1
        needs.append(f"a quality check needs at least {need} samples that differ between the runs")
    if any(c.metric.startswith("latency.") for c in blind):
        needs.append("a latency check more timings per side")
    return (f"{len(blind)} of {len(checks)} checks could not fail, whatever the change: their rows have too few "
            f"samples for any change to be significant at {alpha:g} ({shown}); {' and '.join(needs)}. "
            "Gate on more examples per task (--limit) or use --strict")


# random arrangements resolve p only down to 1 / (resamples + 1): a level below 20 / resamples gets more
# of them, up to this many (beyond it a check that cannot reach the level is reported as such)
MAX_RESAMPLES = 20_000


def _resamples(opts: dict) -> int:
    return max(opts["resamples"], min(math.ceil(20 / opts["alpha"]), MAX_RESAMPLES))


def _expand(rule: Rule, base: ResultRow) -> list[str]:
    if rule.wildcard:
        return [f"quality.{name}" for name in base.quality]
    return [rule.path]


def _check_known_quality(rules: list[Rule], records: list[RunRecord]) -> None:
    from llmbench.metrics import METRIC_NAMES, get_metric

    seen = {name for r in records for row in r.rows for name in row.quality}
    for rule in rules:
        if rule.section != "quality" or rule.wildcard:
            continue
        name = rule.path.split(".", 1)[1]
        if name not in seen and name not in METRIC_NAMES:
            try:
                get_metric(name)
            except UserError as exc:
                raise UserError(f"rule {rule.text!r}: {exc}") from None


def _index(record: RunRecord, notes: list[str]) -> dict[tuple[str, str], ResultRow]:
    out: dict[tuple[str, str], ResultRow] = {}
    for row in record.rows:
        if row.key in out:
            notes.append(f"{record.run_id}: row {row.key[0]} / {row.key[1]} appears twice; the last one is used")
        out[row.key] = row
    return out


def _samples(record: RunRecord, samples: list[dict] | None) -> dict:
    if samples is None:
        from llmbench.records.store import read_samples

        samples = read_samples(record)
    try:
        return index_samples(samples)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"samples of run {record.run_id} are malformed ({type(exc).__name__}: {exc})") from None


def _keys(rows: dict) -> str:
    return ", ".join(f"{m}/{t}" for m, t in rows) or "none"


def _settings_differences(base: RunRecord, cand: RunRecord) -> list[str]:
    out = []
    for key in _SETTINGS_KEYS:
        a, b = base.settings.get(key), cand.settings.get(key)
        if a != b:
            out.append(f"runs differ in setting {key}: {a} (baseline) vs {b} (candidate)")
    return out


def evaluate(baseline: RunRecord, candidate: RunRecord, rules: list[Rule], *,
             rules_source: str = "", significance: float = 0.05, strict: bool = False,
             fail_on_missing: bool = False, baseline_samples: list[dict] | None = None,
             candidate_samples: list[dict] | None = None, seed: int = 0, resamples: int = 1000) -> GateReport:
    """Gate ``candidate`` against ``baseline``: a report with one Check per rule x metric x baseline row.

    Rows are matched by (model name, task name). A baseline row absent from the candidate gives ``missing``
    checks; a failed candidate row fails every rule; rows only in the candidate are noted, not gated.
    Samples default to each record's samples.jsonl. No rows in common is a UserError (exit code 2).
    """
    _check_known_quality(rules, [baseline, candidate])
    report = GateReport(baseline.run_id, candidate.run_id, list(rules), rules_source, significance, strict)
    base_rows, cand_rows = _index(baseline, report.notes), _index(candidate, report.notes)
    if not set(base_rows) & set(cand_rows):
        raise UserError(f"no model x task rows in common (baseline: {_keys(base_rows)}; "
                        f"candidate: {_keys(cand_rows)})")
    report.environment = environment_differences([baseline, candidate]) + _settings_differences(baseline, candidate)
    b_idx, c_idx = _samples(baseline, baseline_samples), _samples(candidate, candidate_samples)
    opts = {"strict": strict, "alpha": significance, "fail_on_missing": fail_on_missing,
            "seed": seed, "resamples": resamples}
    for key, base in base_rows.items():
        cand = cand_rows.get(key)
        for rule in rules:
            report.checks.extend(_row_checks(rule, key, base, cand, (b_idx.get(key), c_idx.get(key)), opts))
    for key in cand_rows:
        if key not in base_rows:
            report.notes.append(f"row {key[0]} / {key[1]} is only in the candidate; not gated")
    blind = _blind_note(report.checks, significance)
    if blind:
        report.notes.append(blind)
    return report


def _row_checks(rule: Rule, key, base: ResultRow, cand: ResultRow | None, samples, opts) -> list[Check]:
    def single(status: str, message: str) -> list[Check]:
        return [Check(rule.text, rule.path, key[0], key[1], status, message=message)]

    if cand is None:
        return single(FAIL if opts["fail_on_missing"] else MISSING, "row missing in candidate")
    if base.status != "ok":
        return single(SKIPPED, f"baseline row failed: {base.error or base.status}")
    paths = _expand(rule, base)
    if not paths:
        if cand.status != "ok":
            return single(FAIL, f"candidate row failed: {cand.error or cand.status}")
        return single(SKIPPED, "no quality metrics in the baseline row")
    return [_check_metric(rule, p, key, base, cand, samples, opts) for p in paths]
