"""Apply gate rules to the matching rows of two run records: one Check per rule x metric x row.

Pure data in, pure data out: no console, no files written. A change fails only when it is worse than the
rule's margin AND the worsening is significant (llmbench.gate.noise: the two-sided p-value of a
randomization test below the chosen level), unless ``strict`` asks for point values only; past the margin
but not significant, it is undecided, with the examples that would decide. Memory, energy and tokens/s have
no noise model and are compared as point values. ``noninferior`` rules pass only a candidate proven to
reach their share of the baseline (llmbench.stats.noninferiority). Rows that measured other things (different
examples, a different generation budget: llmbench.gate.comparable) make the checks concerned undecided.
"""

from __future__ import annotations

from dataclasses import replace

from llmbench.errors import UserError
from llmbench.gate.checks import FAIL, MISSING, NOT_CHECKED, PASS, UNDECIDED, Check, GateReport
from llmbench.gate.comparable import KINDS, budget_note, budgets, examples_note, incomparable, settings_differences
from llmbench.gate.noise import blind_note, could_not_fail, examples_to_tell, noise, number, p_floor, resamples_for
from llmbench.gate.rules import Rule
from llmbench.records import ResultRow, RunRecord
from llmbench.records.rows import examples_available
from llmbench.records.store import gc_paused
from llmbench.report.format import decision_details, examples_needed_text, fmt_p
from llmbench.stats.noninferiority import ENOUGH, NOT_ENOUGH
from llmbench.stats.significance import (
    environment_differences,
    example_differences,
    higher_is_better,
    index_samples,
    quality_noninferiority,
    recorded_noninferiority,
    rescorable,
)

NO_NOISE_MODEL = "no noise model: compared as point values"
STRICT = "point values (--strict)"


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


def _higher_is_better(path: str, base: ResultRow, cand: ResultRow) -> bool:
    section, _, rest = path.partition(".")
    if section == "quality":
        return higher_is_better(rest, base.quality.get(rest), cand.quality.get(rest))
    return path == "latency.tokens_per_s"


# ----------------------------------------------------------------------------------------------- checks

def _energy_unusable(base: ResultRow, cand: ResultRow) -> tuple[str, str] | None:
    """(status, message) when energy cannot be compared: not checked when neither side has a usable
    reading, missing when one side has none."""
    for side, row in (("baseline", base), ("candidate", cand)):
        if row.energy.get("available") and row.energy.get("short_window"):
            return NOT_CHECKED, (f"energy window too short to compare in {side}: "
                                 f"{row.energy.get('warning') or 'shorter than the sensor resolves'}")
    for side, row in (("baseline", base), ("candidate", cand)):
        if not row.energy.get("available"):
            reason = row.energy.get("reason") or "not measured"
            if not (cand if side == "baseline" else base).energy.get("available"):
                return NOT_CHECKED, f"energy unavailable in both runs: {reason}"
            return MISSING, f"energy unavailable in {side}: {reason}"
    return None


def _check_metric(rule: Rule, path: str, key: tuple[str, str], base: ResultRow, cand: ResultRow,
                  samples: tuple[dict | None, dict | None], opts: dict) -> Check:
    check = Check(rule=rule.text, metric=path, model=key[0], task=key[1], status=PASS)
    if path.startswith("quality."):
        check.available = examples_available(base, cand)
    if cand.status != "ok":
        check.status, check.message = FAIL, f"candidate row failed: {cand.error or cand.status}"
        return check
    if path.startswith("energy."):
        unusable = _energy_unusable(base, cand)
        if unusable:
            check.status, check.message = unusable
            if check.status == MISSING and opts["fail_on_missing"]:
                check.status = FAIL
            return check
    bv, cv = number(_value(base, path)), number(_value(cand, path))
    check.baseline, check.candidate = bv, cv
    if bv is None or cv is None:
        if bv is None and cv is None:
            check.status, check.message = NOT_CHECKED, "not measured in either row"
        else:
            side = "baseline" if bv is None else "candidate"
            check.status = FAIL if opts["fail_on_missing"] else MISSING
            check.message = f"missing in {side}"
        return check
    hib = _higher_is_better(path, base, cand)
    check.higher_is_better = hib
    unlike = incomparable(path, opts)
    if unlike:  # no test can tell this change from what the rows measured differently
        check.status = UNDECIDED
        check.method, check.message = unlike
        return check
    if rule.noninferior:
        return _check_noninferior(check, rule, base, cand, samples, opts)
    if not opts["strict"]:
        check.p_floor = p_floor(path, base, cand, *samples, resamples=_resamples(opts), seed=opts["seed"])
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
    found = noise(path, base, cand, *samples, worse_sign=-1 if hib else 1, alpha=opts["alpha"],
                  seed=opts["seed"], resamples=_resamples(opts))
    if found is None:
        check.status, check.method = FAIL, NO_NOISE_MODEL
        check.message = f"{worse_word} beyond the allowed {rule.describe_limit()} ({NO_NOISE_MODEL})"
        return check
    check.method, check.p_value = found.method, found.p_value
    check.ci_low, check.ci_high, check.n = found.ci_low, found.ci_high, found.n
    shown = fmt_p(found.p_value)
    p = "" if found.p_value is None else f"p{shown}, " if shown.startswith("<") else f"p={shown}, "
    if found.significant:
        check.status = FAIL
        check.message = f"significant {worse_word} beyond the allowed {rule.describe_limit()} ({p}{found.method})"
        return check
    # past the margin, not significant: the test cannot tell a real worsening from noise, so it is no pass
    check.status = UNDECIDED
    check.examples_needed = examples_to_tell(check, found.paired, opts["alpha"])
    if could_not_fail(check, opts["alpha"]):
        check.message = (f"{worse_word} beyond {rule.describe_limit()}, but too few samples for any change to be "
                         f"significant (smallest possible p={fmt_p(check.p_floor)}; {found.method})")
    else:
        check.message = f"{worse_word} beyond {rule.describe_limit()}, but within the noise ({p}{found.method})"
    check.message += _would_decide(check, opts["alpha"], found.paired)
    return check


