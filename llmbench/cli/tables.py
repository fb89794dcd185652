"""The side-by-side run table (rich); numbers formatted by llmbench.report.format, as in every other command."""

from __future__ import annotations

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from llmbench.records import RunRecord
from llmbench.report.format import (
    NA,
    fmt_joules,
    fmt_number,
    fmt_params,
    fmt_rate,
    fmt_requests_rate,
    fmt_roofline,
    fmt_seconds,
    roofline_is_lower_bound,
    roofline_percent,
)
from llmbench.report.table import ROOFLINE, memory_cell


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


_NUMBERS = ("TTFT p50", "TPOT p50", "tok/s", ROOFLINE.replace(" ", "\n"), "peak mem", "J/sample")
_SERVED = "req/s\nout tok/s"  # after tok/s, only in a run with a served row: a level's two throughputs


def _is_served(row) -> bool:
    return isinstance((row.latency or {}).get("requests"), dict)


def _served_cell(row) -> str:
    """'3.21\n412.3': a served level's requests and output tokens per second over its wall time; '' for an
    in-process row (its tok/s is the whole story)."""
    if not _is_served(row):
        return ""
    latency = row.latency
    return f"{fmt_requests_rate(latency.get('requests_per_s'))}\n{fmt_rate(latency.get('output_tokens_per_s'))}"
_NAME_MAX = 36  # a longer model or task name folds onto a second line
_QUALITY_MIN = 20  # what the quality column keeps before the names give up width ("bleu 0.623 [0.54–0.71]")
_QUALITY_MIN_SERVED = 14  # with the served column: the CI folds onto its own line, names keep 24 cells


class RunTable:
    """The run table, laid out for the width it is printed at (see ``run_table``)."""

    def __init__(self, record: RunRecord):
        self.record = record

    def __rich_console__(self, console, options):
        yield _table(self.record, options.max_width)


def run_table(record: RunRecord) -> RunTable:
    """One section per task, a row per model (variant, load level) within it, models side by side.

    Fits 120 columns with variant names (``smollm2-135m[bnb-4bit] (135M)``): the task is its section's first
    line rather than a column of its own, names keep their full width (up to 36 cells) while the quality
    column keeps 20, and the quality column, widest of the rest, wraps first. A run with a served row has one
    more column, ``req/s`` over ``out tok/s`` (a level's throughputs over its wall time; blank for in-process
    rows): the quality column then keeps 14, its CI on a line of its own, and names 24 cells.
    """
    return RunTable(record)


def _table(record: RunRecord, max_width: int) -> Table:
    settings = record.settings
    sizes, lengths = settings.get("batch_sizes"), settings.get("new_tokens")
    if sizes:  # a sweep: each level is its own row (NAME@bN), batch 1 the latency setting
        title = f"batch sizes {', '.join(map(str, sizes))}"
    else:
        title = f"{settings.get('setting', 'latency')} setting, batch {settings.get('batch_size', 1)}"
    if isinstance(lengths, list) and len(lengths) > 1:  # a length sweep: rows NAME@nN
        title += f", new tokens {', '.join(map(str, lengths))}"
    elif isinstance(lengths, list) and lengths:
        title += f", {lengths[0]} new tokens"
    if sizes or (isinstance(lengths, list) and len(lengths) > 1):
        title += ": rows NAME" + ("@bN" if sizes else "") + ("@nN" if lengths and len(lengths) > 1 else "")
    table = Table(title=f"llmbench run {record.run_id}  ({title})")
    names = [_model_name(row) for row in record.rows] + [row.task.get("name", "?") for row in record.rows]
    served = any(_is_served(row) and row.status == "ok" for row in record.rows)
    columns = (*_NUMBERS[:3], _SERVED, *_NUMBERS[3:]) if served else _NUMBERS
    numbers = sum(max(len(h) for h in col.split("\n")) + 3 for col in columns) + 1
    room = max_width - numbers - 3 - ((_QUALITY_MIN_SERVED if served else _QUALITY_MIN) + 3)
    width = max(min(max(map(cell_len, names), default=0), _NAME_MAX, room), 12)
    # names and metrics come from specs and records: Text, never read as rich markup
    table.add_column("task / model (params)", justify="left", width=width, overflow="fold")
    table.add_column("quality [95% CI]", justify="left", overflow="fold")
    for col in columns:
        table.add_column(col, justify="right")
    tasks: dict[str, list] = {}
    for row in record.rows:
        tasks.setdefault(row.task.get("name", "?"), []).append(row)
    blank = [""] * (1 + len(columns))
    for t_i, (task, rows) in enumerate(tasks.items()):
        table.add_row(Text(task, style="bold"), *blank)
        for r_i, row in enumerate(rows):
            model = Text(_model_name(row))
            last = r_i == len(rows) - 1 and t_i < len(tasks) - 1
            if row.status != "ok":
                table.add_row(model, Text.assemble(("failed", "red"), f": {row.error}"), *blank[1:], end_section=last)
                continue
            table.add_row(
                model, Text(_quality_text(row.quality)),
                _p50(row.latency, "ttft_s"), _p50(row.latency, "tpot_s"), fmt_rate(row.latency.get("tokens_per_s")),
                *([_served_cell(row)] if served else []),
                fmt_roofline(roofline_percent(row.latency), roofline_is_lower_bound(row.latency)),
                _peak(row.memory), _energy(row.energy),
                end_section=last,
            )
    return table


def _model_name(row) -> str:
    return f"{row.model.get('name')} ({fmt_params(row.model.get('parameters'))})"
