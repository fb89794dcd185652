"""What a name may be: a model label given with ``name=LABEL`` (the task-name rule), and a model, task or run
name in a record (the label rule widened to what llmbench itself derives and appends).

Names reach every export (CSV cells, Markdown, HTML, LaTeX) and the terminal, so a name that starts with a
letter or a digit and holds no markup, quote, space or control character cannot become a spreadsheet
formula, raw HTML or a terminal escape, whatever the exporter does with it. Exporters escape anyway.
"""

from __future__ import annotations

import re

#: a model label (``-m ...,name=LABEL``), as a task name (llmbench.tasks.spec.NAME_RE; a test keeps them equal)
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LABEL_RULE = "letters, digits, '.', '_' or '-', starting with a letter or a digit"

#: a model, task or run name in a record: what a label allows, in any script, plus what llmbench derives
#: and appends: variants ``smollm2-135m[int8,static]``, levels ``NAME@c4``, ``NAME@c4r2.5``, ``NAME@b4@n64``,
#: a served model's ``host:port`` (``[::1]:8000`` too), lm-eval rows ``lm-eval:hellaswag``
ROW_NAME_RE = re.compile(r"^(?:[^\W_]|\[)[\w.\-@\[\],:+]*$")
ROW_NAME_RULE = ("letters, digits and . _ - @ [ ] , : +, starting with a letter, a digit or '[' (no spaces, "
                 "quotes or markup)")
MAX_NAME_CHARS = 200


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot be a model label, or None."""
    if not LABEL_RE.fullmatch(label):
        return f"must be {LABEL_RULE}"
    if len(label) > MAX_NAME_CHARS:
        return f"is longer than {MAX_NAME_CHARS} characters"
    return None


def row_name_problem(name) -> str | None:
    """Why ``name`` cannot name a model, task or run in a record, or None."""
    if not isinstance(name, str):
        return "must be a string"
    if len(name) > MAX_NAME_CHARS:
        return f"is longer than {MAX_NAME_CHARS} characters"
    if not ROW_NAME_RE.fullmatch(name):
        return f"must be {ROW_NAME_RULE}"
    return None
