"""Gate outputs: JUnit XML (one case per rule x row) and the Markdown PR comment."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gate_fixtures import make_run

from llmbench.gate import DEFAULT_RULES, evaluate, parse_rules, to_junit, to_markdown, verdict_line
from llmbench.records.store import read_run

ROWS = [("tiny-model", "qa"), ("tiny-model", "trivia"), ("small-model", "qa")]
F1 = {"f1": {"value": 92.0, "ci_low": 85.0, "ci_high": 97.0, "higher_is_better": True, "scale": "0-100", "n": 40}}


def report_for(tmp_path, **cand):
    base = make_run(tmp_path, "base", rows=ROWS, extra_quality=F1)
    cand_dir = make_run(tmp_path, "cand", rows=ROWS, extra_quality=F1, **cand)
    return evaluate(read_run(base), read_run(cand_dir), parse_rules(DEFAULT_RULES))


def test_junit_is_xml_with_one_case_per_rule_and_row(tmp_path):
    report = report_for(tmp_path, correct=range(10))
    root = ET.fromstring(to_junit(report))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(DEFAULT_RULES) * len(ROWS)  # quality.* covers exact_match and f1 in one case
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("llmbench.gate.tiny-model.qa", "quality.*:-2%") in names
    failures = root.findall("./testsuite/testcase/failure")
    assert len(failures) == len(ROWS)  # exact_match dropped on every row
    assert all("quality.exact_match" in f.get("message") for f in failures)
    suite = root.find("testsuite")
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == str(len(ROWS))
    skipped = root.findall("./testsuite/testcase/skipped")
    assert len(skipped) == len(ROWS) and "energy unavailable" in skipped[0].get("message")
    assert suite.get("skipped") == str(len(ROWS))


def test_junit_of_a_pass_has_no_failures(tmp_path):
    root = ET.fromstring(to_junit(report_for(tmp_path)))
    assert root.findall(".//failure") == []
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["baseline"] == "base" and props["candidate"] == "cand"


def test_markdown_is_a_table(tmp_path):
    report = report_for(tmp_path, correct=range(10))
    md = to_markdown(report)
    lines = md.splitlines()
    assert lines[0].startswith("## llmbench gate: ❌ REGRESSION")
    header = next(i for i, line in enumerate(lines) if line.startswith("| Model |"))
    assert set(lines[header + 1]) <= set("|-: ")
    body = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        body.append(line)
    assert len(body) == len(report.checks)
    columns = lines[header].count("|")
    assert all(line.count("|") - line.count("\\|") == columns for line in body)
    assert "### Regressions" in md and "tiny-model / qa: quality.exact_match [quality.*:-2%]" in md


def test_markdown_escapes_pipes_and_notes_environment(tmp_path):
    base = make_run(tmp_path, "base", rows=[("odd-model", "qa")])
    cand = make_run(tmp_path, "cand", rows=[("odd-model", "qa")],
                    environment={"hostname": "other", "llmbench": "9.9"})
    records = read_run(base), read_run(cand)
    for record in records:  # a record on disk cannot hold this name (the reader refuses it): made in memory
        record.rows[0].model["name"] = "odd|model"
    md = to_markdown(evaluate(*records, parse_rules(DEFAULT_RULES)))
    assert "odd\\|model" in md
    assert "### Notes" in md and "hostname" in md


def test_verdict_line(tmp_path):
    assert verdict_line(report_for(tmp_path)).startswith("PASS:")
    assert verdict_line(report_for(tmp_path, correct=range(5))).startswith("REGRESSION: 3 of")


def test_undecided_checks_fail_the_junit_case_unless_allowed(tmp_path):
    base = make_run(tmp_path, "base", n=3, correct={0, 1, 2})
    cand = make_run(tmp_path, "cand", n=3, correct=set())
    for policy, tag in (("fail", "failure"), ("pass", "skipped")):
        report = evaluate(read_run(base), read_run(cand), parse_rules(["quality.*:-2%"]), undecided=policy)
        root = ET.fromstring(to_junit(report))
        [case] = root.findall("./testsuite/testcase")
        assert case.find(tag) is not None
        md = to_markdown(report)
        assert "❓ undecided" in md and "### Undecided" in md and "examples would decide" in md
        assert verdict_line(report).startswith("UNDECIDED" if policy == "fail" else "PASS")
    assert case.find("skipped").get("message").startswith("undecided: ")
