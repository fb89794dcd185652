"""`llmbench gate` and `llmbench baseline save|list`: thin click layer over llmbench.gate."""

from __future__ import annotations

import click


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
    base = read_run(resolve_baseline(baseline_ref, baselines_dir), console.progress)
    cand = read_run(candidate_ref, console.progress)
    for path in (markdown_file, junit_file):
        if path is not None:
            refuse_overwrite(path, run_files(base) + run_files(cand))
    samples = {id(r): read_samples(r, console.progress) for r in (base, cand)}
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
    from llmbench.cli.gate_table import print_report

    print_report(report)
    if report.exit_code:
        # SystemExit, not ctx.exit: main() runs click with standalone_mode=False, which would turn
        # ctx.exit(1) into a return value and exit 0
        raise SystemExit(report.exit_code)


@click.group()
def baseline():
    """Save and list committed baselines for `llmbench gate --baseline NAME`."""


@baseline.command("save")
@click.argument("run", metavar="RUN")
@click.option("--name", required=True, help="Baseline name, e.g. 'main'.")
@click.option("--force", is_flag=True, help="Replace an existing baseline of that name.")
@click.option("--incomplete", is_flag=True, help="Save an unfinished run (complete: false) as it is.")
@click.option("--dir", "directory", default="results/baselines", show_default=True, metavar="DIR")
def save(run, name, force, incomplete, directory):
    """Copy RUN (a run directory or run.json) to DIR/NAME, to commit as the gate's baseline."""
    from rich.markup import escape

    from llmbench.cli import console
    from llmbench.gate import save_baseline
    from llmbench.records.store import read_run

    path = save_baseline(run, name, directory, force=force, incomplete=incomplete)
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
