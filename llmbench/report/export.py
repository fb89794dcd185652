"""Exports of a comparison: json (the merged rows), csv (flat, one row per model x task), md, latex, html.

The text formats share one set of cells (``table_cells``), so the terminal, Markdown, LaTeX and HTML
tables always say the same thing. Markdown, CSV and LaTeX carry no timestamps: they are reproducible.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from llmbench.errors import UserError
from llmbench.records.schema import SCHEMA_VERSION
from llmbench.report.compare import Comparison, ModelResult, TaskComparison
from llmbench.report.merge import MergedRuns
from llmbench.report.verdict import fmt_quality

FORMATS = ("json", "csv", "md", "html", "latex")
_EXTENSIONS = {".json": "json", ".csv": "csv", ".md": "md", ".markdown": "md", ".html": "html",
               ".htm": "html", ".tex": "latex", ".latex": "latex"}
NOT_SIGNIFICANT = "†"
SIGNIFICANCE_NOTE = (f"{NOT_SIGNIFICANT} not significantly different from the reference at 95% "
                     "(quality: paired randomization test over the shared samples; TTFT and TPOT/speed: "
                     "permutation test of the p50 over per-sample values)")
DASH = "—"


# ---- cell formatting -------------------------------------------------------------------------------

def _three_digits(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def fmt_params(n: int | None) -> str:
    """134515008 -> '135M', 999885952 -> '1B'; '?' when unknown."""
    if n is None:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div * 0.9995:
            v = n / div
            return f"{v:.1f}{unit}" if v < 9.95 and round(v, 1) != round(v) else f"{v:.0f}{unit}"
    return str(n)


def fmt_bytes(n: float | None) -> str:
    """Binary units with three significant digits ('978 MiB', '1.42 GiB'); 'n/a' for None."""
    if n is None:
        return "n/a"
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if abs(n) < 999.5 or unit == "TiB":
            return f"{_three_digits(n)} {unit}"
    return f"{n:.0f} TiB"


def fmt_seconds(s: float | None) -> str:
    """Milliseconds below one second, seconds above; 'n/a' for None."""
    if s is None:
        return "n/a"
    return f"{s * 1000:.3g} ms" if s < 1 else f"{s:.3g} s"


def fmt_speed(ratio: float | None) -> str:
    """Reference TPOT / this TPOT -> '3.1× faster' or '1.4× slower'."""
    if ratio is None:
        return "n/a"
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


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


def result_cells(r: ModelResult, scale: str | None) -> list[str]:
    """The cells of one model's row; failed rows say so and show no numbers."""
    name = f"{r.model} (ref)" if r.is_ref else r.model
    if not r.ok:
        return [name, fmt_params(r.parameters), "failed"] + [DASH] * 9
    q = fmt_quality(r.quality, scale)
    if r.quality is not None and r.quality_ci_low is not None and r.quality_ci_high is not None:
        q += f" [{fmt_quality(r.quality_ci_low, scale)}, {fmt_quality(r.quality_ci_high, scale)}]"
    elif r.quality is not None and r.quality_stderr is not None:  # as the run table shows lm-eval's metrics
        q += f" ±{fmt_quality(r.quality_stderr, scale)}"
    mem = fmt_bytes(r.peak_memory_bytes) + (" (GPU)" if r.memory_kind == "cuda" else "")
    energy = "n/a" if r.joules_per_sample is None else f"{r.joules_per_sample:.3g} J"
    cells = [name, fmt_params(r.parameters), q, _mark(fmt_seconds(r.ttft_p50_s), r.ttft_significant),
             fmt_seconds(r.tpot_p50_s), "n/a" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}", mem, energy]
    if r.is_ref:
        return cells + ["ref"] * 4
    rel = "n/a" if r.quality_rel is None else f"{r.quality_rel * 100:.0f}%"
    return cells + [_mark(rel, r.quality_significant), _mark(fmt_speed(r.speed_ratio), r.speed_significant),
                    _ratio(r.memory_ratio), _ratio(r.energy_ratio)]


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}×"


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


# ---- formats ----------------------------------------------------------------------------------------

