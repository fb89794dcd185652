"""How a gate report is shown: values with their units (llmbench.report.format, as in every other command),
one line per check, the verdict marks and line, a Markdown PR comment and JUnit XML (no rich, no click)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from llmbench.gate.checks import (
    FAIL,
    MISSING,
    NOT_CHECKED,
    NOT_PAIRED,
    OTHER_BUDGET,
    PASS,
    UNDECIDED,
    Check,
    GateReport,
)
from llmbench.report.format import fmt_field, fmt_field_change, fmt_p, fmt_pct, md_cell, md_code


def format_value(metric: str, value: float | None) -> str:
    """A metric value for people, with its unit: '1.42 GiB', '33.7 ms', '0.21 J'; quality to 4 digits."""
    return fmt_field(metric, value)


def format_change(check: Check) -> str:
    """'+0.012 (+8.3%)', '+7.4 MiB (+1.2%)', for a noninferior rule the ratio '97% [94%, 101%]'; or 'n/a'."""
    if check.ratio is not None:
        ci = "" if check.ci_low is None else f" [{fmt_pct(check.ci_low)}, {fmt_pct(check.ci_high)}]"
        return f"{fmt_pct(check.ratio)}{ci}"
    d = check.delta
    if d is None:
        return "n/a"
    shown = fmt_field_change(check.metric, d)
    rel = check.relative
    return f"{shown} ({rel * 100:+.1f}%)" if rel is not None else shown


def format_limit(check: Check) -> str:
    """The largest allowed change, signed in the worsening direction: '-1.8' or '+7.4 MiB'; '≥98%' for a
    noninferior rule."""
    if check.limit is None or check.higher_is_better is None:
        return "n/a"
    if ":noninferior:" in check.rule:
        return f"≥{fmt_pct(check.limit)}"
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


_ICON = {PASS: "✅ pass", FAIL: "❌ fail", UNDECIDED: "❓ undecided", MISSING: "⚠️ missing",
         NOT_CHECKED: "➖ not checked"}


_cell = md_cell  # the one Markdown escaper of every export


def verdict_line(report: GateReport) -> str:
    """'PASS: 12 of 13 checks passed, 1 not checked', 'UNDECIDED: ...' or 'REGRESSION: 2 of 13 checks failed'."""
    c = report.counts()
    total = len(report.checks)
    extra = ", ".join(f"{c[s]} {s}" for s in (UNDECIDED, MISSING, NOT_CHECKED) if c[s])
    if report.failures:
        head = f"REGRESSION: {c[FAIL]} of {total} checks failed"
    elif report.undecided and report.undecided_policy != "pass":
        extra = ", ".join(f"{c[s]} {s}" for s in (PASS, MISSING, NOT_CHECKED) if c[s])
        head = f"UNDECIDED: {_why_undecided(report.undecided, total)} (no regression proven, none ruled out)"
    else:
        head = f"PASS: {c[PASS]} of {total} checks passed"
        if report.undecided:
            head += " (undecided ones allowed by --undecided pass)"
    return f"{head}, {extra}" if extra else head


# why checks are undecided, each in its own words (one form for one check, one for several)
_UNDECIDED_WHY = {
    "noise": ("could not tell a worsening beyond the margin from noise",) * 2,
    "noninferior": ("was neither proven to reach its non-inferiority share nor proven below it",
                    "were neither proven to reach their non-inferiority share nor proven below it"),
    NOT_PAIRED: ("was undecided because the runs ran different examples of the task",
                 "were undecided because the runs ran different examples of the task"),
    OTHER_BUDGET: ("was undecided because the rows generated up to different numbers of new tokens",
                   "were undecided because the rows generated up to different numbers of new tokens"),
}


def _undecided_kind(check: Check) -> str:
    if check.method in (NOT_PAIRED, OTHER_BUDGET):
        return check.method
    return "noninferior" if ":noninferior:" in check.rule else "noise"


def _why_undecided(undecided: list[Check], total: int) -> str:
    """'3 of 9 checks could not tell ... from noise', or with several reasons '5 of 9 checks undecided: 3 could
    not tell ...; 2 were undecided because the runs ran different examples of the task'."""
    counts = dict.fromkeys(_UNDECIDED_WHY, 0)
    for check in undecided:
        counts[_undecided_kind(check)] += 1
    found = [(n, _UNDECIDED_WHY[kind][n != 1]) for kind, n in counts.items() if n]
    if len(found) == 1:
        return f"{len(undecided)} of {total} checks {found[0][1]}"
    return f"{len(undecided)} of {total} checks undecided: " + "; ".join(f"{n} {why}" for n, why in found)


