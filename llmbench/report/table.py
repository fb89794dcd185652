"""The cells of a task's comparison table, shared by the terminal (`compare`), Markdown, LaTeX and HTML, so
every table says the same thing; the numbers are formatted by ``llmbench.report.format``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection

from llmbench.report.format import (
    DASH,
    NA,
    fmt_bytes,
    fmt_failed_requests,
    fmt_goodput,
    fmt_joules,
    fmt_params,
    fmt_pct,
    fmt_quality,
    fmt_rate,
    fmt_ratio,
    fmt_requests_rate,
    fmt_roofline,
    fmt_seconds,
    fmt_signed_quality,
    fmt_speed,
)

if TYPE_CHECKING:  # the run table uses these cells too, without loading the comparison (numpy, stats)
    from llmbench.report.compare import ModelResult, TaskComparison

NOT_SIGNIFICANT = "†"
DEVICE_WIDE = "‡"  # marks energy measured over the whole device (a served model's GPU), not the model's own
DEVICE_WIDE_NOTE = (f"{DEVICE_WIDE} device-wide energy: everything the server's GPUs drew during the level "
                    "(other work on them included), not the model's own")
SERVED_COLUMNS = {"req/s": "requests_per_s", "out tok/s": "output_tokens_per_s", "goodput": "goodput_fraction"}
ROOFLINE = "% roofline"  # the decode's achieved bandwidth as a percentage of the device's measured peak
SIGNIFICANCE_NOTE = (f"{NOT_SIGNIFICANT} not significantly different from the reference at 95% "
                     "(quality: paired randomization test over the shared samples; TTFT and TPOT/speed: "
                     "permutation test of the p50 over per-sample values)")


def _mark(text: str, significant: bool | None) -> str:
    return f"{text} {NOT_SIGNIFICANT}" if significant is False else text


def has_correct(tc: TaskComparison) -> bool:
    """Whether the task has a per-sample notion of a correct answer (then it shows cost per correct answer)."""
    return any(r.correct is not None for r in tc.results)


def served_columns(tc: TaskComparison) -> list[str]:
    """The served-throughput columns a task shows: each of req/s, out tok/s and goodput only when a finished row
    of the task has the figure (a task of in-process rows shows none, its table unchanged)."""
    return [h for h, key in SERVED_COLUMNS.items() if any(r.ok and getattr(r, key) is not None for r in tc.results)]


def served_cells(r: ModelResult, columns: list[str]) -> list[str]:
    """The cells of ``columns`` (see ``served_columns``) for one row; n/a for an in-process row."""
    shown = {"req/s": lambda: fmt_requests_rate(r.requests_per_s),
             "out tok/s": lambda: fmt_rate(r.output_tokens_per_s),
             "goodput": lambda: fmt_goodput(r.goodput_fraction, r.goodput_requests_per_s)}
    return [shown[c]() for c in columns]


def _energy_mark(text: str, r: ModelResult) -> str:
    return f"{text} {DEVICE_WIDE}" if r.device_wide_energy and text != NA else text


def table_headers(tc: TaskComparison) -> list[str]:
    """Column titles of a task table."""
    label = tc.metric_label
    # lm-eval's metrics carry a standard error, not a CI (their tasks hold only lm-eval rows)
    spread = "±stderr" if any(r.quality_stderr is not None for r in tc.results) and not any(
        r.quality_ci_low is not None for r in tc.results) else "[95% CI]"
    measured = ["Model", "Params", f"{label} {spread}", "TTFT p50", "TPOT p50", "tok/s", *served_columns(tc),
                ROOFLINE, "Peak mem", "J/sample"]
    if has_correct(tc):
        measured += ["Correct", "s/correct", "J/correct"]
    return measured + [f"{label} vs ref", "Speed vs ref", "Memory vs ref", "Energy vs ref", "vs best [95% CI]"]


def column_groups(tc: TaskComparison) -> tuple[range, range]:
    """The measured columns and the comparison columns (ratios, decision), without the model column."""
    n = len(table_headers(tc))
    split = (12 if has_correct(tc) else 9) + len(served_columns(tc))
    return range(1, split), range(split, n)


def decision_cell(r: ModelResult, scale: str | None = None) -> str:
    """'undecided 98% [63%, 151%]', 'enough +0.01 [−0.02, +0.04]', 'best', or 'untested'."""
    d = r.decision
    if d is None:
        return "untested"
    if d.estimate is None:
        return d.outcome
    if d.measure == "ratio":
        shown = [fmt_pct(x) for x in (d.estimate, d.ci_low, d.ci_high)]
    else:
        shown = [fmt_signed_quality(x, scale) if x is not None else "n/a" for x in (d.estimate, d.ci_low, d.ci_high)]
    ci = "" if d.ci_low is None else f" [{shown[1]}, {shown[2]}]"
    return f"{d.outcome} {shown[0]}{ci}"


def correct_cells(r: ModelResult) -> list[str]:
    """'7/10', seconds and joules per correct answer; n/a when the row has no per-sample correctness."""
    c = r.correct
    if c is None:
        return [NA] * 3
    return [f"{c.correct}/{c.n}", fmt_seconds(c.seconds_per_correct), _energy_mark(fmt_joules(c.joules_per_correct), r)]


def quality_cell(value: float | None, low: float | None, high: float | None, stderr: float | None,
                 scale: str | None) -> str:
    """'0.691 [0.658, 0.724]', '63.3 ±2.1' (lm-eval's standard error) or 'n/a'."""
    q = fmt_quality(value, scale)
    if value is not None and low is not None and high is not None:
        q += f" [{fmt_quality(low, scale)}, {fmt_quality(high, scale)}]"
    elif value is not None and stderr is not None:
        q += f" ±{fmt_quality(stderr, scale)}"
    return q


def memory_cell(n: float | None, kind: str | None) -> str:
    """Peak memory, marked '(GPU)' when it is CUDA memory rather than the process RSS."""
    return fmt_bytes(n) + (" (GPU)" if kind == "cuda" else "")


def result_cells(r: ModelResult, scale: str | None, with_correct: bool = False,
                 bests: Collection[str] = (), served: list[str] = ()) -> list[str]:
    """The cells of one model's row (``with_correct``: the cost-per-correct cells too; ``bests``: the best
    model of the task, of each level in a sweep, whose decision cell says so; ``served``: the served columns
    shown, see ``served_columns``); failed rows say so and show no numbers."""
    name = f"{r.model} (ref)" if r.is_ref else r.model
    width = 14 + (3 if with_correct else 0) + len(served)
    if not r.ok:
        return [name, fmt_params(r.parameters), "failed"] + [DASH] * (width - 3)
    q = quality_cell(r.quality, r.quality_ci_low, r.quality_ci_high, r.quality_stderr, scale)
    cells = [name, fmt_params(r.parameters), q, _mark(fmt_seconds(r.ttft_p50_s), r.ttft_significant),
             fmt_seconds(r.tpot_p50_s), fmt_rate(r.tokens_per_s), *served_cells(r, list(served)),
             fmt_roofline(r.roofline_percent, r.roofline_lower_bound),
             memory_cell(r.peak_memory_bytes, r.memory_kind),
             _energy_mark(fmt_joules(r.joules_per_sample), r)]
    if with_correct:
        cells += correct_cells(r)
    decision = "best" if r.model in bests else decision_cell(r, scale) if r.quality is not None else NA
    if r.is_ref:
        return cells + ["ref"] * 4 + [decision]
    return cells + [_mark(fmt_pct(r.quality_rel), r.quality_significant),
                    _mark(fmt_speed(r.speed_ratio), r.speed_significant),
                    fmt_ratio(r.memory_ratio), fmt_ratio(r.energy_ratio), decision]


def table_cells(tc: TaskComparison) -> list[list[str]]:
    """All rows of a task table as text cells."""
    served = served_columns(tc)
    return [result_cells(r, tc.scale, has_correct(tc), best_models(tc), served) for r in tc.results]


def best_models(tc: TaskComparison) -> set[str]:
    """The best model of the task (of each level in a sweep): its decision cell says ``best``."""
    return {v.best for v in tc.level_verdicts if v.best is not None}


def chosen_models(tc: TaskComparison) -> set[str]:
    """The chosen model of the task (of each level in a sweep): the smallest proven enough, else the best."""
    return {v.chosen for v in tc.level_verdicts if v.chosen is not None}


def task_caption(tc: TaskComparison) -> str:
    """'BLEU (higher is better, 0-100); ratios against gemma3-270m'."""
    direction = "higher" if tc.higher_is_better else "lower"
    scale = f", {tc.scale}" if tc.scale else ""
    ref = f"ratios against {tc.ref}" if tc.ref else "no reference model: ratios n/a"
    return f"{tc.metric_label} ({direction} is better{scale}); {ref}"


def failures(tc: TaskComparison) -> list[str]:
    """'model: error' for each failed row (a served level's error says how many of its requests failed)."""
    return [f"{r.model}: {r.error or 'failed'}" for r in tc.results if not r.ok]


def served_notes(tc: TaskComparison) -> list[str]:
    """What every format prints under a task's table about its served rows: failed requests of a finished row
    ('smollm2@c4: 3 of 20 requests failed; its figures are over the answered ones'; a failed row's error says
    it already), and what the device-wide mark means when a row carries it; none for in-process rows."""
    lines = [f"{r.model}: {fmt_failed_requests(r.requests_failed, r.requests_sent)}; its figures are over the "
             "answered ones" for r in tc.results
             if r.ok and r.requests_failed and r.requests_sent is not None]
    if any(r.ok and r.device_wide_energy for r in tc.results):
        lines.append(DEVICE_WIDE_NOTE)
    return lines


def verdict_lines(tc: TaskComparison) -> list[tuple[str, str]]:
    """What every format prints under a task's table, as (kind, text): the verdict; each other model's
    decision when there are several (with one, the verdict's sentence says it); the size curve's steps;
    its knee line when the curve has three or more sizes. A task of several sweep levels has these per level,
    each line led by the level ('@b4: ...')."""
    verdicts = tc.level_verdicts
    lines = []
    for v in verdicts:
        tag = f"{v.level_label}: " if len(verdicts) > 1 else ""
        lines.append(("verdict", tag + v.text))
        decisions = v.decision_lines
        if len(decisions) > 1:  # else the verdict's sentence holds the one decision
            lines += [("decision", d) for d in decisions]
        if v.scaling_text:
            lines.append(("curve", tag + v.scaling_text))
        if v.curve is not None and len(v.curve.points) >= 3 or v.bytes_curve is not None:
            lines.append(("knee", tag + v.knee_text))
    return lines


def summary_lines(tc: TaskComparison) -> list[str]:
    """'task: verdict' for the end of `compare`; 'task @b4: verdict' per level of a sweep."""
    verdicts = tc.level_verdicts
    if not verdicts:
        return [f"{tc.task}: no verdict"]
    if len(verdicts) == 1:
        return [f"{tc.task}: {verdicts[0].text}"]
    return [f"{tc.task} {v.level_label}: {v.text}" for v in verdicts]
