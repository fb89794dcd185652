"""Names, metrics, paths and error messages reach the console as written: rich never reads them as markup
(a closing tag such as `[/usr/lib]` would raise, a word in brackets such as `[bert, gpt2]` would vanish)."""

from __future__ import annotations

import io

from rich.console import Console

from llmbench.records import ResultRow, RunRecord

ERROR = "Model type should be one of [bert, gpt2]; see [/usr/lib/x]"


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=300, soft_wrap=True), buf


def _rows() -> list[ResultRow]:
    failed = ResultRow(model={"name": "[bold]m[/]", "parameters": 1000}, task={"name": "t[/x]"},
                       status="failed", error=ERROR)
    ok = ResultRow(model={"name": "[bold]m[/]", "parameters": 1000}, task={"name": "t[/x]"},
                   quality={"[i]acc[/i]": {"value": 0.5, "stderr": 0.1}}, latency={}, memory={},
                   energy={"available": False, "reason": "no [sensor]"})
    return [failed, ok]


def test_run_table_shows_record_text_as_written():
    from llmbench.cli.tables import run_table

    record = RunRecord(run_id="r", created_at="2025-01-01T00:00:00+00:00", command="x", environment={},
                       settings={}, rows=_rows())
    console, buf = _console()
    console.print(run_table(record))
    out = buf.getvalue()
    assert ERROR in out and "[bold]m[/] (1K)" in out and "t[/x]" in out and "[i]acc[/i] 0.5 ±0.1" in out


def test_progress_lines_show_names_and_errors_as_written():
    from llmbench.cli.progress import RichProgress

    console, buf = _console()
    progress = RichProgress(console)
    progress.model_started("[bold]m[/]", 1, 1)
    progress.row_done(_rows()[0])
    progress.note(f"[bold]m[/] / t: {ERROR}")
    out = buf.getvalue()
    assert "loading [1/1] [bold]m[/]" in out
    assert f"[bold]m[/] · t[/x]: failed ({ERROR})" in out
    assert f"[bold]m[/] / t: {ERROR}" in out


def test_warnings_show_their_message_as_written(monkeypatch):
    from llmbench.cli import console as console_mod

    console, buf = _console()
    monkeypatch.setattr(console_mod, "err", lambda: console)
    console_mod.warn(f"runs differ in torch: {ERROR}")
    assert f"warning: runs differ in torch: {ERROR}" in buf.getvalue()
