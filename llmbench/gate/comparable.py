"""Do the two runs measure the same thing? Run settings that differ (a warning), and rows whose values no test
can compare because the rows measured other things: different examples of the task (every check but the
weights' memory), or a different generation budget, ``task.max_new_tokens`` (quality, latency and energy
checks: a shorter budget cuts answers).
Such checks are undecided, never passed: a difference there says nothing about the change being gated.
"""

from __future__ import annotations

from llmbench.gate.checks import NOT_PAIRED, OTHER_BUDGET, Check
from llmbench.gate.noise import number
from llmbench.records import ResultRow, RunRecord

SETTINGS_KEYS = ("setting", "batch_size", "batch_sizes", "max_new_tokens", "new_tokens", "limit", "seed", "device",
                 "chat_template")
# what other examples leave comparable: what the weights hold and what loading them took (every other value
# depends on the prompts, the answers or their lengths)
EXAMPLE_FREE = ("memory.weights_bytes", "memory.load_peak_rss_bytes")
# what a different generation budget changes: how many tokens are generated and timed, their energy, and the
# answers themselves (a budget of 16 cuts what 64 would have finished): only what the weights hold is left
BUDGET_BOUND = ("latency.", "energy.", "quality.")
KINDS = ("quality", "latency", "memory", "energy")
_SHOWN_ROWS = 4  # rows a warning names before it counts the rest


def settings_differences(base: RunRecord, cand: RunRecord) -> list[str]:
    """'runs differ in setting new_tokens: not set (baseline) vs 16 (candidate)', one per setting."""
    out = []
    for key in SETTINGS_KEYS:
        a, b = base.settings.get(key), cand.settings.get(key)
        if a != b:
            out.append(f"runs differ in setting {key}: {_setting(a)} (baseline) vs {_setting(b)} (candidate)")
    return out


def _setting(value) -> str:
    """A setting as its option takes it: levels '16,64'; 'not set' for one the run left out (no --limit, no
    --new-tokens: each task's own budget)."""
    if value is None:
        return "not set"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def budgets(base: ResultRow, cand: ResultRow | None) -> tuple[int, int] | None:
    """The rows' generation budgets (``task.max_new_tokens``) when both record one and they differ."""
    if cand is None:
        return None
    pair = tuple(number(row.task.get("max_new_tokens")) for row in (base, cand))
    return None if None in pair or pair[0] == pair[1] else (int(pair[0]), int(pair[1]))


def incomparable(path: str, opts: dict) -> tuple[str, str] | None:
    """(method, message) for a metric the two rows measured on other things: different examples
    (``opts["different_examples"]``) or different budgets (``opts["budgets"]``); None when comparable."""
    if opts.get("different_examples") and path not in EXAMPLE_FREE:
        return NOT_PAIRED, ("cannot compare: the baseline and the candidate ran different examples; gate against a "
                            "baseline run on the same task data")
    pair = opts.get("budgets")
    if pair and path.startswith(BUDGET_BOUND):
        return OTHER_BUDGET, (f"cannot compare: the rows generated up to {pair[0]} (baseline) and {pair[1]} "
                              "(candidate) new tokens per example (task.max_new_tokens); gate against a baseline "
                              "run with the same generation budget")
    return None


def made_undecided(checks: list[Check], method: str, whose: str, none: str) -> str:
    """'its quality and latency checks are undecided': the kinds of ``checks`` that ``method`` made undecided
    (``none`` when it made none)."""
    kinds = [k for k in KINDS if any(c.method == method and c.metric.startswith(k + ".") for c in checks)]
    if not kinds:
        return none
    shown = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return f"{whose} {shown} checks are undecided"


def examples_note(key: tuple[str, str], why: str, checks: list[Check]) -> str:
    """The warning for a row whose runs ran different examples, naming the kinds of checks it made undecided."""
    affected = made_undecided(checks, NOT_PAIRED, "its", "none of its checks depends on them")
    return f"{key[0]} / {key[1]}: {why}; {affected}"


def budget_note(rows: list[tuple[tuple[str, str], tuple[int, int], list[Check]]]) -> str:
    """One warning for the rows whose baseline and candidate generated under different budgets: the first few
    named with their budgets, the rest counted."""
    shown = ", ".join(f"{m} / {t} ({a} vs {b})" for (m, t), (a, b), _ in rows[:_SHOWN_ROWS])
    if len(rows) > _SHOWN_ROWS:
        shown += f" and {len(rows) - _SHOWN_ROWS} more"
    one = len(rows) == 1
    affected = made_undecided([c for *_, checks in rows for c in checks], OTHER_BUDGET, "its" if one else "their",
                              "no quality, latency or energy check was made on them")
    return (f"{len(rows)} {'row' if one else 'rows'} generated up to a different number of new tokens per example "
            f"in the baseline and the candidate (task.max_new_tokens, baseline vs candidate): {shown}; {affected}")
