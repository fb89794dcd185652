"""HTML: one self-contained page (tables, verdicts, charts as inline PNG, sample outputs), all model text
escaped; the page runs no script and fetches nothing."""

from __future__ import annotations

from llmbench.report.compare import Comparison, TaskComparison
from llmbench.report.exporters import ExportOptions
from llmbench.report.format import fmt_quality
from llmbench.report.merge import MergedRuns
from llmbench.report.table import (
    NOT_SIGNIFICANT,
    SIGNIFICANCE_NOTE,
    chosen_models,
    failures,
    served_notes,
    table_cells,
    table_headers,
    task_caption,
    verdict_lines,
)


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
    chosen = chosen_models(tc)
    return [{"cells": cells, "cls": " ".join(c for c, on in (("failed", not r.ok), ("ref", r.is_ref),
                                                              ("chosen", r.model in chosen)) if on)}
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
              "verdict_lines": verdict_lines(t), "failures": failures(t), "served_notes": served_notes(t),
              "chart": chart_uris.get(t.task),
              "examples": sample_examples(t, samples_per_task)} for t in cmp.tasks]
    envs = [{"run_id": r.run_id, "created_at": r.created_at, "environment": r.environment}
            for r in merged.records]
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return env.get_template("report.html.j2").render(
        cmp=cmp, tasks=tasks, runs=envs, significance_note=SIGNIFICANCE_NOTE, version=__version__,
        generated=generated, mark=NOT_SIGNIFICANT)


class HtmlExporter:
    """The report to open in a browser or attach to a CI run."""

    name = "html"
    suffixes = (".html", ".htm")

    def export(self, cmp: Comparison, merged: MergedRuns, options: ExportOptions) -> str:
        """See ``to_html``."""
        return to_html(cmp, merged, samples_per_task=options.samples_per_task, charts=options.charts)
