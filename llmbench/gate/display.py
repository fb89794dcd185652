"""How a gate report is shown: values with their units (llmbench.report.format, as in every other command),
one line per check, the verdict marks and line, a Markdown PR comment and JUnit XML (no rich, no click)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from llmbench.gate.checks import FAIL, MISSING, PASS, SKIPPED, Check, GateReport
from llmbench.gate.noise import could_not_fail
from llmbench.report.format import fmt_field, fmt_field_change, fmt_p


def format_value(metric: str, value: float | None) -> str:
    """A metric value for people, with its unit: '1.42 GiB', '33.7 ms', '0.21 J'; quality to 4 digits."""
    return fmt_field(metric, value)


def format_change(check: Check) -> str:
    """'+0.012 (+8.3%)', '+7.4 MiB (+1.2%)' or 'n/a'."""
    d = check.delta
    if d is None:
        return "n/a"
    shown = fmt_field_change(check.metric, d)
    rel = check.relative
    return f"{shown} ({rel * 100:+.1f}%)" if rel is not None else shown


def format_limit(check: Check) -> str:
    """The largest allowed change, signed in the worsening direction: '-1.8' or '+7.4 MiB'."""
    if check.limit is None or check.higher_is_better is None:
        return "n/a"
    return ("-" if check.higher_is_better else "+") + format_value(check.metric, check.limit)


format_p = fmt_p


def describe(check: Check) -> str:
    """One line that names the row, the rule and why the check has its status."""
    head = f"{check.row}: {check.metric} [{check.rule}]"
    if check.baseline is None or check.candidate is None:
        return f"{head}: {check.message}"
    text = (f"{head}: {format_value(check.metric, check.baseline)} -> "
            f"{format_value(check.metric, check.candidate)}, {format_change(check)}")
    return f"{text}; {check.message}" if check.message else text


def verdict_mark(check: Check, alpha: float) -> str:
    """The check's status, or for a pass beyond its margin 'pass~' (within the noise) or 'pass?' (too few
    samples for any change to be significant)."""
    if check.status == PASS and check.message.startswith("beyond"):
        return "pass?" if could_not_fail(check, alpha) else "pass~"
    return check.status


_ICON = {PASS: "✅ pass", FAIL: "❌ fail", MISSING: "⚠️ missing", SKIPPED: "➖ skipped"}


def _cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def verdict_line(report: GateReport) -> str:
    """'PASS: 12 checks passed, 1 skipped' or 'REGRESSION: 2 of 13 checks failed'."""
    c = report.counts()
    extra = ", ".join(f"{c[s]} {s}" for s in (MISSING, SKIPPED) if c[s])
    if report.passed:
        head = f"PASS: {c[PASS]} of {len(report.checks)} checks passed"
    else:
        head = f"REGRESSION: {c[FAIL]} of {len(report.checks)} checks failed"
    return f"{head}, {extra}" if extra else head


def to_markdown(report: GateReport) -> str:
    """A Markdown comment: verdict, one table row per check, then failures and notes."""
    lines = [
        f"## llmbench gate: {'✅' if report.passed else '❌'} {verdict_line(report)}",
        "",
        f"Baseline `{report.baseline_id}` vs candidate `{report.candidate_id}`; rules from "
        f"{report.rules_source or 'the command line'}; significance level {report.significance:g}"
        + (" (`--strict`: point values only)" if report.strict else "") + ".",
        "",
        "| Model | Task | Rule | Metric | Baseline | Candidate | Change | Allowed | p | Verdict |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in report.checks:
        cells = [report.model_label(c.model), c.task, f"`{c.rule}`", f"`{c.metric}`",
                 format_value(c.metric, c.baseline), format_value(c.metric, c.candidate), format_change(c),
                 format_limit(c), format_p(c.p_value), _icon(c, report.significance)]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    failures = report.failures
    if failures:
        lines += ["", "### Regressions", ""] + [f"- {_cell(describe(c))}" for c in failures]
    others = [c for c in report.checks if c.status in (MISSING, SKIPPED)]
    if others:
        lines += ["", "### Missing or skipped", ""] + [f"- {_cell(describe(c))}" for c in others]
    notes = report.environment + report.notes
    if notes:
        lines += ["", "### Notes", ""] + [f"- ⚠️ {_cell(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def _icon(check: Check, alpha: float) -> str:
    if verdict_mark(check, alpha) == "pass?":
        return "⚠️ pass (too few samples to tell)"
    return _ICON[check.status]


def _group_status(checks: list[Check]) -> str:
    statuses = {c.status for c in checks}
    if FAIL in statuses:
        return FAIL
    if PASS in statuses:
        return PASS
    return SKIPPED


def to_junit(report: GateReport) -> str:
    """JUnit XML with one test case per rule x row (a wildcard rule's metrics are one case)."""
    groups = report.groups()
    statuses = {k: _group_status(v) for k, v in groups.items()}
    n_fail = sum(s == FAIL for s in statuses.values())
    n_skip = sum(s == SKIPPED for s in statuses.values())
    suites = ET.Element("testsuites", name="llmbench gate", tests=str(len(groups)), failures=str(n_fail))
    suite = ET.SubElement(suites, "testsuite", name=f"llmbench gate {report.candidate_id} vs {report.baseline_id}",
                          tests=str(len(groups)), failures=str(n_fail), errors="0", skipped=str(n_skip),
                          time="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("baseline", report.baseline_id), ("candidate", report.candidate_id),
                        ("rules_source", report.rules_source), ("significance", f"{report.significance:g}"),
                        ("strict", str(report.strict).lower())):
        ET.SubElement(props, "property", name=name, value=value)
    for (rule, model, task), checks in groups.items():
        case = ET.SubElement(suite, "testcase", classname=f"llmbench.gate.{model}.{task}", name=rule, time="0")
        text = "\n".join(describe(c) for c in checks)
        status = statuses[(rule, model, task)]
        if status == FAIL:
            failed = [c for c in checks if c.status == FAIL]
            el = ET.SubElement(case, "failure", message="; ".join(describe(c) for c in failed), type="regression")
            el.text = text
        elif status == SKIPPED:
            ET.SubElement(case, "skipped", message="; ".join(c.message for c in checks))
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