def to_json(cmp: Comparison, merged: MergedRuns) -> str:
    """The merged rows (each with its run id), the runs' environments and the comparison."""
    runs = [{"run_id": r.run_id, "created_at": r.created_at, "command": r.command,
             "environment": r.environment, "settings": r.settings} for r in merged.records]
    rows = [{"run_id": m.run_id, **m.row.to_dict()} for m in merged.rows]
    data = {"schema_version": SCHEMA_VERSION, "runs": runs, "notes": cmp.notes, "rows": rows,
            "comparison": cmp.to_dict()}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ["task", "model", "parameters", "status", "error", "run_id", "device", "dtype", "metric",
               "higher_is_better", "quality", "quality_ci_low", "quality_ci_high", "quality_stderr", "ref_model",
               "is_ref", "quality_rel_to_ref", "quality_significant", "ttft_p50_s", "ttft_significant", "tpot_p50_s",
               "speed_ratio", "speed_significant", "tokens_per_s", "peak_memory_bytes", "memory_kind",
               "memory_ratio", "joules_per_sample", "energy_ratio", "energy_method", "verdict_best",
               "verdict_chosen"]


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    return str(v)


def to_csv(cmp: Comparison) -> str:
    """One row per model x task, flat columns (every quality metric as ``metric.<name>``)."""
    extra = sorted({m for t in cmp.tasks for r in t.results for m in r.metrics})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + [f"metric.{m}" for m in extra])
    for t in cmp.tasks:
        verdict = t.verdict
        for r in t.results:
            d = r.to_dict()
            d.update(task=t.task, metric=t.metric, higher_is_better=t.higher_is_better, ref_model=t.ref,
                     quality_rel_to_ref=r.quality_rel,
                     verdict_best=verdict is not None and verdict.best == r.model,
                     verdict_chosen=verdict is not None and verdict.chosen == r.model)
            writer.writerow([_csv_value(d.get(c)) for c in CSV_COLUMNS]
                            + [_csv_value(r.metrics.get(m)) for m in extra])
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(cmp: Comparison) -> str:
    """GitHub-flavoured Markdown: one table per task, the verdicts and the warnings."""
    lines = ["# llmbench comparison", "", "Runs: " + ", ".join(f"`{r}`" for r in cmp.run_ids), ""]
    lines += [f"> **Warning:** {_md_cell(n)}" for n in cmp.notes]
    for t in cmp.tasks:
        lines += ["", f"## {t.task}", "", _md_cell(task_caption(t)) + ".", ""]
        headers = table_headers(t)
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table_cells(t)]
        lines.append("")
        if t.verdict is not None:
            lines.append(f"**Verdict:** {_md_cell(t.verdict.text)}.")
            if t.verdict.scaling_text:
                lines += ["", f"Scaling: {_md_cell(t.verdict.scaling_text)}."]
        items = [f"- failed: {_md_cell(f)}" for f in failures(t)] + [f"- note: {_md_cell(n)}" for n in t.notes]
        lines += [""] + items if items else []
    lines += ["", SIGNIFICANCE_NOTE + "."]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "×": r"$\times$", NOT_SIGNIFICANT: r"$^\dagger$", "—": "---", "→": r"$\rightarrow$",
                  "−": "$-$", "≈": r"$\approx$", "±": r"$\pm$"}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_ESCAPES))


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few Unicode symbols the tables use."""
    return _LATEX_RE.sub(lambda m: _LATEX_ESCAPES[m.group(0)], text)


def to_latex(cmp: Comparison) -> str:
    """One booktabs ``table`` per task (needs ``\\usepackage{booktabs}``)."""
    out = ["% llmbench comparison; requires \\usepackage{booktabs}",
           "% runs: " + ", ".join(cmp.run_ids)]
    out += [f"% warning: {n}" for n in cmp.notes]
    for t in cmp.tasks:
        headers = table_headers(t)
        label = re.sub(r"[^A-Za-z0-9]+", "-", t.task).strip("-")
        out += ["", r"\begin{table}[ht]", r"\centering", r"\small", r"\setlength{\tabcolsep}{4pt}",
                r"\caption{" + latex_escape(f"{t.task}: {task_caption(t)}. {NOT_SIGNIFICANT} not significant "
                                            "at 95%.") + "}",
                rf"\label{{tab:llmbench-{label}}}",
                r"\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", r"\toprule",
                " & ".join(latex_escape(h) for h in headers) + r" \\", r"\midrule"]
        out += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table_cells(t)]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        if t.verdict is not None:
            out.append(f"% verdict: {t.verdict.text}")
    return "\n".join(out) + "\n"


def sample_examples(tc: TaskComparison, n: int = 3, max_chars: int = 600) -> list[dict]:
    """Up to ``n`` examples of a task (indices every model shares first): prompt, references, outputs."""
    models = [r.model for r in tc.results if r.ok and tc.samples.get(r.model)]
    if not models:
        return []
    sets = [set(tc.samples[m]) for m in models]
    shared, union = sorted(set.intersection(*sets)), sorted(set.union(*sets))
    chosen = (shared + [i for i in union if i not in shared])[:n]

    def clip(s: str) -> str:
        return s if len(s) <= max_chars else s[:max_chars] + " …"

    examples = []
    for i in chosen:
        first_model = next(m for m in models if i in tc.samples[m])
        first = tc.samples[first_model][i]
        prompt = str(first.get("prompt") or "")
        outputs = []
        for m in models:
            line = tc.samples[m].get(i)
            if line is not None:
                score = (line.get("scores") or {}).get(tc.metric) if tc.metric else None
                own = str(line.get("prompt") or "")
                outputs.append({"model": m, "prediction": clip(str(line.get("prediction") or "")),
                                "score": None if score is None else fmt_quality(score, tc.scale),
                                # a model given other text (its chat template, say) shows its own prompt
                                "prompt": clip(own) if own != prompt else None})
        differ = any(o["prompt"] is not None for o in outputs)
        examples.append({"index": i, "prompt": clip(prompt), "prompt_model": first_model if differ else None,
                         "references": [clip(str(x)) for x in first.get("references") or []],
                         "outputs": outputs})
    return examples


def _html_rows(tc: TaskComparison) -> list[dict]:
    chosen = tc.verdict.chosen if tc.verdict is not None else None
    return [{"cells": cells, "cls": " ".join(c for c, on in (("failed", not r.ok), ("ref", r.is_ref),
                                                              ("chosen", r.model == chosen)) if on)}
            for r, cells in zip(tc.results, table_cells(tc))]


def to_html(cmp: Comparison, merged: MergedRuns, samples_per_task: int = 3, charts: bool = True) -> str:
    """One self-contained HTML page: tables, verdicts, charts as inline PNG, sample outputs (all escaped)."""
    import base64
    import datetime as _dt

    import jinja2

    from llmbench import __version__

    chart_uris: dict[str, str] = {}
    if charts:
        try:
            import matplotlib  # noqa: F401  (an optional extra: without it the report has no charts)

            from llmbench.report.plots import task_png
        except ImportError:
            task_png = None
        for t in cmp.tasks if task_png else []:
            chart_uris[t.task] = "data:image/png;base64," + base64.b64encode(task_png(t)).decode("ascii")
    env = jinja2.Environment(loader=jinja2.PackageLoader("llmbench.report", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    tasks = [{"t": t, "caption": task_caption(t), "headers": table_headers(t), "rows": _html_rows(t),
              "failures": failures(t), "chart": chart_uris.get(t.task),
              "examples": sample_examples(t, samples_per_task)} for t in cmp.tasks]
    envs = [{"run_id": r.run_id, "created_at": r.created_at, "environment": r.environment}
            for r in merged.records]
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return env.get_template("report.html.j2").render(
        cmp=cmp, tasks=tasks, runs=envs, significance_note=SIGNIFICANCE_NOTE, version=__version__,
        generated=generated, mark=NOT_SIGNIFICANT)


def export(cmp: Comparison, merged: MergedRuns, fmt: str, samples_per_task: int = 3) -> str:
    """Render ``cmp`` in one of FORMATS."""
    if fmt == "json":
        return to_json(cmp, merged)
    if fmt == "csv":
        return to_csv(cmp)
    if fmt == "md":
        return to_markdown(cmp)
    if fmt == "latex":
        return to_latex(cmp)
    if fmt == "html":
        return to_html(cmp, merged, samples_per_task=samples_per_task)
    raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")


def format_for(path: str | Path, fmt: str | None) -> str:
    """The explicit format, else the one the file extension names; UserError when neither says."""
    if fmt:
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS:
        raise UserError(f"cannot tell the format of {path}; pass --format ({', '.join(FORMATS)})")
    return _EXTENSIONS[ext]
