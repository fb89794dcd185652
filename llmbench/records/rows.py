"""The parts of a row and of its samples.jsonl lines that our task rows, in process and served, build alike:
the task entry, the per-sample lines of a row's generations, a failed row, the reason of a scoring failure."""

from __future__ import annotations

from llmbench.errors import UserError, error_text
from llmbench.records.schema import ResultRow


def task_entry(task, n: int, max_new_tokens: int | None = None) -> dict:
    """A row's ``task``: name, kind, the examples it ran (``n``), the records its data holds (``available``,
    what ``--limit`` chooses from; absent where not countable, as for hub datasets), its source and the
    generation budget."""
    entry = {"name": task.name, "kind": task.kind, "n": n, "source": task.source_description}
    spec = getattr(task, "spec", None)
    available = spec.size() if spec is not None and n else None
    if isinstance(available, int) and available >= n:
        entry["available"] = available
    if max_new_tokens is not None:
        entry["max_new_tokens"] = max_new_tokens
    return entry


def examples_available(*rows) -> int | None:
    """The fewest examples the rows' task data holds (``task.available``); None when a row does not say."""
    found = [row.task.get("available") for row in rows]
    return min(found) if found and all(isinstance(a, int) and not isinstance(a, bool) for a in found) else None


def failed_row(model_info: dict, task, error: str) -> ResultRow:
    """A row with nothing measured (the model did not load, or the generations failed)."""
    return ResultRow(model=model_info, task=task_entry(task, 0), status="failed", error=error)


def sample_lines(name: str, task, examples, generations) -> list[dict]:
    """One samples.jsonl line per generation: its example (index and digest), prompt, answer, timings and the
    backend's extras (``scores`` filled once the answers are scored)."""
    return [
        {"model": name, "task": task.name, "index": ex.index, "example": ex.digest, "prompt": g.prompt,
         "prediction": g.text, "references": list(ex.references), "scores": {}, "ttft_s": g.ttft_s, "tpot_s": g.tpot_s,
         "e2e_s": g.e2e_s, "new_tokens": g.new_tokens, **g.extra}
        for ex, g in zip(examples, generations)
    ]


def scoring_error(exc: Exception) -> str:
    """``scoring failed: <reason>``: a bad input's own message on one line, else the exception's type and text."""
    reason = " ".join(str(exc).split()) if isinstance(exc, UserError) else error_text(exc)
    return f"scoring failed: {reason}"
