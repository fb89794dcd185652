"""`llmbench compare`, `export` and `plot`: read run records only (no model, no torch)."""

from __future__ import annotations

from pathlib import Path

import click

from llmbench.errors import UserError
from llmbench.report.defaults import DEFAULT_MARGIN, DEFAULT_MIN_GAIN, DEFAULT_RESAMPLES

_RUNS_HELP = "Run directories, run.json paths or globs (default: the latest run under --results-dir)."


def _comparison_options(f):
    """Options shared by compare, export and plot."""
    options = [
        click.argument("runs", nargs=-1),
        click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"),
                     show_default=True, help="Where to look for the latest run when no RUN is given."),
        click.option("--ref", default=None, metavar="MODEL",
                     help="Reference model for the ratio columns [default: the largest finished model]."),
        click.option("--metric", default=None, metavar="NAME",
                     help="Primary quality metric [default: the first metric of each task's rows]."),
        click.option("--margin", type=float, default=DEFAULT_MARGIN, show_default=True,
                     help="Verdict: a model is enough when the paired 95% CI of its quality over the best's "
                          "clears this fraction."),
        click.option("--min-gain", type=float, default=DEFAULT_MIN_GAIN, show_default=True,
                     help="Knee of the size curve: the gain per doubling, in points of a 0-100 scale (0.01 on "
                          "0-1), that more size must beat with confidence to pay."),
        click.option("--resamples", type=click.IntRange(min=0), default=DEFAULT_RESAMPLES, show_default=True,
                     help="Bootstrap resamples for the significance marks and the decisions (0: no tests)."),
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                     help="Seed of the resamples."),
    ]
    for option in reversed(options):
        f = option(f)
    f.__doc__ = (f.__doc__ or "") + f"\n\n{_RUNS_HELP}"
    return f


def _build(runs, results_dir, ref, metric, margin, min_gain, resamples, seed, check=None):
    """Load and compare the runs; ``check(merged)`` runs before the (slower) comparison."""
    from llmbench.cli.console import progress
    from llmbench.report import build_comparison, load_runs

    merged = load_runs(runs, results_dir, progress=progress)
    _warn_records(merged)
    if check is not None:
        check(merged)
    return merged, build_comparison(merged, ref=ref, metric=metric, margin=margin, resamples=resamples,
                                    seed=seed, min_gain=min_gain)


def _warn_records(merged) -> None:
    """A warning per record of an unfinished run and per row whose samples disagree with its task.n."""
    from llmbench.cli.console import warn
    from llmbench.records.completeness import record_warnings

    for record in merged.records:
        rows = [m for m in merged.rows if m.run_id == record.run_id]
        for line in record_warnings(record, [s for m in rows for s in m.samples.values()], {m.row.key for m in rows}):
            warn(line)


def _inputs(merged) -> list[Path]:
    """Every run.json and samples.jsonl the command reads: outputs must never replace them."""
    from llmbench.records.store import run_files

    return [f for record in merged.records for f in run_files(record)]


def _warn_notes(cmp) -> None:
    from llmbench.cli.console import warn

    for note in cmp.notes:
        warn(note)


def _table_text(t) -> tuple[list[str], list[list[str]], list[int]]:
    """Headers, cells and each column's width in terminal cells (the widest of its header and cells)."""
    from rich.cells import cell_len

    from llmbench.report.table import table_cells, table_headers

    headers, cells = table_headers(t), table_cells(t)
    widths = [max(cell_len(r[i]) for r in [headers, *cells]) for i in range(len(headers))]
    return headers, cells, widths


def _rich_table(t, columns: list[int], text: tuple[list[str], list[list[str]], list[int]]):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from llmbench.report.table import chosen_models

    headers, cells, widths = text
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for i in columns:  # widths known: rich need not measure every cell again
        # Text, not str: a metric name from a record is shown as written, never read as rich markup
        table.add_column(Text(headers[i]), justify="left" if i == 0 else "right", no_wrap=True, width=widths[i])
    chosen = chosen_models(t)
    for r, row in zip(t.results, cells):
        style = "red" if not r.ok else "bold green" if r.model in chosen else "bold" if r.is_ref else None
        table.add_row(*[Text(row[i]) for i in columns], style=style)
    return table


def _column_chunks(cell_widths: list[int], width: int, groups: tuple[range, range]) -> list[list[int]]:
    """Columns grouped so each table fits ``width``; every group starts with the model column."""
    widths = [w + 3 for w in cell_widths]
    if sum(widths) <= width:
        return [list(range(len(widths)))]
    chunks: list[list[int]] = []
    for group in groups:  # measured values, then ratios to the reference and the decision
        chunks.append([0])
        for i in group:
            if len(chunks[-1]) > 1 and sum(widths[j] for j in chunks[-1]) + widths[i] > width:
                chunks.append([0])
            chunks[-1].append(i)
    return chunks