def _would_decide(check: Check, alpha: float, paired: bool) -> str:
    if check.examples_needed is None:
        return "; more examples per task would decide"
    quality = check.metric.startswith("quality.")
    return "; " + examples_needed_text(check.examples_needed, f"this run has {check.n:,}", check.n,
                                       check.available if quality else None,
                                       "examples" if quality else "timings per side", 1 - alpha, paired)


def _check_noninferior(check: Check, rule: Rule, base: ResultRow, cand: ResultRow,
                       samples: tuple[dict | None, dict | None], opts: dict) -> Check:
    """``quality.<metric>:noninferior:<share>``: pass only when the candidate is proven to reach the share."""
    metric = check.metric.partition(".")[2]
    entries = base.quality.get(metric), cand.quality.get(metric)
    scale = next((e.get("scale") for e in entries if isinstance(e, dict) and e.get("scale")), None)
    hib, share = check.higher_is_better, rule.amount
    check.limit = share
    bv, cv = check.baseline, check.candidate
    if opts["strict"]:
        check.method = STRICT
        den = bv if hib else cv
        ratio = check.ratio = ((cv if hib else bv) / den) if den > 0 else None
        ok = ratio >= share if ratio is not None else (cv >= bv if hib else cv <= bv)
        check.status = PASS if ok else FAIL
        check.message = f"{'reaches' if ok else 'below'} {rule.describe_limit()} ({STRICT})"
        return check
    b_samples, c_samples = samples
    decision = None
    if rescorable(metric, *entries) and set(b_samples or {}) & set(c_samples or {}):
        decision = quality_noninferiority(metric, b_samples, c_samples, share, hib, scale, seed=opts["seed"],
                                          resamples=max(opts["resamples"], 1000), confidence=1 - opts["alpha"])
    if decision is None:
        decision = recorded_noninferiority(*entries, share, hib, scale, confidence=1 - opts["alpha"])
    if decision is None:
        check.status, check.method = UNDECIDED, "no paired test"
        check.message = (f"cannot test {rule.describe_limit()}: no shared per-sample outputs and no standard "
                         "errors; more examples per task, with samples.jsonl, would decide")
        return check
    check.method, check.n = decision.method, decision.n
    decision = replace(decision, available=check.available)
    check.ratio = decision.estimate if decision.measure == "ratio" else None
    check.ci_low, check.ci_high = decision.ci_low, decision.ci_high
    shown = decision_details(decision, "the baseline", metric, scale)
    check.status = {ENOUGH: PASS, NOT_ENOUGH: FAIL}.get(decision.outcome, UNDECIDED)
    if check.status == UNDECIDED:
        check.examples_needed = decision.examples_needed
        check.message = f"not proven to reach {rule.describe_limit()}: {shown}"
    else:
        verb = "proven to reach" if check.status == PASS else "proven below"
        check.message = f"{verb} {rule.describe_limit()}: {shown}"
    return check


def _resamples(opts: dict) -> int:
    return resamples_for(opts["resamples"], opts["alpha"])


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


