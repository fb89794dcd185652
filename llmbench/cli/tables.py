"""The side-by-side run table (rich); numbers formatted by llmbench.report.format, as in every other command."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from llmbench.records import RunRecord
from llmbench.report.format import NA, fmt_joules, fmt_number, fmt_params, fmt_rate, fmt_seconds
from llmbench.report.table import memory_cell


def _quality_text(quality: dict) -> str:
    parts = []
    for name, q in quality.items():
        if q.get("value") is None:
            parts.append(f"{name} n/a")
            continue
        ci = ""
        if q.get("ci_low") is not None:
            ci = f" [{fmt_number(q['ci_low'])}–{fmt_number(q['ci_high'])}]"
        elif q.get("stderr") is not None:
            ci = f" ±{fmt_number(q['stderr'])}"
        parts.append(f"{name} {fmt_number(q['value'])}{ci}")
    return "\n".join(parts)


def _p50(latency: dict, key: str) -> str:
    return fmt_seconds((latency.get(key) or {}).get("p50"))


def _peak(memory: dict) -> str:
    # the same memory as `compare`: CUDA peak allocated when measured on a GPU, else the process peak RSS
    for key, kind in (("cuda_peak_allocated_bytes", "cuda"), ("peak_rss_bytes", "rss")):
        if memory.get(key) is not None:
            return memory_cell(memory[key], kind)
    return NA


def _energy(energy: dict) -> str:
    if not energy or not energy.get("available") or energy.get("joules_per_sample") is None:
        return NA
    return fmt_joules(energy["joules_per_sample"])


def run_table(record: RunRecord) -> Table:
    """One row per task x model, models side by side within each task."""
    setting = record.settings.get("setting", "latency")
    batch = record.settings.get("batch_size", 1)
    table = Table(title=f"llmbench run {record.run_id}  ({setting} setting, batch {batch})")
    for col, just in (("task", "left"), ("model (params)", "left"), ("quality [95% CI]", "left"),
                      ("TTFT p50", "right"), ("TPOT p50", "right"), ("tok/s", "right"),
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
            table.add_row(
                name, model, Text(_quality_text(row.quality)),
                _p50(row.latency, "ttft_s"), _p50(row.latency, "tpot_s"),
                fmt_rate(row.latency.get("tokens_per_s")), _peak(row.memory), _energy(row.energy),
                end_section=(r_i == len(rows) - 1 and t_i < len(tasks) - 1),
            )
    return table