def _print_task(console, t) -> None:
    from rich.text import Text

    from llmbench.report.table import column_groups, failures, served_notes, task_caption, verdict_lines

    console.print(Text(t.task, style="bold"), Text(task_caption(t), style="dim"))
    text = _table_text(t)
    for columns in _column_chunks(text[2], console.width, column_groups(t)):  # narrow: several tables
        console.print(_rich_table(t, columns, text))
    for kind, line in verdict_lines(t):
        if kind == "verdict":
            console.print(Text.assemble(("verdict: ", "bold"), line))
        elif kind == "decision":
            console.print(Text(f"  {line}"))
        else:
            console.print(Text(line, style="dim"))
    for f in failures(t):
        console.print(Text(f"failed: {f}", style="red"))
    for n in t.notes + served_notes(t):
        console.print(Text(f"note: {n}", style="yellow"))
    console.print()


@click.command()
@_comparison_options
def compare(runs, results_dir, ref, metric, margin, min_gain, resamples, seed):
    """Compare runs side by side, per task, with significance marks, non-inferiority decisions, the size
    curve's knee and a verdict per task (repeated at the end)."""
    from rich.text import Text

    from llmbench.cli.console import out
    from llmbench.report.table import SIGNIFICANCE_NOTE, summary_lines

    merged, cmp = _build(runs, results_dir, ref, metric, margin, min_gain, resamples, seed)
    _warn_notes(cmp)
    console = out()
    for t in cmp.tasks:
        _print_task(console, t)
    console.print(Text(SIGNIFICANCE_NOTE, style="dim"))
    console.print()
    console.print(Text("verdicts", style="bold"))
    for t in cmp.tasks:
        for line in summary_lines(t):  # one line per task (per level of a sweep), for grep and CI logs
            console.print(Text(line), soft_wrap=True)


def _known_format(ctx, param, value):
    """--format checked against the exporter registry (not a fixed click.Choice: a plugin registered at run
    time is a format too); unknown is one line with a did-you-mean, exit 2."""
    if value is not None:
        from llmbench.report.exporters import get_exporter

        get_exporter(value)
    return value


@click.command()
@_comparison_options
@click.option("-f", "--format", "fmt", default=None, metavar="FORMAT", callback=_known_format,
              help="Output format, a registered exporter: json, csv, md, html, latex [default: from the file "
                   "extension].")
@click.option("-o", "--output", required=True, metavar="FILE", help="Output file ('-' for stdout).")
@click.option("--samples", "samples_per_task", type=click.IntRange(min=0), default=3, show_default=True,
              help="HTML: sample outputs shown per task.")
def export(runs, results_dir, ref, metric, margin, min_gain, resamples, seed, fmt, output, samples_per_task):
    """Export runs in any registered format (json, csv, md, html, latex)."""
    from llmbench.cli.console import err, write_stdout
    from llmbench.records.output_files import refuse_overwrite, write_output
    from llmbench.report.exporters import ExportOptions, format_for
    from llmbench.report.exporters import export as render

    if not output:
        raise UserError("-o/--output is empty; name a file, or '-' for stdout")
    fmt = format_for(output, fmt) if output != "-" else (fmt or "md")

    def check(merged):
        if output != "-":
            refuse_overwrite(output, _inputs(merged))

    merged, cmp = _build(runs, results_dir, ref, metric, margin, min_gain, resamples, seed, check)
    _warn_notes(cmp)
    text = render(cmp, merged, fmt, ExportOptions(samples_per_task=samples_per_task))
    if output == "-":
        write_stdout(text)
        return
    write_output(output, text)
    err().print(f"wrote {fmt} to {output}", highlight=False, markup=False)


@click.command()
@_comparison_options
@click.option("-o", "--out-dir", default="plots", show_default=True, metavar="DIR",
              help="Directory for <task>.png and <task>.svg.")
@click.option("--format", "formats", type=click.Choice(["png", "svg"]), multiple=True,
              help="Image formats (repeatable) [default: png and svg].")
@click.option("--per", type=click.Choice(["sample", "correct"]), default="sample", show_default=True,
              help="Cost axes: energy and TTFT per sample, or energy and generation time per correct answer "
                   "(tasks with exact match, F1 or JSON fields).")
def plot(runs, results_dir, ref, metric, margin, min_gain, resamples, seed, out_dir, formats, per):
    """Plot quality against parameters (the size curve, its CI band and knee), energy and latency; and, one point
    per row (model x variant x level), against weight bytes, J/token and tok/s (with % of roofline); each
    with the Pareto frontier."""
    from llmbench.cli.console import out

    if not out_dir:
        raise UserError("-o/--out-dir is empty; name a directory, e.g. plots/")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'llmbench[plots]'") from None
    from llmbench.report.plots import PLOT_FORMATS, write_plots

    merged, cmp = _build(runs, results_dir, ref, metric, margin, min_gain, resamples, seed)
    _warn_notes(cmp)
    for path in write_plots(cmp, out_dir, tuple(formats) or PLOT_FORMATS, inputs=_inputs(merged), per=per):
        out().print(str(path), highlight=False)
