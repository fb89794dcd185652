"""Sweep levels of in-process models: batch sizes (``--batch-size 1,4,16``) and generation budgets
(``--new-tokens 16,64,256``), parsed, and the suffix each level's row name gets (``NAME@b4@n64``)."""

from __future__ import annotations

from llmbench.errors import UserError


def batch_suffix(batch_size: int) -> str:
    """What a batch level row's model name gets in a sweep: ``""`` at batch size 1 (the latency setting), else
    ``@b4``; rows are keyed by model and task name, so each level stays its own row (as served ``@c4`` rows)."""
    return "" if batch_size == 1 else f"@b{batch_size}"


def length_suffix(new_tokens: int | None) -> str:
    """What a length level row's model name gets in a length sweep (``@n64``; ``""`` for None, i.e. not a
    sweep). After the batch level's: ``NAME@b4@n64``."""
    return "" if new_tokens is None else f"@n{new_tokens}"


def _positive_ints(text: str, option: str, example: str) -> tuple[int, ...]:
    """``"16, 1,4,4"`` -> (1, 4, 16): ascending without repeats (the first level runs first, so the others can be
    compared with it); UserError for anything but positive integers."""
    out = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"{option} {text!r}: give positive integers separated by commas, e.g. {example} "
                            f"({option} must be at least 1)")
        out.append(int(part))
    return tuple(sorted(set(out)))


def parse_new_tokens(text: str | None) -> tuple[int, ...]:
    """``--new-tokens "16,64,256"`` -> (16, 64, 256); ``None`` -> () (each task's own budget). One value sets
    every task's budget; two or more are a length sweep, one row per level."""
    return () if text is None else _positive_ints(text, "--new-tokens", "64 or 16,64,256")


def parse_batch_sizes(text: str | int | None) -> tuple[int, ...]:
    """``"1,4,16"`` -> (1, 4, 16); ``None`` -> (1,)."""
    return (1,) if text is None else _positive_ints(str(text), "--batch-size", "1 or 1,4,16")
