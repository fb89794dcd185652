"""Gate rules: parsing, validation, defaults and where they are read from."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.errors import UserError
from llmbench.gate.rules import (
    DEFAULT_RULES,
    load_rules_file,
    parse_rule,
    parse_rules,
    pyproject_settings,
    resolve_rules,
    resolve_significance,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text, path, amount, relative",
    [
        ("quality.rougeL:-0.01", "quality.rougeL", 0.01, False),
        ("quality.*:-2%", "quality.*", 0.02, True),
        ("latency.ttft_s.p50:+10%", "latency.ttft_s.p50", 0.10, True),
        ("energy.joules_per_sample:+15%", "energy.joules_per_sample", 0.15, True),
        ("memory.peak_rss_bytes:+5%", "memory.peak_rss_bytes", 0.05, True),
        ("latency.tokens_per_s:-5%", "latency.tokens_per_s", 0.05, True),
        ("latency.e2e_s.p99:0.2", "latency.e2e_s.p99", 0.2, False),
        ("quality.ter:+5%", "quality.ter", 0.05, True),
        (" quality.bleu : - 1.5 % ", "quality.bleu", 0.015, True),
        ("quality.bleu:0", "quality.bleu", 0.0, False),
    ],
)
def test_parse_rule(text, path, amount, relative):
    rule = parse_rule(text)
    assert rule.path == path
    assert rule.amount == pytest.approx(amount)
    assert rule.relative is relative
    assert rule.section == path.split(".")[0]


def test_sign_is_not_the_direction():
    # the magnitude is the allowed worsening; the metric's direction decides which way is worse
    assert parse_rule("quality.bleu:-2%").amount == parse_rule("quality.bleu:+2%").amount
    assert parse_rule("quality.bleu:-2%").text == "quality.bleu:-2%"
    assert parse_rule(" quality.bleu : - 2 % ").text == "quality.bleu:-2%"
    assert parse_rule("quality.*:-2%").wildcard and not parse_rule("quality.bleu:-2%").wildcard


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("quality.bleu", "expected <metric path>:<allowed change>"),
        (":-2%", "expected <metric path>:<allowed change>"),
        ("quality.bleu:lots", "not a number"),
        ("quality.bleu:-2%%", "not a number"),
        ("quality.bleu:", "not a number"),
        ("speed.ttft:+5%", "unknown metric"),
        ("latency.ttft_s:+5%", "unknown metric"),
        ("latency.ttft_s.p42:+5%", "unknown metric"),
        ("latency.ttfb_s.p50:+5%", "unknown metric"),
        ("memory.rss:+5%", "unknown metric"),
        ("energy.watts:+5%", "unknown metric"),
        ("quality.:-1", "unknown metric"),
        ("quality:-1", "unknown metric"),
    ],
)
def test_bad_rules_are_user_errors(text, fragment):
    with pytest.raises(UserError, match="rule|metric") as exc:
        parse_rule(text)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_parse_rules_drops_duplicates_keeps_order():
    rules = parse_rules(["quality.*:-2%", "memory.peak_rss_bytes:+5%", "quality.*:-2%"])
    assert [r.text for r in rules] == ["quality.*:-2%", "memory.peak_rss_bytes:+5%"]


def test_builtin_defaults_equal_pyproject():
    assert tuple(pyproject_settings(ROOT)["rules"]) == DEFAULT_RULES
    parse_rules(DEFAULT_RULES)


def test_resolve_rules_defaults_without_pyproject(tmp_path):
    rules, source = resolve_rules(directory=tmp_path)
    assert [r.text for r in rules] == list(DEFAULT_RULES)
    assert source == "built-in defaults"


def test_resolve_rules_reads_pyproject_in_directory(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.llmbench.gate]\nrules = ["quality.bleu:-1"]\n')
    rules, source = resolve_rules(directory=tmp_path)
    assert [r.text for r in rules] == ["quality.bleu:-1"]
    assert "pyproject.toml" in source


def test_pyproject_without_gate_table_means_defaults(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    rules, _ = resolve_rules(directory=tmp_path)
    assert [r.text for r in rules] == list(DEFAULT_RULES)


def test_command_line_rules_replace_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.llmbench.gate]\nrules = ["quality.bleu:-1"]\n')
    rules, source = resolve_rules(["latency.e2e_s.p90:+20%"], directory=tmp_path)
    assert [r.text for r in rules] == ["latency.e2e_s.p90:+20%"]
    assert source == "--rule"


def test_rules_file_text_and_toml(tmp_path):
    text = tmp_path / "gate.rules"
    text.write_text("# our gate\nquality.*:-1%\n\nlatency.ttft_s.p90:+20%  # noisy\n")
    assert load_rules_file(text) == ["quality.*:-1%", "latency.ttft_s.p90:+20%"]
    flat = tmp_path / "gate.toml"
    flat.write_text('rules = ["memory.peak_rss_bytes:+5%"]\n')
    assert load_rules_file(flat) == ["memory.peak_rss_bytes:+5%"]
    nested = tmp_path / "pyproject.toml"
    nested.write_text('[tool.llmbench.gate]\nrules = ["energy.joules:+10%"]\n')
    assert load_rules_file(nested) == ["energy.joules:+10%"]
    rules, source = resolve_rules(["quality.bleu:-1"], rules_file=text, directory=tmp_path)
    assert [r.text for r in rules] == ["quality.bleu:-1", "quality.*:-1%", "latency.ttft_s.p90:+20%"]
    assert str(text) in source


@pytest.mark.parametrize(
    "content, name, fragment",
    [
        (None, "absent.rules", "does not exist"),
        ("rules = [1, 2]\n", "bad.toml", "list of strings"),
        ("rules = [\n", "broken.toml", "not valid TOML"),
        ("other = 1\n", "empty.toml", "no 'rules'"),
        ("# nothing\n", "empty.rules", "no rules"),
        ("quality.bleu:-x\n", "typo.rules", "not a number"),
    ],
)
def test_bad_rules_files(tmp_path, content, name, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as exc:
        resolve_rules(rules_file=path, directory=tmp_path)
    assert fragment in str(exc.value)


def test_significance_level(tmp_path):
    assert resolve_significance(None, tmp_path) == 0.05
    assert resolve_significance(0.01, tmp_path) == 0.01
    (tmp_path / "pyproject.toml").write_text("[tool.llmbench.gate]\nsignificance = 0.1\n")
    assert resolve_significance(None, tmp_path) == 0.1
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(UserError, match="between 0 and 1"):
            resolve_significance(bad, tmp_path)


@pytest.mark.parametrize("text, path, share", [
    ("quality.rougeL:noninferior:98%", "quality.rougeL", 0.98),
    ("quality.*:noninferior:0.95", "quality.*", 0.95),
    (" quality.bleu : noninferior : 100% ", "quality.bleu", 1.0),
])
def test_noninferior_rules(text, path, share):
    rule = parse_rule(text)
    assert rule.noninferior and rule.path == path and rule.amount == pytest.approx(share)
    assert rule.describe_limit() == f"{share * 100:g}% of the baseline"
    assert not parse_rule("quality.rougeL:-2%").noninferior


@pytest.mark.parametrize("text, fragment", [
    ("latency.ttft_s.p50:noninferior:98%", "noninferior applies to quality metrics"),
    ("quality.rougeL:noninferior:120%", "in (0, 1]"),
    ("quality.rougeL:noninferior:0", "in (0, 1]"),
    ("quality.rougeL:noninferior:lots", "in (0, 1]"),
    ("quality.rougeL:noninferior:-98%", "in (0, 1]"),
])
def test_bad_noninferior_rules(text, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        parse_rule(text)
