"""Load run records and merge their rows into one model x task table, keeping each row's samples.

Rows are matched by (model name, task name). When two runs hold the same pair, the later run (by run id,
which sorts by time) wins, except that a failed row never replaces a finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from llmbench.errors import UserError
from llmbench.records import ResultRow, RunRecord
from llmbench.records.store import Progress, expand_run_refs, read_run, read_samples
from llmbench.stats.significance import environment_differences, index_samples

# settings that make two runs' latency or quality numbers incomparable when they differ
_SETTING_KEYS = ("setting", "batch_size", "batch_sizes", "max_new_tokens", "new_tokens", "chat_template", "seed")
_SWEEP_KEYS = ("batch_sizes", "new_tokens")  # written only by a sweep (or --new-tokens): absent means not set


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
    by_key: dict[tuple[str, str], tuple[MergedRow, RunRecord]] = {}
    notes: list[str] = []
    seen_runs: dict[str, RunRecord] = {}
    for record, samples in pairs:
        earlier = seen_runs.get(record.run_id)
        if earlier is not None:  # the same run twice, e.g. a run and its baseline copy
            where = _where(earlier, record)
            notes.append(f"run {record.run_id} is given twice{where}; using the rows of "
                         + (_run_dir(record) if where else "the later copy"))
        seen_runs[record.run_id] = record
        indexed = index_samples(samples)
        for row in record.rows:
            merged = MergedRow(row, record.run_id, record.environment, indexed.get(row.key, {}))
            old, old_record = by_key.get(row.key, (None, None))
            if old is not None:
                pair = f"{row.key[0]} × {row.key[1]}"
                if old_record is record:
                    if old.ok and not merged.ok:
                        notes.append(f"{pair} appears twice in run {record.run_id}; kept the finished row over "
                                     "the failed one")
                        continue
                    notes.append(f"{pair} appears twice in run {record.run_id}; using the later row")
                elif old.run_id == record.run_id:
                    if old.ok and not merged.ok:
                        continue  # covered by the run's note above
                elif old.ok and not merged.ok:
                    notes.append(f"{pair}: kept the finished row of {old.run_id} over the failed one of "
                                 f"{record.run_id}")
                    continue
                else:
                    notes.append(f"{pair} appears in {old.run_id} and {record.run_id}; using {record.run_id}")
            by_key[row.key] = (merged, record)
    rows = [m for m, _ in by_key.values()]
    used = {id(rec) for _, rec in by_key.values()}
    records = [rec for rec, _ in pairs]
    used_records = [rec for rec in records if id(rec) in used]
    notes = environment_differences(used_records) + _settings_differences(used_records) + \
        _row_differences(rows) + notes
    return MergedRuns(records, rows, notes)


def _run_dir(record: RunRecord) -> str:
    return str(record.path.parent) if record.path is not None else record.run_id


def _where(a: RunRecord, b: RunRecord) -> str:
    """' (results/x and results/baselines/main)' when the two copies have different paths, else ''."""
    if a.path is None or b.path is None or a.path == b.path:
        return ""
    return f" ({_run_dir(a)} and {_run_dir(b)})"


def load_runs(refs: Iterable[str], results_dir: Path | str = Path("results"),
              progress: Progress | None = None) -> MergedRuns:
    """Run directories, run.json paths or globs (the latest run when empty) -> merged rows with samples.

    A run without rows (e.g. interrupted before its first row finished) is skipped with a note; when no
    run has a row, a UserError says so. ``progress`` gets a line before each large file (store.read_run).
    """
    paths = expand_run_refs(list(refs), Path(results_dir))
    loaded, empty = [], []
    for path in paths:
        record = read_run(path, progress)
        if not record.rows:
            empty.append(path.parent)
            continue
        loaded.append((record, read_samples(record, progress)))
    if not loaded:
        if len(empty) == 1:
            raise UserError(f"no rows in {empty[0]}: no model × task finished in that run, nothing to compare")
        raise UserError(f"no rows in any of {', '.join(str(p) for p in empty)}: no model × task finished in "
                        "these runs, nothing to compare")
    merged = merge_records(loaded)
    merged.notes += [f"{p} has no rows; skipped" for p in empty]
    return merged


def _settings_differences(records: list[RunRecord]) -> list[str]:
    notes = []
    for key in _SETTING_KEYS:
        values = {repr(r.settings.get(key)) for r in records if key in r.settings or key in _SWEEP_KEYS}
        if len(values) > 1:
            notes.append(f"runs differ in settings.{key}: {', '.join(sorted(values))}")
    return notes


SERVED_DEVICE = "server"  # model.device of a served row (backend openai)


def _row_differences(rows: list[MergedRow]) -> list[str]:
    """Rows of the same task measured on different devices (e.g. one model on CPU, another on CUDA)."""
    notes = []
    tasks: dict[str, set] = {}
    for r in rows:
        if r.ok and r.row.model.get("device"):
            tasks.setdefault(r.task, set()).add(str(r.row.model["device"]))
    for task, devices in tasks.items():
        local = sorted(devices - {SERVED_DEVICE})
        if SERVED_DEVICE in devices and local:
            # expected, not a mistake: say what it means for the latency instead of alarming
            notes.append(f"rows of {task}: served rows ran on a server, the others on {', '.join(local)}: their "
                         "latency includes the network and the server's batching")
        elif len(devices) > 1:
            notes.append(f"rows of {task} ran on different devices: {', '.join(sorted(devices))}")
    return notes
