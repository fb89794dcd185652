"""Reports over run records: merge rows, compare them, give verdicts, export and plot.

Reads records only: no model is loaded and torch is never imported here.
"""

from llmbench.report.compare import DEFAULT_MARGIN, Comparison, build_comparison
from llmbench.report.merge import MergedRuns, load_runs

__all__ = ["DEFAULT_MARGIN", "Comparison", "MergedRuns", "build_comparison", "load_runs"]
