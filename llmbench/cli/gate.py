"""`llmbench gate` and `llmbench baseline save|list`: thin click layer over llmbench.gate."""

from __future__ import annotations

import click

_STYLE = {"pass": "green", "fail": "bold red", "undecided": "bold yellow", "missing": "yellow",
          "not checked": "dim"}


@click.command()
@click.option("--baseline", "baseline_ref", required=True, metavar="PATH|NAME",
              help="Baseline run (directory or run.json) or the name of a saved baseline.")
@click.option("--candidate", "candidate_ref", required=True, metavar="PATH",
              help="Candidate run (directory or run.json).")
@click.option("--rule", "rules", multiple=True, metavar="RULE",
              help="'<metric path>:<allowed change>', e.g. 'quality.*:-2%' or 'latency.ttft_s.p50:+10%', or "
                   "'quality.<metric>:noninferior:98%' (proven to reach 98% of the baseline). Repeatable; "
                   "replaces the defaults.")
@click.option("--rules", "rules_file", metavar="FILE",
              help="Rules file: one rule per line, or TOML with 'rules = [...]' / [tool.llmbench.gate].")
@click.option("--significance", type=float, default=None, metavar="ALPHA",
              help="A worsening beyond the margin fails only when its p-value (a randomization test) is "
                   "below this level (default 0.05, or [tool.llmbench.gate] significance).")
@click.option("--strict", is_flag=True, help="Compare point values only (no noise model).")
@click.option("--undecided", "undecided", type=click.Choice(["fail", "pass"]), default=None,
              help="A check past its margin that the test cannot decide: 'fail' exits 3 (default, or "
                   "[tool.llmbench.gate] undecided), 'pass' reports it and exits 0.")
@click.option("--fail-on-missing", is_flag=True,
              help="Treat rows or metrics missing from one side as failures (default: reported only).")
@click.option("--markdown", "markdown_file", metavar="FILE", help="Also write a Markdown report (PR comment).")
@click.option("--junit", "junit_file", metavar="FILE", help="Also write JUnit XML: one test case per rule x row.")
@click.option("--baselines-dir", default="results/baselines", show_default=True, metavar="DIR",
              help="Where --baseline NAME is looked up.")
def gate(baseline_ref, candidate_ref, rules, rules_file, significance, strict, undecided, fail_on_missing,
         markdown_file, junit_file, baselines_dir):
    """Fail CI when quality drops or cost grows beyond the rules and the noise.

    Matches model x task rows of the two runs. A check fails when the change is worse than the rule allows
    AND significant at --significance (paired randomization test over shared samples for quality,
    permutation test over per-sample values for latency); memory, energy and tokens/s are compared as point
    values. A change past the margin that the test cannot tell from noise is undecided, with the examples
    that would decide; a check with nothing to compare is not checked.
    Exit codes: 0 pass, 1 regression, 2 bad input, 3 undecided (no regression proven, none ruled out).
    """
    from pathlib import Path

    from llmbench.cli import console
    from llmbench.errors import UserError
    from llmbench.gate import evaluate, resolve_baseline, resolve_rules, to_junit, to_markdown
    from llmbench.gate.rules import resolve_significance, resolve_undecided
    from llmbench.records.completeness import record_warnings
    from llmbench.records.output_files import refuse_overwrite, write_output
    from llmbench.records.store import read_run, read_samples, run_files

    parsed, source = resolve_rules(rules, rules_file)
    alpha = resolve_significance(significance, rules_file=rules_file)
    policy = resolve_undecided(undecided, rules_file=rules_file)
    if markdown_file is not None and junit_file is not None and \
            Path(markdown_file).resolve() == Path(junit_file).resolve():
        raise UserError(f"--markdown and --junit name the same file ({markdown_file}); give each its own")
    base = read_run(resolve_baseline(baseline_ref, baselines_dir))
    cand = read_run(candidate_ref)
    for path in (markdown_file, junit_file):
        if path is not None:
            refuse_overwrite(path, run_files(base) + run_files(cand))
    samples = {id(r): read_samples(r) for r in (base, cand)}
    warnings = [w for r in (base, cand) for w in record_warnings(r, samples[id(r)])]  # incomplete, short rows
    report = evaluate(base, cand, parsed, rules_source=source, significance=alpha, strict=strict,
                      fail_on_missing=fail_on_missing, undecided=policy, baseline_samples=samples[id(base)],
                      candidate_samples=samples[id(cand)])
    # the files first: one that cannot be written is bad input, one line on a stderr not yet written to
    for path, render in ((markdown_file, to_markdown), (junit_file, to_junit)):
        if path is not None:
            write_output(path, render(report))  # UserError 'cannot write PATH: <reason>'
    for note in report.environment:
        console.warn(f"{note}; the numbers may not be comparable")
    for note in report.notes + warnings:
        console.warn(note)
    _print_table(report)
    if report.exit_code:
        # SystemExit, not ctx.exit: main() runs click with standalone_mode=False, which would turn
        # ctx.exit(1) into a return value and exit 0
        raise SystemExit(report.exit_code)


