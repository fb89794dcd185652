"""Load run records and merge their rows into one model x task table, keeping each row's samples.

Rows are matched by (model name, task name). When two runs hold the same pair, the later run (by run id,
which sorts by time) wins, except that a failed row never replaces a finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from llmbench.records import ResultRow, RunRecord
from llmbench.significance import environment_differences, index_samples
from llmbench.store import expand_run_refs, read_run, read_samples

# settings that make two runs' latency or quality numbers incomparable when they differ
_SETTING_KEYS = ("setting", "batch_size", "max_new_tokens", "chat_template", "seed")


@dataclass
class MergedRow:
    """One model x task row with the run it came from and its per-sample lines (index -> line)."""

    row: ResultRow
    run_id: str
    environment: dict
    samples: dict[int, dict] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.row.model.get("name") or self.row.model.get("spec") or "?"

    @property
    def task(self) -> str:
        return self.row.task.get("name") or "?"

    @property
    def parameters(self) -> int | None:
        p = self.row.model.get("parameters")
        return int(p) if isinstance(p, (int, float)) else None

    @property
    def ok(self) -> bool:
        return self.row.status != "failed"


@dataclass
class MergedRuns:
    """Rows of several runs merged by (model, task), plus warnings about what makes them less comparable."""

    records: list[RunRecord]
    rows: list[MergedRow]
    notes: list[str] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.records]

    def tasks(self) -> list[str]:
        """Task names in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.setdefault(r.task, None)
        return list(seen)

    def rows_for(self, task: str) -> list[MergedRow]:
        """The rows of one task."""
        return [r for r in self.rows if r.task == task]


def merge_records(loaded: Iterable[tuple[RunRecord, list[dict]]]) -> MergedRuns:
    """Merge (record, samples.jsonl lines) pairs into one table; see the module docstring for the rule."""
    pairs = sorted(loaded, key=lambda p: (p[0].run_id, p[0].created_at))
    by_key: dict[tuple[str, str], MergedRow] = {}
    notes: list[str] = []
    for record, samples in pairs:
        indexed = index_samples(samples)
        for row in record.rows:
            merged = MergedRow(row, record.run_id, record.environment, indexed.get(row.key, {}))
            old = by_key.get(row.key)
            if old is not None:
                if old.ok and not merged.ok:
                    notes.append(f"{row.key[0]} × {row.key[1]}: kept the finished row of {old.run_id} "
                                 f"over the failed one of {record.run_id}")
                    continue
                notes.append(f"{row.key[0]} × {row.key[1]} appears in {old.run_id} and {record.run_id}; "
                             f"using {record.run_id}")
            by_key[row.key] = merged
    rows = list(by_key.values())
    used = {r.run_id for r in rows}
    records = [rec for rec, _ in pairs]
    used_records = [rec for rec in records if rec.run_id in used]
    notes = environment_differences(used_records) + _settings_differences(used_records) + \
        _row_differences(rows) + notes
    return MergedRuns(records, rows, notes)


def load_runs(refs: Iterable[str], results_dir: Path | str = Path("results")) -> MergedRuns:
    """Run directories, run.json paths or globs (the latest run when empty) -> merged rows with samples."""
    paths = expand_run_refs(list(refs), Path(results_dir))
    loaded = []
    for path in paths:
        record = read_run(path)
        loaded.append((record, read_samples(record)))
    return merge_records(loaded)


def _settings_differences(records: list[RunRecord]) -> list[str]:
    notes = []
    for key in _SETTING_KEYS:
        values = {repr(r.settings.get(key)) for r in records if key in r.settings}
        if len(values) > 1:
            notes.append(f"runs differ in settings.{key}: {', '.join(sorted(values))}")
    return notes


def _row_differences(rows: list[MergedRow]) -> list[str]:
    """Rows of the same task measured on different devices (e.g. one model on CPU, another on CUDA)."""
    notes = []
    tasks: dict[str, set] = {}
    for r in rows:
        if r.ok and r.row.model.get("device"):
            tasks.setdefault(r.task, set()).add(str(r.row.model["device"]))
    for task, devices in tasks.items():
        if len(devices) > 1:
            notes.append(f"rows of {task} ran on different devices: {', '.join(sorted(devices))}")
    return notes
