"""Exporters: one class per format behind the ``Exporter`` protocol, found by name in ``EXPORTERS``.

A new format is one file with a class that has ``name``, ``suffixes`` and ``export(cmp, merged, options)``,
plus one line: ``EXPORTERS.register("name", "package.module:ClassName")`` (or the class itself). The CLI's
``llmbench export --format`` takes any registered name, and ``-o FILE`` picks the exporter whose suffixes
include FILE's extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from llmbench.errors import UserError
from llmbench.registry import Registry, did_you_mean

if TYPE_CHECKING:
    from llmbench.report.compare import Comparison
    from llmbench.report.merge import MergedRuns


@dataclass(frozen=True)
class ExportOptions:
    """Settings an exporter may read; one that has no use for a setting ignores it."""

    samples_per_task: int = 3  # HTML: sample outputs shown per task
    charts: bool = True  # HTML: embed the charts (needs matplotlib)


@runtime_checkable
class Exporter(Protocol):
    """One output format of a comparison."""

    name: str  # the --format name
    suffixes: tuple[str, ...]  # file extensions that select it, lower case with the dot: (".md", ".markdown")

    def export(self, cmp: Comparison, merged: MergedRuns, options: ExportOptions) -> str:
        """The whole file's text."""


EXPORTERS: Registry[type] = Registry("export format", {
    "json": "llmbench.report.exporters.json:JsonExporter",
    "csv": "llmbench.report.exporters.csv:CsvExporter",
    "md": "llmbench.report.exporters.markdown:MarkdownExporter",
    "html": "llmbench.report.exporters.html:HtmlExporter",
    "latex": "llmbench.report.exporters.latex:LatexExporter",
})


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name`` (a class is instantiated); UserError with a did-you-mean when unknown."""
    target = EXPORTERS.get(name)
    return target() if isinstance(target, type) else target


def format_names() -> list[str]:
    """The registered format names, in registration order."""
    return EXPORTERS.names()


def export(cmp: Comparison, merged: MergedRuns, fmt: str, options: ExportOptions | None = None,
           **settings) -> str:
    """Render ``cmp`` with the exporter named ``fmt``; ``settings`` are ``ExportOptions`` fields."""
    return get_exporter(fmt).export(cmp, merged, options or ExportOptions(**settings))


def format_for(path: str | Path, fmt: str | None) -> str:
    """The explicit format (checked), else the one whose suffixes include the file's extension; UserError when
    neither says."""
    if fmt:
        get_exporter(fmt)
        return fmt
    ext = Path(path).suffix.lower()
    for name in format_names():
        if ext and ext in get_exporter(name).suffixes:
            return name
    suffixes = [s for name in format_names() for s in get_exporter(name).suffixes]
    raise UserError(f"cannot tell the format of {path}; pass --format ({', '.join(format_names())})"
                    + (did_you_mean(ext, suffixes) if ext else ""))
