"""The cells of a task's comparison table, shared by the terminal (`compare`), Markdown, LaTeX and HTML, so
every table says the same thing; the numbers are formatted by ``llmbench.report.format``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmbench.report.format import (
    DASH,
    fmt_bytes,
    fmt_joules,
    fmt_params,
    fmt_pct,
    fmt_quality,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    fmt_speed,
)

if TYPE_CHECKING:  # the run table uses these cells too, without loading the comparison (numpy, stats)
    from llmbench.report.compare import ModelResult, TaskComparison

NOT_SIGNIFICANT = "†"
SIGNIFICANCE_NOTE = (f"{NOT_SIGNIFICANT} not significantly different from the reference at 95% "
                     "(quality: paired randomization test over the shared samples; TTFT and TPOT/speed: "
                     "permutation test of the p50 over per-sample values)")


def _mark(text: str, significant: bool | None) -> str:
    return f"{text} {NOT_SIGNIFICANT}" if significant is False else text


def table_headers(tc: TaskComparison) -> list[str]:
    """Column titles of a task table."""
    label = tc.metric_label
    # lm-eval's metrics carry a standard error, not a CI (their tasks hold only lm-eval rows)
    spread = "±stderr" if any(r.quality_stderr is not None for r in tc.results) and not any(
        r.quality_ci_low is not None for r in tc.results) else "[95% CI]"
    return ["Model", "Params", f"{label} {spread}", "TTFT p50", "TPOT p50", "tok/s", "Peak mem",
            "J/sample", f"{label} vs ref", "Speed vs ref", "Memory vs ref", "Energy vs ref"]


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


def result_cells(r: ModelResult, scale: str | None) -> list[str]:
    """The cells of one model's row; failed rows say so and show no numbers."""
    name = f"{r.model} (ref)" if r.is_ref else r.model
    if not r.ok:
        return [name, fmt_params(r.parameters), "failed"] + [DASH] * 9
    q = quality_cell(r.quality, r.quality_ci_low, r.quality_ci_high, r.quality_stderr, scale)
    cells = [name, fmt_params(r.parameters), q, _mark(fmt_seconds(r.ttft_p50_s), r.ttft_significant),
             fmt_seconds(r.tpot_p50_s), fmt_rate(r.tokens_per_s), memory_cell(r.peak_memory_bytes, r.memory_kind),
             fmt_joules(r.joules_per_sample)]
    if r.is_ref:
        return cells + ["ref"] * 4
    return cells + [_mark(fmt_pct(r.quality_rel), r.quality_significant),
                    _mark(fmt_speed(r.speed_ratio), r.speed_significant),
                    fmt_ratio(r.memory_ratio), fmt_ratio(r.energy_ratio)]


def table_cells(tc: TaskComparison) -> list[list[str]]:
    """All rows of a task table as text cells."""
    return [result_cells(r, tc.scale) for r in tc.results]


def task_caption(tc: TaskComparison) -> str:
    """'BLEU (higher is better, 0-100); ratios against gemma3-270m'."""
    direction = "higher" if tc.higher_is_better else "lower"
    scale = f", {tc.scale}" if tc.scale else ""
    ref = f"ratios against {tc.ref}" if tc.ref else "no reference model: ratios n/a"
    return f"{tc.metric_label} ({direction} is better{scale}); {ref}"


def failures(tc: TaskComparison) -> list[str]:
    """'model: error' for each failed row."""
    return [f"{r.model}: {r.error or 'failed'}" for r in tc.results if not r.ok]
