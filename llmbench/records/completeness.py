"""Whether a record is whole: its completeness keys (``complete``, ``finished_at``, ``missing``, ``sessions``,
each row's ``session``) checked when it is read, and the warnings every reading command prints for an
incomplete record or a row whose samples do not match its ``task.n``.

A record without ``complete`` was written before these keys existed: it is read as complete, without a
warning about completeness (its rows' samples are still checked).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

from llmbench.errors import UserError

_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}  # JSON leaves them raw


def short_json(value) -> str:
    """A value as it would be written, at most 60 characters and on one line (for error messages)."""
    text = json.dumps(value, ensure_ascii=False, default=str).translate(_LINE_BREAKS)
    return text if len(text) <= 60 else text[:57] + "..."


def is_count(v, low: int = 0) -> bool:
    """An integer (not a bool) from ``low`` up, below 2**53 (what every JSON reader reads exactly)."""
    return type(v) is int and low <= v < 2**53



def check_completeness(data: dict, path: Path) -> None:
    """UserError naming the file for a completeness key of the wrong shape (all are optional)."""
    complete = data.get("complete")
    if not (complete is None or isinstance(complete, bool)):
        raise UserError(f"{path}: complete must be true or false, got {short_json(complete)}")
    if not (data.get("finished_at") is None or isinstance(data["finished_at"], str)):
        raise UserError(f"{path}: finished_at must be a string or null, got {short_json(data['finished_at'])}")
    missing = data.get("missing")
    if missing is not None:
        if not isinstance(missing, list):
            raise UserError(f"{path}: missing must be a list of {{model, task}} objects, got {short_json(missing)}")
        for i, m in enumerate(missing, 1):
            if not (isinstance(m, dict) and all(isinstance(m.get(k), str) and m[k] for k in ("model", "task"))):
                raise UserError(f"{path}: missing entry {i} must be an object with model and task names, "
                                f"got {short_json(m)}")
    sessions = data.get("sessions")
    if sessions is not None:
        if not isinstance(sessions, list):
            raise UserError(f"{path}: sessions must be a list of objects, got {short_json(sessions)}")
        for i, s in enumerate(sessions, 1):
            if not isinstance(s, dict) or not is_count(s.get("session"), 1):
                raise UserError(f"{path}: sessions entry {i} must be an object with a session number >= 1, "
                                f"got {short_json(s)}")
            for key in ("started_at", "ended_at", "hostname", "command", "cwd", "end"):
                if not (s.get(key) is None or isinstance(s[key], str)):
                    raise UserError(f"{path}: sessions entry {i}: {key} must be a string, got {short_json(s[key])}")
    for i, row in enumerate(data.get("rows") or [], 1):
        session = row.get("session") if isinstance(row, dict) else None
        if session is not None and not is_count(session, 1):
            raise UserError(f"{path}: row {i}: session must be a session number >= 1, got {short_json(session)}")


def row_sample_problem(row, lines: list[dict]) -> str | None:
    """Why ``lines`` (the row's samples.jsonl lines) are not the row's ``task.n`` samples, or None.

    A failed row without generations has ``n`` 0 and no lines; an lm-eval group row has no lines of its own
    (its members have them), so an lm-eval row without lines is not checked."""
    n = row.task.get("n")
    if not is_count(n):
        return None
    if not lines and (row.task.get("kind") == "lm-eval" or n == 0):
        return None
    counts = Counter(line.get("index") for line in lines)
    repeated = sorted(i for i, c in counts.items() if c > 1)
    if repeated:
        return f"samples.jsonl repeats index {', '.join(map(str, repeated[:5]))}" + (", ..." if len(repeated) > 5
                                                                                    else "")
    if len(counts) != n:
        return f"{len(counts)} samples in samples.jsonl for task.n {n}"
    return None


MAX_ROW_WARNINGS = 5  # rows named one by one; past it, one line counts the rest


def record_warnings(record, samples: Iterable[dict] | None = None, keys: set | None = None) -> list[str]:
    """One line per problem of ``record``: the record of an unfinished run (and its missing rows); a row whose
    samples disagree with its ``task.n`` (only rows in ``keys`` when given; none when ``samples`` is None);
    and whatever reading it tolerated (``record.read_notes``)."""
    out = list(record.read_notes)
    if record.incomplete:
        missing = [f"{m.get('model')} × {m.get('task')}" for m in (record.missing or [])]
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        out.append(f"run {record.run_id} is incomplete (interrupted, killed or still running)"
                   + (f"; missing rows: {shown}" if missing else "")
                   + "; `llmbench run --resume` can finish it")
    if samples is not None:
        by_row: dict[tuple, list[dict]] = defaultdict(list)
        for line in samples:
            by_row[(line.get("model"), line.get("task"))].append(line)
        bad = []
        for row in record.rows:
            if keys is not None and row.key not in keys:
                continue
            problem = row_sample_problem(row, by_row.get(row.key, []))
            if problem:
                bad.append(f"run {record.run_id}: {row.key[0]} × {row.key[1]} ({row.status}): {problem}; its "
                           "per-sample figures are not the row's")
        out.extend(bad[:MAX_ROW_WARNINGS])
        if len(bad) > MAX_ROW_WARNINGS:  # one line per row of a 100,000-row record would bury everything else
            out.append(f"run {record.run_id}: {len(bad) - MAX_ROW_WARNINGS} more rows (of {len(bad)}) whose "
                       "samples.jsonl lines disagree with their task.n")
    return out
