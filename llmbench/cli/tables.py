"""The side-by-side run table (rich)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from llmbench.cli.console import fmt_bytes, fmt_num, fmt_params
from llmbench.records import RunRecord


def _quality_text(quality: dict) -> str:
    parts = []
    for name, q in quality.items():
        if q.get("value") is None:
            parts.append(f"{name} n/a")
            continue
        ci = ""
        if q.get("ci_low") is not None:
            ci = f" [{fmt_num(q['ci_low'])}–{fmt_num(q['ci_high'])}]"
        elif q.get("stderr") is not None:
            ci = f" ±{fmt_num(q['stderr'])}"
        parts.append(f"{name} {fmt_num(q['value'])}{ci}")
    return "\n".join(parts)


def _p50(latency: dict, key: str, scale: float = 1000.0) -> str:
    v = (latency.get(key) or {}).get("p50")
    return "n/a" if v is None else f"{v * scale:.1f}"


def _peak(memory: dict) -> str:
    for key in ("cuda_peak_allocated_bytes", "peak_rss_bytes"):
        if memory.get(key) is not None:
            return fmt_bytes(memory[key]) + (" GPU" if key.startswith("cuda") else "")
    return "n/a"


def _energy(energy: dict) -> str:
    if not energy or not energy.get("available") or energy.get("joules_per_sample") is None:
        return "n/a"
    return f"{energy['joules_per_sample']:.3g}"


def run_table(record: RunRecord) -> Table:
    """One row per task x model, models side by side within each task."""
    setting = record.settings.get("setting", "latency")
    batch = record.settings.get("batch_size", 1)
    table = Table(title=f"llmbench run {record.run_id}  ({setting} setting, batch {batch})")
    for col, just in (("task", "left"), ("model (params)", "left"), ("quality [95% CI]", "left"),
                      ("TTFT p50 ms", "right"), ("TPOT p50 ms", "right"), ("tok/s", "right"),
                      ("peak mem", "right"), ("J/sample", "right")):
        table.add_column(col, justify=just)
    tasks: dict[str, list] = {}
    for row in record.rows:
        tasks.setdefault(row.task.get("name", "?"), []).append(row)
    for t_i, (task, rows) in enumerate(tasks.items()):
        for r_i, row in enumerate(rows):
            # names, metrics and errors come from specs and records: Text, never read as rich markup
            model = Text(f"{row.model.get('name')} ({fmt_params(row.model.get('parameters'))})")
            name = Text(task if r_i == 0 else "")
            if row.status != "ok":
                table.add_row(name, model, Text.assemble(("failed", "red"), f": {row.error}"), "", "", "", "", "")
                continue
            tps = row.latency.get("tokens_per_s")
            table.add_row(
                name, model, Text(_quality_text(row.quality)),
                _p50(row.latency, "ttft_s"), _p50(row.latency, "tpot_s"),
                "n/a" if tps is None else f"{tps:.1f}", _peak(row.memory), _energy(row.energy),
                end_section=(r_i == len(rows) - 1 and t_i < len(tasks) - 1),
            )
    return table
