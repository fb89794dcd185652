"""`llmbench gate` on the terminal: one small table per model x task row (fits 80 columns), a line per check
that did not pass, and the verdict line.

The tables are laid out here as plain text, and rich only colours them: rich's Table measures and renders
every cell of every table again, which took about 7 ms per row, so minutes for a record of 100,000 rows. The
layout is rich's SIMPLE_HEAD one: the title, the headers, a rule, the rows, two spaces between columns.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.text import Text

from llmbench.records.store import gc_paused

STYLE = {"pass": "green", "fail": "bold red", "undecided": "bold yellow", "missing": "yellow",
         "not checked": "dim"}
_LABELS = {"fail": ("FAIL", "bold red"), "undecided": ("UNDECIDED", "bold yellow"), "missing": ("MISSING", "yellow"),
           "not checked": ("NOT CHECKED", "dim")}
_HEADERS = ("Metric", "Baseline", "Candidate", "Change", "Allowed", "p", "Verdict")
_LEFT = (0, 6)  # the metric and the verdict; the figures are right-aligned
# control characters (escape sequences included) in record text must not drive the terminal
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BATCH = 4000  # lines per print: one print per line costs more than the layout


def allowed(check) -> str:
    """The rule's margin, signed in the worsening direction: '-2%', '+15%', '-0.01'; '≥98%' (noninferior)."""
    if check.higher_is_better is None:
        return "n/a"
    if ":noninferior:" in check.rule:
        from llmbench.gate.display import format_limit

        return format_limit(check)
    return ("-" if check.higher_is_better else "+") + check.rule.rpartition(":")[2].lstrip("+-")


def change(check) -> str:
    """'+2.0%' (relative), else the change in the metric's unit or the noninferior ratio."""
    from llmbench.gate.display import format_change

    if check.ratio is not None:
        return format_change(check)
    rel = check.relative
    return f"{rel * 100:+.1f}%" if rel is not None else format_change(check)


def clean(text: str) -> str:
    """``text`` without control characters (line breaks become spaces): one line that cannot drive the terminal."""
    return _CONTROL.sub("", text.replace("\n", " "))


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


def _pad(text: str, width: int, left: bool) -> str:
    width += len(text) - _width(text)  # a wide character takes two cells
    return text.ljust(width) if left else text.rjust(width)


Line = tuple[str, tuple[tuple[int, int, str], ...]]  # the text and its styled (start, end, style) spans


def table_lines(title: str, checks: list) -> list[Line]:
    """One row's table: title, headers, rule, one line per check (its verdict coloured)."""
    from llmbench.gate.display import format_p, format_value

    cells = [(clean(c.metric), format_value(c.metric, c.baseline), format_value(c.metric, c.candidate), change(c),
              allowed(c), format_p(c.p_value), c.status) for c in checks]
    rows = (_HEADERS, *cells)
    ascii_only = "".join(v for row in cells for v in row).isascii()
    measure = len if ascii_only else _width
    widths = [max(measure(row[i]) for row in rows) for i in range(len(_HEADERS))]
    if ascii_only:  # one format string for the whole table
        shape = "  ".join(f"{{:{'<' if i in _LEFT else '>'}{w}}}" for i, w in enumerate(widths))
        texts = [shape.format(*row).rstrip() for row in rows]
    else:
        texts = ["  ".join(_pad(v, w, i in _LEFT) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
    lines: list[Line] = [(title, ((0, len(title), "italic"),)), (texts[0], ((0, len(texts[0]), "bold"),)),
                         ("─" * (sum(widths) + 2 * (len(widths) - 1)), ())]
    for text, c in zip(texts[1:], checks):
        end = len(text.rstrip())
        lines.append((text, ((end - len(c.status), end, STYLE[c.status]),)))
    return lines


def _styled(label: str, style: str, rest: str) -> Line:
    return label + rest, ((0, len(label), style),)


@gc_paused()
def print_report(report) -> None:
    """The tables, the checks that did not pass (one line each) and the verdict line, on stdout."""
    from rich.text import Span

    from llmbench.cli import console
    from llmbench.gate.display import describe, verdict_line

    lines = [_styled("gate", "bold", clean(f": candidate {report.candidate_id} vs baseline {report.baseline_id}"))]
    rows: dict[tuple[str, str], list] = {}
    for c in report.checks:
        rows.setdefault((c.model, c.task), []).append(c)
    for (model, task), checks in rows.items():
        lines += table_lines(clean(f"{report.model_label(model)} / {task}"), checks)
    for c in report.checks:
        if c.status in _LABELS:
            lines.append(_styled(*_LABELS[c.status], " " + clean(describe(c))))
    colour = "bold red" if report.failures else "bold yellow" if report.exit_code else "green"
    lines.append(_styled(verdict_line(report), colour,
                         clean(f" (rules: {report.rules_source}; significance {report.significance:g}"
                         f"{'; --strict' if report.strict else ''}; exit {report.exit_code})")))
    out = console.out()
    if not out.is_terminal:  # piped or a CI log: no styles to draw, so rich need not render the lines
        console.write_stdout("\n".join(line for line, _ in lines) + "\n")
        return
    for start in range(0, len(lines), _BATCH):
        chunk, spans, offset = lines[start:start + _BATCH], [], 0
        for line, styled in chunk:
            spans += [Span(offset + a, offset + b, style) for a, b, style in styled]
            offset += len(line) + 1
        text = Text("\n".join(line for line, _ in chunk))
        text.spans = spans
        out.print(text, highlight=False, soft_wrap=True)
