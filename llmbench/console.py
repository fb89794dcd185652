"""The one rich Console pair: tables and results on stdout, progress and warnings on stderr.

Only the CLI layer (llmbench/cli/) imports this module.
"""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console


@lru_cache(maxsize=1)
def out() -> Console:
    """Console for results (tables, paths); wide when piped, so tables are not squeezed to 80 columns."""
    probe = Console()
    return Console(soft_wrap=False, width=None if probe.is_terminal else 200)


@lru_cache(maxsize=1)
def err() -> Console:
    """Console for progress, warnings and errors."""
    return Console(stderr=True)


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {message}", highlight=False)


def fmt_bytes(n: float | None) -> str:
    """Human-readable bytes (binary units); 'n/a' for None."""
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt_params(n: int | None) -> str:
    """134515008 -> '135M'."""
    if n is None:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            v = n / div
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return str(n)


def fmt_num(v: float | None, digits: int = 3) -> str:
    """Significant-digit formatting; 'n/a' for None."""
    if v is None:
        return "n/a"
    return f"{v:.{digits}g}"
