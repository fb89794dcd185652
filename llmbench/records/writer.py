"""A run's record written as the run goes, so that what is on disk is always true.

- samples.jsonl is append-only: each row's lines are appended, flushed and fsync'd, and only then is run.json
  rewritten (atomically) with the row. A row is never on disk before its samples; a row whose samples could
  not be written is not recorded at all (it stays ``missing``).
- run.json says whether the run finished: ``complete`` is false from the first write and becomes true, with
  ``finished_at``, in the last one; ``missing`` lists the planned model x task rows not written yet.
- The plan is a list of units, one per model x row producer, each with the row keys it would give (what
  ``producer.failed_rows`` names). A unit is done when its producer finished; the rows an unfinished unit
  has not written are missing.
- ``sessions`` has one entry per process that wrote the record (a ``--resume`` adds one) and every row the
  ``session`` that measured it. Rows kept from an earlier session take their place in plan order when the
  run reaches their unit, so a resumed record has a clean run's order.

Any OSError while writing becomes a RecordWriteError (one line, exit code 4) that says where the rows
finished before it are.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Callable, ContextManager

from llmbench.errors import RecordWriteError
from llmbench.records import RUN_FILE, SAMPLES_FILE, ResultRow, RunRecord, now_iso, store

Key = tuple[str, str]


class RecordWriter:
    """Writes ``record`` under ``out_dir`` row by row; ``plan`` is the units in run order, ``kept`` the rows
    (and ``kept_samples`` their lines) an earlier session finished, ``skip`` further planned keys not to
    measure again; ``hold`` delays signals during a write."""

    def __init__(self, record: RunRecord, out_dir: Path, plan: list[list[Key]], kept: list[ResultRow] = (),
                 kept_samples: list[dict] = (), skip: set[Key] = frozenset(),
                 hold: Callable[[], ContextManager] = contextlib.nullcontext):
        self.record = record
        self.run_dir = Path(out_dir) / record.run_id
        self.plan = plan
        self.hold = hold
        self.samples: list[dict] = list(kept_samples)
        self.kept_keys = {row.key for row in kept}
        self.skip = set(skip) | self.kept_keys  # not measured again: kept, or a planned key a done unit never gave
        self._place: dict[Key, tuple[int, int]] = {}  # planned key -> (unit, position in the unit)
        for unit, keys in enumerate(plan):
            for pos, key in enumerate(keys):
                self._place.setdefault(key, (unit, pos))
        self._pending: list[tuple[int, int, ResultRow]] = []  # kept rows not placed yet, in their old order
        unit, pos = 0, -1
        for row in kept:  # a row the plan does not name (an lm-eval group's task) follows its predecessor
            unit, pos = self._place.get(row.key, (unit, pos))
            self._pending.append((unit, pos, row))
        self._placed: list[ResultRow] = []
        self._done: set[int] = set()
        self._rows_on_disk: int | None = None
        self.session = len(record.sessions or []) + 1

    # -- a session --------------------------------------------------------------------------------------

    def start(self, command: str, **extra) -> None:
        """Begin this process's session: the record says incomplete, samples.jsonl holds the kept rows'
        lines only (an unfinished row's are dropped: it is run again whole)."""
        rec = self.record
        rec.complete, rec.finished_at = False, None
        rec.settings.pop("interrupted", None)  # the sessions say how each one ended
        entry = {"session": self.session, "started_at": now_iso(), "pid": os.getpid(), "hostname": platform.node(),
                 "command": command, "cwd": os.getcwd(), **extra}
        rec.sessions = [*(rec.sessions or []), entry]
        self._write(lambda: store.write_samples(self.run_dir, self.samples), self.run_dir / SAMPLES_FILE)
        self._write_run()

    def wanted(self, key: Key) -> bool:
        """Whether this session measures ``key`` (false for a row kept from an earlier session)."""
        return key not in self.skip

    def unit_wanted(self, unit: int) -> bool:
        return any(self.wanted(k) for k in self.plan[unit])

    def add(self, unit: int, row: ResultRow, lines: list[dict]) -> None:
        """Append the row's samples (fsync'd), then rewrite run.json with the row."""
        place = self._place.get(row.key)
        self._place_kept(unit, place[1] if place and place[0] == unit else None)
        row.session = self.session
        with self.hold():
            if lines:
                self._write(lambda: store.append_samples(self.run_dir, lines), self.run_dir / SAMPLES_FILE)
            self.samples.extend(lines)
            self._placed.append(row)
            self._write_run()

    def unit_done(self, unit: int) -> None:
        """The unit's producer finished (or was not needed): its kept rows take their place, none is missing."""
        self._place_kept(unit, None)
        self._done.add(unit)

    def finish(self) -> None:
        """The last write: every unit done, ``complete`` true with ``finished_at``."""
        self.record.complete, self.record.finished_at = True, now_iso()
        self._end("complete")

    def stop(self, end: str) -> None:
        """The last write of a run that stops early (``interrupted (SIGTERM)``, ``write failed``)."""
        self._end(end)

    # -- what is on disk --------------------------------------------------------------------------------

    def rows(self) -> list[ResultRow]:
        return self._placed + [row for _, _, row in self._pending]

    def missing(self) -> list[dict]:
        written = {row.key for row in self.rows()}
        return [{"model": k[0], "task": k[1]} for unit, keys in enumerate(self.plan) if unit not in self._done
                for k in keys if k not in written]

    def _place_kept(self, unit: int, before: int | None) -> None:
        """Move the kept rows of ``unit`` (those before position ``before``; all when None) to the placed
        rows, and those of earlier units."""
        still = []
        for u, pos, row in self._pending:
            if u < unit or (u == unit and (before is None or pos < before)):
                self._placed.append(row)
            else:
                still.append((u, pos, row))
        self._pending = still

    def _end(self, end: str) -> None:
        sessions = self.record.sessions or []
        if sessions:
            sessions[-1].update(ended_at=now_iso(), end=end)
        self._write_run()

    def _write_run(self) -> None:
        rec = self.record
        rec.rows = self.rows()
        rec.missing = self.missing()
        self._write(lambda: store.write_run(rec, self.run_dir.parent), self.run_dir / RUN_FILE)
        self._rows_on_disk = len(rec.rows)

    def _write(self, write: Callable[[], object], path: Path) -> None:
        try:
            write()
        except OSError as exc:
            raise RecordWriteError(self._failure(exc, path)) from None

    def _failure(self, exc: OSError, path: Path) -> str:
        reason = exc.strerror or str(exc)
        run_json = self.run_dir / RUN_FILE
        if self._rows_on_disk is None:
            where = "nothing was recorded" if not run_json.exists() else f"{run_json} is as it was"
        else:
            n = self._rows_on_disk
            where = f"the {n} row{'' if n == 1 else 's'} finished before {'are' if n != 1 else 'is'} in {run_json}"
        return f"cannot write {path}: {reason}; {where}"  # the file meant, not a temporary one beside it