def _icon_heading(report: GateReport) -> str:
    return "❌" if report.failures else "❓" if report.exit_code else "✅"


def to_markdown(report: GateReport) -> str:
    """A Markdown comment: verdict, one table row per check, then failures, undecided checks and notes."""
    lines = [
        f"## llmbench gate: {_icon_heading(report)} {verdict_line(report)}",
        "",
        f"Baseline {md_code(report.baseline_id)} vs candidate {md_code(report.candidate_id)}; rules from "
        f"{md_cell(report.rules_source or 'the command line')}; significance level {report.significance:g}"
        + (" (`--strict`: point values only)" if report.strict else "")
        + ("; undecided checks allowed (`--undecided pass`)" if report.undecided_policy == "pass" else "") + ".",
        "",
        "| Model | Task | Rule | Metric | Baseline | Candidate | Change | Allowed | p | Verdict |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in report.checks:
        cells = [md_cell(report.model_label(c.model)), md_cell(c.task), md_code(c.rule), md_code(c.metric),
                 format_value(c.metric, c.baseline), format_value(c.metric, c.candidate), format_change(c),
                 format_limit(c), format_p(c.p_value), _ICON[c.status]]
        lines.append("| " + " | ".join(cells[:4] + [_cell(x) for x in cells[4:]]) + " |")
    sections = (("Regressions", (FAIL,)), ("Undecided", (UNDECIDED,)), ("Missing or not checked",
                                                                        (MISSING, NOT_CHECKED)))
    for title, statuses in sections:
        chosen = [c for c in report.checks if c.status in statuses]
        if chosen:
            lines += ["", f"### {title}", ""] + [f"- {_cell(describe(c))}" for c in chosen]
    notes = report.environment + report.notes
    if notes:
        lines += ["", "### Notes", ""] + [f"- ⚠️ {_cell(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def _group_status(checks: list[Check]) -> str:
    statuses = {c.status for c in checks}
    for status in (FAIL, UNDECIDED, PASS, MISSING):
        if status in statuses:
            return status
    return NOT_CHECKED


def to_junit(report: GateReport) -> str:
    """JUnit XML with one test case per rule x row (a wildcard rule's metrics are one case). An undecided case
    is a ``<failure type="undecided">`` unless undecided checks are allowed (then it is skipped)."""
    groups = report.groups()
    statuses = {k: _group_status(v) for k, v in groups.items()}
    undecided_fails = report.undecided_policy != "pass"
    failing = {FAIL, UNDECIDED} if undecided_fails else {FAIL}
    skipping = {MISSING, NOT_CHECKED} | (set() if undecided_fails else {UNDECIDED})
    n_fail = sum(s in failing for s in statuses.values())
    n_skip = sum(s in skipping for s in statuses.values())
    suites = ET.Element("testsuites", name="llmbench gate", tests=str(len(groups)), failures=str(n_fail))
    suite = ET.SubElement(suites, "testsuite", name=f"llmbench gate {report.candidate_id} vs {report.baseline_id}",
                          tests=str(len(groups)), failures=str(n_fail), errors="0", skipped=str(n_skip),
                          time="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("baseline", report.baseline_id), ("candidate", report.candidate_id),
                        ("rules_source", report.rules_source), ("significance", f"{report.significance:g}"),
                        ("strict", str(report.strict).lower()), ("undecided", report.undecided_policy)):
        ET.SubElement(props, "property", name=name, value=value)
    for (rule, model, task), checks in groups.items():
        case = ET.SubElement(suite, "testcase", classname=f"llmbench.gate.{model}.{task}", name=rule, time="0")
        text = "\n".join(describe(c) for c in checks)
        status = statuses[(rule, model, task)]
        if status in failing:
            failed = [c for c in checks if c.status == status]
            kind = "regression" if status == FAIL else "undecided"
            el = ET.SubElement(case, "failure", message="; ".join(describe(c) for c in failed), type=kind)
            el.text = text
        elif status in skipping:
            ET.SubElement(case, "skipped", message="; ".join(f"{c.status}: {c.message}" for c in checks))
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_chars(ET.tostring(suites, encoding="unicode")) + "\n"


# what XML 1.0 cannot hold at all, even escaped: C0 controls but tab, newline and carriage return; lone
# surrogates (JSON can spell them); U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_chars(text: str) -> str:
    """``text`` with every character XML cannot hold replaced by U+FFFD: ElementTree writes them as they are,
    and a record's text (an error, an environment entry) would then make the JUnit file unparseable."""
    return _NOT_XML.sub("\ufffd", text)
