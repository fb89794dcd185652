"""`llmbench gate` and `llmbench baseline save|list`: thin click layer over llmbench.gate."""

from __future__ import annotations

import click

from llmbench.errors import UserError

_STYLE = {"pass": "green", "fail": "bold red", "missing": "yellow", "skipped": "dim"}


@click.command()
@click.option("--baseline", "baseline_ref", required=True, metavar="PATH|NAME",
              help="Baseline run (directory or run.json) or the name of a saved baseline.")
@click.option("--candidate", "candidate_ref", required=True, metavar="PATH",
              help="Candidate run (directory or run.json).")
@click.option("--rule", "rules", multiple=True, metavar="RULE",
              help="'<metric path>:<allowed change>', e.g. 'quality.*:-2%' or 'latency.ttft_s.p50:+10%'. "
                   "Repeatable; replaces the defaults.")
@click.option("--rules", "rules_file", metavar="FILE",
              help="Rules file: one rule per line, or TOML with 'rules = [...]' / [tool.llmbench.gate].")
@click.option("--significance", type=float, default=None, metavar="ALPHA",
              help="A worsening beyond the margin fails only when its bootstrap p-value is below this "
                   "level (default 0.05, or [tool.llmbench.gate] significance).")
@click.option("--strict", is_flag=True, help="Compare point values only (no noise model).")
@click.option("--fail-on-missing", is_flag=True,
              help="Treat rows or metrics missing from one side as failures (default: reported only).")
@click.option("--markdown", "markdown_file", metavar="FILE", help="Also write a Markdown report (PR comment).")
@click.option("--junit", "junit_file", metavar="FILE", help="Also write JUnit XML: one test case per rule x row.")
@click.option("--baselines-dir", default="results/baselines", show_default=True, metavar="DIR",
              help="Where --baseline NAME is looked up.")
@click.pass_context
def gate(ctx, baseline_ref, candidate_ref, rules, rules_file, significance, strict, fail_on_missing,
         markdown_file, junit_file, baselines_dir):
    """Fail CI when quality drops or cost grows beyond the rules and the noise.

    Matches model x task rows of the two runs. A check fails only when the change is worse than the rule
    allows AND significant at --significance (paired bootstrap over shared samples for quality, bootstrap
    over per-sample values for latency); memory, energy and tokens/s are compared as point values.
    Exit codes: 0 pass, 1 regression, 2 bad input.
    """
    from llmbench import console
    from llmbench.gate import evaluate, resolve_baseline, resolve_rules, to_junit, to_markdown
    from llmbench.gate.outputs import write_text
    from llmbench.gate.rules import resolve_significance
    from llmbench.store import read_run

    parsed, source = resolve_rules(rules, rules_file)
    alpha = resolve_significance(significance)
    base = read_run(resolve_baseline(baseline_ref, baselines_dir))
    cand = read_run(candidate_ref)
    report = evaluate(base, cand, parsed, rules_source=source, significance=alpha, strict=strict,
                      fail_on_missing=fail_on_missing)
    for note in report.environment:
        console.warn(f"{note}; comparisons across machines or versions may not be meaningful")
    for note in report.notes:
        console.warn(note)
    _print_table(report)
    for path, render in ((markdown_file, to_markdown), (junit_file, to_junit)):
        if path:
            try:
                write_text(path, render(report))
            except OSError as exc:
                raise UserError(f"cannot write {path}: {exc}") from None
    if report.exit_code:
        ctx.exit(report.exit_code)


def _print_table(report) -> None:
    from rich.table import Table

    from llmbench import console
    from llmbench.gate.evaluate import describe, format_change, format_value
    from llmbench.gate.outputs import verdict_line

    table = Table(title=f"gate: {report.candidate_id} vs baseline {report.baseline_id}", title_justify="left")
    for name, justify in (("Model", "left"), ("Task", "left"), ("Metric", "left"), ("Baseline", "right"),
                          ("Candidate", "right"), ("Change", "right"), ("Allowed", "right"), ("p", "right"),
                          ("Verdict", "left")):
        table.add_column(name, justify=justify)
    for c in report.checks:
        allowed = "n/a" if c.limit is None else format_value(c.metric, c.limit)
        p = "n/a" if c.p_value is None else f"{c.p_value:.3g}"
        verdict = c.status if c.status == "pass" or not c.message else f"{c.status}: {c.message}"
        if c.status == "pass" and c.message.startswith("beyond"):
            verdict = "pass (within noise)"
        table.add_row(c.model, c.task, c.metric, format_value(c.metric, c.baseline),
                      format_value(c.metric, c.candidate), format_change(c), allowed, p,
                      f"[{_STYLE[c.status]}]{verdict}[/]")
    out = console.out()
    out.print(table)
    for c in report.failures:
        out.print(f"[bold red]FAIL[/] {describe(c)}", highlight=False, markup=True, soft_wrap=True)
    colour = "green" if report.passed else "bold red"
    out.print(f"[{colour}]{verdict_line(report)}[/] (rules: {report.rules_source})", highlight=False,
              soft_wrap=True)


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
    from llmbench import console
    from llmbench.gate import save_baseline
    from llmbench.store import read_run

    path = save_baseline(run, name, directory, force=force)
    record = read_run(path)
    console.out().print(f"saved baseline [bold]{name}[/] ({record.run_id}, {len(record.rows)} rows) -> {path}",
                        highlight=False, soft_wrap=True)


@baseline.command("list")
@click.option("--dir", "directory", default="results/baselines", show_default=True, metavar="DIR")
def list_(directory):
    """List saved baselines: name, run id, date, rows, machine."""
    from rich.table import Table

    from llmbench import console
    from llmbench.gate import list_baselines

    found = list_baselines(directory)
    if not found:
        console.err().print(f"no baselines under {directory}/; save one with `llmbench baseline save RUN --name NAME`")
        return
    table = Table(title=f"baselines in {directory}/", title_justify="left")
    for col in ("Name", "Run", "Created", "Rows", "Machine", "llmbench"):
        table.add_column(col)
    for name, record, problem in found:
        if record is None:
            table.add_row(name, f"[red]{problem}[/]", "", "", "", "")
            continue
        env = record.environment
        machine = " / ".join(str(v) for v in (env.get("hostname"), env.get("gpu_name") or env.get("cpu_model")) if v)
        table.add_row(name, record.run_id, record.created_at, str(len(record.rows)), machine,
                      str(env.get("llmbench") or ""))
    console.out().print(table)
