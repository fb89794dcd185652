"""LaTeX: one booktabs ``table`` per task (needs ``\\usepackage{booktabs}``); no timestamps."""

from __future__ import annotations

import re

from llmbench.report.compare import Comparison
from llmbench.report.exporters import ExportOptions
from llmbench.report.merge import MergedRuns
from llmbench.report.table import (
    DEVICE_WIDE,
    NOT_SIGNIFICANT,
    served_notes,
    table_cells,
    table_headers,
    task_caption,
    verdict_lines,
)

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "×": r"$\times$", NOT_SIGNIFICANT: r"$^\dagger$", DEVICE_WIDE: r"$^\ddagger$",
                  "—": "---", "→": r"$\rightarrow$",
                  "−": "$-$", "≈": r"$\approx$", "±": r"$\pm$", "≥": r"$\geq$", "∞": r"$\infty$",
                  # record text is one line in a table cell: a newline would end a row or start a paragraph
                  "\r\n": " ", "\n": " ", "\r": " "}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_ESCAPES))


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few Unicode symbols the tables use."""
    return _LATEX_RE.sub(lambda m: _LATEX_ESCAPES[m.group(0)], text)


def _comment(text: str) -> str:
    """A ``%`` comment line: record text (names, errors) with its line breaks folded, so none can end the
    comment and become live LaTeX."""
    return "% " + " ".join(str(text).split())


def to_latex(cmp: Comparison) -> str:
    """One booktabs ``table`` per task (needs ``\\usepackage{booktabs}``)."""
    out = ["% llmbench comparison; requires \\usepackage{booktabs}",
           _comment("runs: " + ", ".join(cmp.run_ids))]
    out += [_comment(f"warning: {n}") for n in cmp.notes]
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
        out += [_comment(f"{kind}: {text}") for kind, text in verdict_lines(t)]
        out += [_comment(f"note: {text}") for text in served_notes(t)]
    return "\n".join(out) + "\n"


class LatexExporter:
    """Tables for a paper."""

    name = "latex"
    suffixes = (".tex", ".latex")

    def export(self, cmp: Comparison, merged: MergedRuns, options: ExportOptions) -> str:
        """See ``to_latex``."""
        return to_latex(cmp)
