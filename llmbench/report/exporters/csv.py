"""CSV: one row per model x task, flat columns, numbers unformatted (loads with ``pandas.read_csv``)."""

from __future__ import annotations

import csv
import io
import math
import numbers

from llmbench.report.compare import SERVED_FIELDS, Comparison
from llmbench.report.exporters import ExportOptions
from llmbench.report.merge import MergedRuns
from llmbench.report.table import best_models, chosen_models

CSV_COLUMNS = ["task", "model", "parameters", "status", "error", "run_id", "device", "dtype", "metric",
               "higher_is_better", "quality", "quality_ci_low", "quality_ci_high", "quality_stderr", "ref_model",
               "is_ref", "quality_rel_to_ref", "quality_significant", "ttft_p50_s", "ttft_significant", "tpot_p50_s",
               "speed_ratio", "speed_significant", "tokens_per_s", "peak_memory_bytes", "memory_kind",
               "memory_ratio", "joules_per_sample", "energy_ratio", "energy_method", "verdict_best",
               "verdict_chosen", "decision", "decision_measure", "decision_estimate", "decision_ci_low",
               "decision_ci_high", "decision_margin", "examples_needed", "correct", "correct_n", "correct_rule",
               "seconds_per_correct", "joules_per_correct", "weights_bytes", "roofline_percent"]
#: appended (before the metric columns) only when a row of the comparison is a served one, so a file of
#: in-process rows keeps its columns
SERVED_CSV_COLUMNS = list(SERVED_FIELDS)


#: what makes a spreadsheet read a cell as a formula (OWASP, CSV injection), full-width forms included
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that starts with a formula character (after any spaces)
    gets a leading ``'``, which spreadsheets read as "text" and do not display. A carriage return inside
    becomes a line feed: the csv module quotes a cell with a line feed, but not one with only a carriage
    return, which a spreadsheet would take as the start of a new row (whose first cell could be a formula)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + text if text.lstrip(" ").startswith(FORMULA_START) else text


def csv_value(v) -> str:
    """A cell: empty for None (never 0), integers without '.0', floats to 6 significant digits (``inf`` for
    an unbounded CI end, empty for NaN and -inf), text neutralised (``csv_text``). Numbers stay numbers: a
    negative one is written as ``-0.5``, never quoted, so pandas and spreadsheets read it as a number."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):  # numpy integers too
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if not math.isfinite(v):  # an unbounded CI end is "inf"; "-inf" would start like a formula
            return "inf" if v > 0 else ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    return csv_text(str(v))


def _decision_columns(decision) -> dict:
    if decision is None:
        return {}
    return {"decision": decision.outcome, "decision_measure": decision.measure,
            "decision_estimate": decision.estimate, "decision_ci_low": decision.ci_low,
            "decision_ci_high": decision.ci_high, "decision_margin": decision.margin,
            "examples_needed": decision.examples_needed}


def _correct_columns(cost) -> dict:
    if cost is None:
        return {}
    return {"correct": cost.correct, "correct_n": cost.n, "correct_rule": cost.rule,
            "seconds_per_correct": cost.seconds_per_correct, "joules_per_correct": cost.joules_per_correct}


def to_csv(cmp: Comparison) -> str:
    """One row per model x task, flat columns (the served figures when a row has them, then every quality
    metric as ``metric.<name>``)."""
    extra = sorted({m for t in cmp.tasks for r in t.results for m in r.metrics})
    served = [c for c in SERVED_CSV_COLUMNS if any(getattr(r, c) is not None for t in cmp.tasks for r in t.results)]
    columns = CSV_COLUMNS + served
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns + [csv_text(f"metric.{m}") for m in extra])
    for t in cmp.tasks:
        bests, chosen = best_models(t), chosen_models(t)  # per level in a sweep
        for r in t.results:
            d = r.to_dict()
            d.update(task=t.task, metric=t.metric, higher_is_better=t.higher_is_better, ref_model=t.ref,
                     quality_rel_to_ref=r.quality_rel,
                     verdict_best=r.model in bests, verdict_chosen=r.model in chosen)
            d.update(_decision_columns(r.decision), **_correct_columns(r.correct))
            writer.writerow([csv_value(d.get(c)) for c in columns]
                            + [csv_value(r.metrics.get(m)) for m in extra])
    return buf.getvalue()


class CsvExporter:
    """Flat table for spreadsheets and pandas."""

    name = "csv"
    suffixes = (".csv",)

    def export(self, cmp: Comparison, merged: MergedRuns, options: ExportOptions) -> str:
        """See ``to_csv``."""
        return to_csv(cmp)
