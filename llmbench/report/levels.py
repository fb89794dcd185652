"""Sweep levels in a comparison: the verdict decides among the models of one operating point.

A sweep gives each model one row per level, named with the level's suffix (``NAME@b4`` for a batch level,
``NAME@n64`` for a generation budget, ``NAME@b4@n64`` crossed, ``NAME@c4`` / ``NAME@r2`` for a served load
level; llmbench.levels and llmbench.config.LoadLevel), its model entry holding ``base_name``, the name without
it. Levels of one model are the same weights at other settings, not a smaller model: they never compete.
The rows of a task are grouped by level (the suffix: the same batch size, budget and load) and each level
gets its own verdict among its models; a task of one level gets the one verdict it always had.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from llmbench.report.defaults import DEFAULT_MIN_GAIN
from llmbench.report.merge import SERVED_DEVICE

if TYPE_CHECKING:  # compare groups its results here: importing it back at run time would be a cycle
    from llmbench.report.compare import ModelResult, TaskComparison
    from llmbench.report.verdict import Verdict
    from llmbench.stats.noninferiority import Decision, Gain

# what the rows without a suffix are, named as a suffix would name them, when other levels are of that kind
_BATCH, _LOAD = "@b1", "@c1"
PLAIN = "(no level suffix)"  # rows without a suffix among levels of another kind


def row_level(model: dict) -> str:
    """A row's level from its model entry: the part of ``name`` after ``base_name`` (``@b4@n64``); "" for a
    row of no sweep or the latency setting (batch 1, concurrency 1, no length sweep: the plain name). A row
    without a suffix that ran at a batch size above 1 (``--batch-size 8``, no sweep) is at ``@b8``: it never
    shares a level with batch-1 rows."""
    name, base = model.get("name"), model.get("base_name")
    if isinstance(name, str) and isinstance(base, str) and base and name.startswith(base) and name != base:
        return name[len(base):]
    batch = model.get("batch_size")
    if type(batch) is int and batch > 1:
        return f"@b{batch}"
    return ""


def _number(pattern: str, level: str, default: float) -> float:
    found = re.search(pattern, level)
    try:
        return float(found.group(1)) if found else default
    except ValueError:  # a hand-made name such as NAME@r1.2.3: sorted last, never a traceback
        return math.inf


def level_order(level: str) -> tuple:
    """Sort key of a level: batch size, then generation budget, then concurrency and rate, as a sweep runs
    them (``""``, ``@n4``, ``@n64``, ``@b2@n4``; ``@c4`` before ``@c16``, a rate alone after them)."""
    rate_only = re.search(r"@r\d", level) is not None
    return (_number(r"@b(\d+)", level, 1), _number(r"@n(\d+)", level, 0),
            _number(r"@c(\d+)", level, math.inf if rate_only else 1),
            _number(r"(?:@c\d+|@)r([\d.]+)", level, 0), level)


def level_label(level: str, levels: list[str], results: list[ModelResult]) -> str:
    """How a verdict names its level: the suffix (``@b4@n64``); for the rows without one, the suffix they
    would have among the task's other levels (``@b1`` beside batch levels, ``@c1`` beside load levels, for
    in-process and served rows), else ``(no level suffix)``."""
    if level:
        return level
    served = {r.device == SERVED_DEVICE for r in results}
    parts = [label for label, kind, wanted in ((_BATCH, "@b", False), (_LOAD, "@c", True), (_LOAD, "@r", True))
             if wanted in served and any(kind in other for other in levels)]
    return " / ".join(dict.fromkeys(parts)) or PLAIN


def group_levels(results: list[ModelResult]) -> dict[str, list[ModelResult]]:
    """The task's results by level, the levels in sweep order, each level's rows in the task's order."""
    groups: dict[str, list[ModelResult]] = {}
    for r in results:
        groups.setdefault(r.level, []).append(r)
    return {level: groups[level] for level in sorted(groups, key=level_order)}


def level_verdicts(tc: TaskComparison, margin: float, decide: Callable[[str, str], Decision | None] | None = None,
                   speed: Callable[[str, str], tuple | None] | None = None,
                   gain: Callable[[str, str], Gain | None] | None = None,
                   min_gain: float = DEFAULT_MIN_GAIN) -> list[Verdict]:
    """One verdict per level of ``tc`` (see ``llmbench.report.verdict.task_verdict`` for the arguments), each
    deciding among that level's models only; one level: ``[task_verdict(tc, ...)]``, as without sweeps."""
    from llmbench.report.verdict import task_verdict

    groups = group_levels(tc.results)
    if len(groups) <= 1:
        return [task_verdict(tc, margin, decide, speed, gain, min_gain)]
    out = []
    for level, results in groups.items():
        # the same results (their decisions are set on them), the task's other fields as they are
        v = task_verdict(replace(tc, results=results, notes=[], verdict=None, verdicts=[]), margin, decide, speed,
                         gain, min_gain)
        v.level, v.level_label = level, level_label(level, list(groups), results)
        v.alone = v.best is not None and sum(r.ok and r.quality is not None for r in results) == 1
        out.append(v)
    return out