def _allowed(check) -> str:
    """The rule's margin, signed in the worsening direction: '-2%', '+15%', '-0.01'; '≥98%' (noninferior)."""
    if check.higher_is_better is None:
        return "n/a"
    if ":noninferior:" in check.rule:
        from llmbench.gate.display import format_limit

        return format_limit(check)
    return ("-" if check.higher_is_better else "+") + check.rule.rpartition(":")[2].lstrip("+-")


def _change(check) -> str:
    from llmbench.gate.display import format_change

    if check.ratio is not None:
        return format_change(check)
    rel = check.relative
    return f"{rel * 100:+.1f}%" if rel is not None else format_change(check)


def _print_table(report) -> None:
    """One small table per model x task row (fits 80 columns), then a line per non-passing check."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from llmbench.cli import console
    from llmbench.gate.display import describe, format_p, format_value, verdict_line

    out = console.out()
    out.print(f"[bold]gate[/]: candidate {escape(report.candidate_id)} vs baseline {escape(report.baseline_id)}",
              highlight=False, soft_wrap=True)
    rows: dict[tuple[str, str], list] = {}
    for c in report.checks:
        rows.setdefault((c.model, c.task), []).append(c)
    for (model, task), checks in rows.items():
        table = Table(title=f"{escape(report.model_label(model))} / {escape(task)}", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
        table.add_column("Metric", no_wrap=True)
        for name in ("Baseline", "Candidate", "Change", "Allowed", "p"):
            table.add_column(name, justify="right", no_wrap=True)
        table.add_column("Verdict", no_wrap=True)
        for c in checks:
            table.add_row(escape(c.metric), format_value(c.metric, c.baseline), format_value(c.metric, c.candidate),
                          _change(c), escape(_allowed(c)), format_p(c.p_value), f"[{_STYLE[c.status]}]{c.status}[/]")
        out.print(table)
    labels = {"fail": "[bold red]FAIL[/]", "undecided": "[bold yellow]UNDECIDED[/]", "missing": "[yellow]MISSING[/]",
              "not checked": "[dim]NOT CHECKED[/]"}
    for c in report.checks:
        if c.status in labels:
            out.print(f"{labels[c.status]} {escape(describe(c))}", highlight=False, soft_wrap=True)
    colour = "bold red" if report.failures else "bold yellow" if report.exit_code else "green"
    out.print(f"[{colour}]{escape(verdict_line(report))}[/] (rules: {escape(report.rules_source)}; "
              f"significance {report.significance:g}{'; --strict' if report.strict else ''}; "
              f"exit {report.exit_code})", highlight=False, soft_wrap=True)


@click.group()
def baseline():
    """Save and list committed baselines for `llmbench gate --baseline NAME`."""


@baseline.command("save")
@click.argument("run", metavar="RUN")
@click.option("--name", required=True, help="Baseline name, e.g. 'main'.")
@click.option("--force", is_flag=True, help="Replace an existing baseline of that name.")
@click.option("--dir", "directory", default="results/baselines", show_default=True, metavar="DIR")
def save(run, name, force, directory):
    """Copy RUN (a run directory or run.json) to DIR/NAME, to commit as the gate's baseline."""
    from rich.markup import escape

    from llmbench.cli import console
    from llmbench.gate import save_baseline
    from llmbench.records.store import read_run

    path = save_baseline(run, name, directory, force=force)
    record = read_run(path)
    console.out().print(f"saved baseline [bold]{escape(name)}[/] ({escape(record.run_id)}, {len(record.rows)} "
                        f"rows) -> {escape(str(path))}", highlight=False, soft_wrap=True)


@baseline.command("list")
@click.option("--dir", "directory", default="results/baselines", show_default=True, metavar="DIR")
def list_(directory):
    """List saved baselines: name, run id, date, rows, machine."""
    from rich.table import Table
    from rich.text import Text

    from llmbench.cli import console
    from llmbench.gate import list_baselines

    found = list_baselines(directory)
    if not found:
        console.err().print(f"no baselines under {directory}/; save one with `llmbench baseline save RUN --name NAME`",
                            highlight=False, soft_wrap=True, markup=False)
        return
    table = Table(title=Text(f"baselines in {directory}/"), title_justify="left")
    for col in ("Name", "Run", "Created", "Rows", "Machine", "llmbench"):
        table.add_column(col)
    for name, record, problem in found:  # names, problems and environments: Text, never read as rich markup
        if record is None:
            table.add_row(Text(name), Text(str(problem), style="red"), "", "", "", "")
            continue
        env = record.environment
        machine = " / ".join(str(v) for v in (env.get("hostname"), env.get("gpu_name") or env.get("cpu_model")) if v)
        table.add_row(Text(name), Text(record.run_id), Text(str(record.created_at)), str(len(record.rows)),
                      Text(machine), Text(str(env.get("llmbench") or "")))
    console.out().print(table)
