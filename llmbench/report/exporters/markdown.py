"""Markdown (GitHub-flavoured): one table per task, the verdicts and the warnings; no timestamps."""

from __future__ import annotations

from llmbench.report.compare import Comparison
from llmbench.report.exporters import ExportOptions
from llmbench.report.format import md_cell, md_code
from llmbench.report.merge import MergedRuns
from llmbench.report.table import (
    SIGNIFICANCE_NOTE,
    failures,
    served_notes,
    table_cells,
    table_headers,
    task_caption,
    verdict_lines,
)

_LABELS = {"curve": "Size curve", "knee": "Knee"}


def to_markdown(cmp: Comparison) -> str:
    """GitHub-flavoured Markdown: one table per task, the verdicts and the warnings."""
    lines = ["# llmbench comparison", "", "Runs: " + ", ".join(md_code(r) for r in cmp.run_ids), ""]
    lines += [f"> **Warning:** {md_cell(n)}" for n in cmp.notes]
    for t in cmp.tasks:
        lines += ["", f"## {md_cell(t.task)}", "", md_cell(task_caption(t)) + ".", ""]
        headers = table_headers(t)
        lines.append("| " + " | ".join(md_cell(h) for h in headers) + " |")  # metric names come from records
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
        lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in table_cells(t)]
        lines.append("")
        for kind, text in verdict_lines(t):
            if kind == "verdict":
                lines.append(f"**Verdict:** {md_cell(text)}.")
            elif kind == "decision":
                if not lines[-1].startswith("- "):  # a blank line opens the list
                    lines.append("")
                lines.append(f"- {md_cell(text)}")
            else:
                lines += ["", f"{_LABELS[kind]}: {md_cell(text)}."]
        items = [f"- failed: {md_cell(f)}" for f in failures(t)]
        items += [f"- note: {md_cell(n)}" for n in t.notes + served_notes(t)]
        lines += [""] + items if items else []
    lines += ["", SIGNIFICANCE_NOTE + "."]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


class MarkdownExporter:
    """Tables and verdicts for a pull request or a README."""

    name = "md"
    suffixes = (".md", ".markdown")

    def export(self, cmp: Comparison, merged: MergedRuns, options: ExportOptions) -> str:
        """See ``to_markdown``."""
        return to_markdown(cmp)
