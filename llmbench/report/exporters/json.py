"""JSON: the merged rows (each with its run id), the runs' environments and settings, and the comparison."""

from __future__ import annotations

import json

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
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
