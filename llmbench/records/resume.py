"""`llmbench run --resume RUN_DIR`: what an interrupted run keeps and what it runs again.

Kept: rows that are ``ok`` and whose samples are all in samples.jsonl (``task.n`` distinct indices). Run
again, whole, in the resuming process: the ``missing`` rows, failed rows and rows whose samples are
incomplete; their old sample lines are dropped. Timings are never stitched across two processes nor
replayed. A resume is refused (one line, exit code 2) for a complete record, for a record written before
completeness was recorded, and when the versions, the machine or a task's examples (their digests in
samples.jsonl) differ, unless forced (then the session is labelled ``forced`` with what differed).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import UserError
from llmbench.records import ResultRow, RunRecord
from llmbench.records.completeness import row_sample_problem

# environment keys that must match for the re-run rows to be comparable with the kept ones
VERSION_KEYS = ("llmbench", "git_commit", "git_dirty", "python", "torch", "transformers", "accelerate", "lm_eval",
                "sacrebleu", "rouge_score")
MACHINE_KEYS = ("hostname", "cpu_model", "cpu_count", "gpu_name", "gpu_driver", "cuda", "device")


@dataclass
class Resume:
    """An interrupted run read back: the record, the rows kept (with their lines) and the keys run again."""

    run_dir: Path
    record: RunRecord
    kept: list[ResultRow]
    kept_samples: list[dict]
    rerun: set[tuple[str, str]]
    force: bool = False
    command: str = ""  # the resuming command line (the session's), not the run's
    differs: list[str] = field(default_factory=list)  # what differs from the first session (with force)
    peak: dict | None = None  # this session's bandwidth probe, where it could not keep the record's
    environment_differs: bool = False  # forced onto other versions or another machine

    def check_environment(self, environment: dict) -> None:
        """Refuse when the versions or the machine differ from the record's, unless forced; forced, the
        differences are added to ``differs`` (the session's label)."""
        old = self.record.environment
        changed = [f"{key} {old.get(key)!r} -> {environment.get(key)!r}" for key in (*VERSION_KEYS, *MACHINE_KEYS)
                   if key in old and old.get(key) != environment.get(key)]
        cwd = (self.record.sessions or [{}])[0].get("cwd")
        if cwd and cwd != os.getcwd():  # the command's relative paths (-m ./model, --tasks-dir) would move
            changed.append(f"working directory {cwd!r} -> {os.getcwd()!r}")
        if changed and not self.force:
            raise UserError(f"cannot resume {self.run_dir}: the environment differs from the run's "
                            f"({'; '.join(changed)}); resume it on the same machine with the same versions, "
                            "or add --force to run the missing rows anyway (they are labelled)")
        self.differs += changed
        self.environment_differs = bool(changed)

    def check_examples(self, producers) -> None:
        """Refuse when a task's examples are not those its kept rows ran (its file, data or prompt changed
        since the run began: the record would mix two tasks under one name), unless forced; forced, the
        difference is added to ``differs``."""
        kept: dict[str, dict[int, str]] = defaultdict(dict)
        for line in self.kept_samples:
            if isinstance(line.get("example"), str):
                kept[line["task"]][line["index"]] = line["example"]
        for producer in producers:
            task = getattr(producer, "task", None)
            if task is None or task.name not in kept:
                continue
            now = {ex.index: ex.digest for ex in producer.examples()}
            old = kept[task.name]
            differ = sorted(i for i, digest in old.items() if now.get(i) != digest)
            added = sorted(set(now) - set(old))  # the data grew: the new rows would run more examples
            if not differ and not added:
                continue
            if differ:
                change = (f"task {task.name}: {len(differ):,} of {len(old):,} examples differ from those its kept "
                          f"rows ran (first: index {differ[0]})")
            else:
                more = f"{len(added):,} more example" + ("s" if len(added) > 1 else "")
                change = f"task {task.name}: {more} than the {len(old):,} its kept rows ran (first: index {added[0]})"
            if not self.force:
                raise UserError(f"cannot resume {self.run_dir}: {change}; its file, data or prompt changed since "
                                "the run began; start a new run, or add --force to run the missing rows on the "
                                "new examples (they are labelled)")
            self.differs.append(change)

    def session_label(self) -> dict:
        """What the resuming session's entry in ``sessions`` says beyond who and when."""
        label = {"resumed": True, **({"forced": True, "differs": list(self.differs)} if self.differs else {})}
        if self.peak is not None:  # this session's own bandwidth probe (its rows' roofline peak)
            label["memory_bandwidth"] = self.peak
        return label


def prepare(run_dir: str | Path, force: bool = False) -> Resume:
    """Read ``run_dir`` for a resume; UserError (one line) when there is nothing to resume."""
    from llmbench.records.store import read_run, read_samples, resolve_run_path

    path = resolve_run_path(run_dir)
    record = read_run(path)
    run_dir = path.parent
    if record.complete is None:
        raise UserError(f"cannot resume {run_dir}: its record was written by an llmbench that did not record "
                        "whether a run finished; run it again")
    if record.complete:
        raise UserError(f"cannot resume {run_dir}: the run is complete (finished {record.finished_at}); "
                        "nothing to resume")
    if run_dir.name != record.run_id:
        raise UserError(f"cannot resume {run_dir}: the directory is not named after its run id {record.run_id} "
                        "(a copy?); resume the run's own directory")
    samples = read_samples(record)  # a last line cut off by kill -9 is dropped with a note
    lines: dict[tuple, list[dict]] = defaultdict(list)
    for line in samples:
        lines[(line["model"], line["task"])].append(line)
    kept, seen = [], set()
    for row in record.rows:
        if row.status == "ok" and row.key not in seen and row_sample_problem(row, lines.get(row.key, [])) is None:
            kept.append(row)
            seen.add(row.key)
    rerun = {row.key for row in record.rows if row.key not in seen}
    rerun |= {(m["model"], m["task"]) for m in record.missing or []}
    kept_samples = [line for line in samples if (line["model"], line["task"]) in seen]
    return Resume(run_dir, record, kept, kept_samples, rerun, force)
