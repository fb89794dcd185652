"""Reports over run records: merge rows, compare them, give verdicts, export and plot.

Reads records only: no model is loaded and torch is never imported here. The names below load on first use,
so that a command's `--help` (which reads report.defaults) does not import numpy.
"""

from __future__ import annotations

import importlib

_LAZY = {"DEFAULT_MARGIN": "llmbench.report.defaults", "Comparison": "llmbench.report.compare",
         "build_comparison": "llmbench.report.compare", "MergedRuns": "llmbench.report.merge",
         "load_runs": "llmbench.report.merge"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
