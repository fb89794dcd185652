"""The gate's data: one ``Check`` per rule x metric x row, and the ``GateReport`` that holds them.

Pure data: no statistics (``noise``), no formatting (``display``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmbench.gate.rules import Rule

PASS, FAIL, UNDECIDED, MISSING, NOT_CHECKED = "pass", "fail", "undecided", "missing", "not checked"
STATUSES = (PASS, FAIL, UNDECIDED, MISSING, NOT_CHECKED)
#: exit codes of `llmbench gate` (2, bad input, comes from UserError)
EXIT_PASS, EXIT_REGRESSION, EXIT_UNDECIDED = 0, 1, 3
#: the ``method`` of an undecided check that no test could decide because the two rows measured other things:
#: they ran different examples of the task, or generated under different budgets (``task.max_new_tokens``)
NOT_PAIRED, OTHER_BUDGET = "not paired", "other generation budget"


@dataclass
class Check:
    """The verdict of one rule on one metric of one model x task row."""

    rule: str
    metric: str
    model: str
    task: str
    status: str  # pass | fail | undecided | missing | not checked
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
    n: int | None = None  # samples (or timings per side) the test compared
    examples_needed: int | None = None  # for an undecided check: examples that would decide
    available: int | None = None  # quality checks: the examples the task's data holds (task.available)
    ratio: float | None = None  # noninferior rules: candidate / baseline, direction-adjusted; ci_* is its CI

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
    parameters: dict[str, int] = field(default_factory=dict)  # model name -> parameter count, for display
    undecided_policy: str = "fail"  # "fail": an undecided check makes the exit code 3; "pass": it does not

    def model_label(self, model: str) -> str:
        """'tiny-model (96K)': the model with its size, formatted as every other command formats it."""
        from llmbench.report.format import fmt_params

        return f"{model} ({fmt_params(self.parameters[model])})" if model in self.parameters else model

    @property
    def failures(self) -> list[Check]:
        """Checks that failed."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def undecided(self) -> list[Check]:
        """Checks whose change is past the margin but whose test cannot decide (or, for noninferior rules,
        whose CI straddles the share)."""
        return [c for c in self.checks if c.status == UNDECIDED]

    @property
    def passed(self) -> bool:
        """True when no check failed and none is undecided (or undecided checks are allowed)."""
        return not self.failures and (not self.undecided or self.undecided_policy == "pass")

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 3 undecided (unless ``undecided_policy`` is "pass")."""
        if self.failures:
            return EXIT_REGRESSION
        if self.undecided and self.undecided_policy != "pass":
            return EXIT_UNDECIDED
        return EXIT_PASS

    def counts(self) -> dict[str, int]:
        """Checks per status."""
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def groups(self) -> dict[tuple[str, str, str], list[Check]]:
        """Checks grouped by (rule, model, task), in order: one group per rule x row."""
        out: dict[tuple[str, str, str], list[Check]] = {}
        for c in self.checks:
            out.setdefault((c.rule, c.model, c.task), []).append(c)
        return out
