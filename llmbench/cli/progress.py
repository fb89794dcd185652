"""rich progress on stderr for the runner's Progress callbacks."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichProgress:
    """Model, task, samples done and ETA; notes (failures) printed above the bar."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True,
        )
        self._task = None
        self._model = ""

    def __enter__(self) -> "RichProgress":
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def model_started(self, name: str, index: int, total: int) -> None:
        self._model = f"[{index}/{total}] {escape(name)}"  # names, tasks and errors: shown as written
        self.console.print(f"loading {self._model}", highlight=False)

    def task_started(self, model: str, task: str, n: int) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(f"{self._model} · {escape(task)}", total=n)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def row_done(self, row) -> None:
        status = "[green]ok[/]" if row.status == "ok" else f"[red]failed[/] ({escape(str(row.error))})"
        where = escape(f"{row.model.get('name')} · {row.task.get('name')}")
        self.console.print(f"  {where}: {status}", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]{escape(message)}[/]", highlight=False)
