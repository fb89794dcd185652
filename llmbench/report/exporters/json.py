"""JSON: the merged rows (each with its run id), the runs' environments and settings, and the comparison."""

from __future__ import annotations

import json
import math

from llmbench.records.schema import SCHEMA_VERSION
from llmbench.report.compare import Comparison
from llmbench.report.exporters import ExportOptions
from llmbench.report.merge import MergedRuns


class JsonExporter:
    """Everything the comparison knows, machine-readable (numbers unformatted)."""

    name = "json"
    suffixes = (".json",)

    def export(self, cmp: Comparison, merged: MergedRuns, options: ExportOptions) -> str:
        """The merged rows, every run's environment and the comparison (ratios, significance, verdicts)."""
        runs = [{"run_id": r.run_id, "created_at": r.created_at, "command": r.command,
                 "environment": r.environment, "settings": r.settings} for r in merged.records]
        rows = [{"run_id": m.run_id, **m.row.to_dict()} for m in merged.rows]
        data = {"schema_version": SCHEMA_VERSION, "runs": runs, "notes": cmp.notes, "rows": rows,
                "comparison": cmp.to_dict()}
        # strict JSON has no Infinity: an unbounded CI end (a ratio whose reference scored 0 on some resamples)
        # is written as null
        return json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _finite(value):
    """``value`` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
