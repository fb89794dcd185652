"""CI regression gate: rules -> per-row checks (noise-aware) -> verdict and exit code.

Split by job: ``rules`` (parsing, defaults, where rules come from), ``checks`` (the data: Check,
GateReport), ``noise`` (significance tests, p-value floors, "could it have failed"), ``comparable`` (did the
runs measure the same thing: settings, examples, generation budgets), ``evaluate`` (rules x rows -> checks),
``display`` (values with units, Markdown, JUnit), ``baselines``.

Exit codes of ``llmbench gate``: 0 every check passed, 1 a regression, 2 bad input, 3 undecided (a change
past its margin that the test cannot tell from noise, or a row whose runs measured other things;
``--undecided pass`` accepts it). See docs/ci.md.
"""

from llmbench.gate.baselines import BASELINES_DIR, list_baselines, resolve_baseline, save_baseline
from llmbench.gate.checks import (
    EXIT_UNDECIDED,
    FAIL,
    MISSING,
    NOT_CHECKED,
    PASS,
    UNDECIDED,
    Check,
    GateReport,
)
from llmbench.gate.display import describe, to_junit, to_markdown, verdict_line
from llmbench.gate.evaluate import evaluate
from llmbench.gate.rules import (
    DEFAULT_RULES,
    DEFAULT_SIGNIFICANCE,
    Rule,
    parse_rule,
    parse_rules,
    resolve_rules,
)

__all__ = [
    "BASELINES_DIR",
    "DEFAULT_RULES",
    "DEFAULT_SIGNIFICANCE",
    "FAIL",
    "MISSING",
    "PASS",
    "NOT_CHECKED",
    "UNDECIDED",
    "EXIT_UNDECIDED",
    "Check",
    "GateReport",
    "Rule",
    "describe",
    "evaluate",
    "list_baselines",
    "parse_rule",
    "parse_rules",
    "resolve_baseline",
    "resolve_rules",
    "save_baseline",
    "to_junit",
    "to_markdown",
    "verdict_line",
]