@gc_paused()  # 100,000 rows make half a million checks: collections would walk them again and again
def evaluate(baseline: RunRecord, candidate: RunRecord, rules: list[Rule], *,
             rules_source: str = "", significance: float = 0.05, strict: bool = False,
             fail_on_missing: bool = False, baseline_samples: list[dict] | None = None,
             candidate_samples: list[dict] | None = None, seed: int = 0, resamples: int = 1000,
             undecided: str = "fail") -> GateReport:
    """Gate ``candidate`` against ``baseline``: a report with one Check per rule x metric x baseline row.

    Rows are matched by (model name, task name). A baseline row absent from the candidate gives ``missing``
    checks; a failed candidate row fails every rule; rows only in the candidate are noted, not gated. A
    change past its margin that the noise test cannot tell from chance is ``undecided``: with ``undecided``
    "fail" (the default) the report's exit code is then 3, with "pass" it does not count.
    Samples default to each record's samples.jsonl. No rows in common is a UserError (exit code 2).
    """
    _check_known_quality(rules, [baseline, candidate])
    report = GateReport(baseline.run_id, candidate.run_id, list(rules), rules_source, significance, strict,
                        undecided_policy=undecided)
    base_rows, cand_rows = _index(baseline, report.notes), _index(candidate, report.notes)
    if not set(base_rows) & set(cand_rows):
        raise UserError(f"no model x task rows in common (baseline: {_keys(base_rows)}; "
                        f"candidate: {_keys(cand_rows)})")
    for rows in (base_rows, cand_rows):  # the candidate's count wins: it is the run being judged
        for (model, _), row in rows.items():
            if isinstance(row.model.get("parameters"), (int, float)):
                report.parameters[model] = int(row.model["parameters"])
    report.environment = environment_differences([baseline, candidate]) + settings_differences(baseline, candidate)
    b_idx, c_idx = _samples(baseline, baseline_samples), _samples(candidate, candidate_samples)
    opts = {"strict": strict, "alpha": significance, "fail_on_missing": fail_on_missing,
            "seed": seed, "resamples": resamples}
    other_budgets: list[tuple[tuple[str, str], tuple[int, int], list[Check]]] = []
    for key, base in base_rows.items():
        cand = cand_rows.get(key)
        samples = (b_idx.get(key), c_idx.get(key))
        why = example_differences(*samples) if samples[0] and samples[1] else None
        pair = budgets(base, cand)
        # values measured on other examples, or timed over other budgets, say nothing about this change
        row_opts = {**opts, "different_examples": why, "budgets": pair}
        row = [c for rule in rules for c in _row_checks(rule, key, base, cand, samples, row_opts)]
        report.checks += row
        if why:
            report.notes.append(examples_note(key, why, row))
        if pair:
            other_budgets.append((key, pair, row))
    if other_budgets:
        report.notes.append(budget_note(other_budgets))
    for key in cand_rows:
        if key not in base_rows:
            report.notes.append(f"row {key[0]} / {key[1]} is only in the candidate; not gated")
    blind = blind_note(report.checks, significance)
    if blind:
        report.notes.append(blind)
    report.notes += _unchecked_kinds(report.checks)
    return report


def _unchecked_kinds(checks: list[Check]) -> list[str]:
    """'no energy check was made: ...' for each kind of metric whose every check was not checked."""
    notes = []
    for kind in KINDS:
        of_kind = [c for c in checks if c.metric.split(".", 1)[0] == kind]
        if of_kind and all(c.status == NOT_CHECKED for c in of_kind):
            reasons = sorted({c.message for c in of_kind})
            shown = "; ".join(reasons[:2]) + (f"; and {len(reasons) - 2} more reasons" if len(reasons) > 2 else "")
            notes.append(f"no {kind} check was made: all {len(of_kind)} were not checked ({shown})")
    return notes


def _row_checks(rule: Rule, key, base: ResultRow, cand: ResultRow | None, samples, opts) -> list[Check]:
    def single(status: str, message: str) -> list[Check]:
        return [Check(rule.text, rule.path, key[0], key[1], status, message=message)]

    if cand is None:
        return single(FAIL if opts["fail_on_missing"] else MISSING, "row missing in candidate")
    if base.status != "ok":
        return single(NOT_CHECKED, f"baseline row failed: {base.error or base.status}")
    paths = _expand(rule, base)
    if not paths:
        if cand.status != "ok":
            return single(FAIL, f"candidate row failed: {cand.error or cand.status}")
        return single(NOT_CHECKED, "no quality metrics in the baseline row")
    return [_check_metric(rule, p, key, base, cand, samples, opts) for p in paths]
