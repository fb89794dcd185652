"""Write and read run records atomically: <out>/<run_id>/run.json and samples.jsonl."""

from __future__ import annotations

import gc
import glob as _glob
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from llmbench.errors import UserError, read_user_text
from llmbench.records import RUN_FILE, SAMPLES_FILE, RunRecord
from llmbench.records.checks import check_record, check_version, decode_json, defang_controls, sample_problem


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique name opened exclusively, like mkstemp, but with the usual mode of a new file (0666 less the
    # umask; mkstemp's 0600 would make records private to their writer)
    import secrets  # here: reading records needs none of it

    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """The rename (or a new file) made durable too; best effort: not every system can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_run(record: RunRecord, out_dir: Path) -> Path:
    """Write run.json atomically (rewritten after every row, so an interrupted run keeps what finished)."""
    run_dir = Path(out_dir) / record.run_id
    path = run_dir / RUN_FILE
    _atomic_write(path, json.dumps(record.to_dict(), indent=2, ensure_ascii=False, default=_json_default) + "\n")
    record.path = path
    return path


def write_samples(run_dir: Path, samples: Iterable[dict]) -> Path:
    """Write samples.jsonl atomically (the whole file, so readers never see a half-written line)."""
    path = Path(run_dir) / SAMPLES_FILE
    lines = [json.dumps(s, ensure_ascii=False, default=_json_default) for s in samples]
    _atomic_write(path, "\n".join(lines) + ("\n" if lines else ""))
    return path


def append_samples(run_dir: Path, samples: Iterable[dict]) -> Path:
    """Append one row's lines to samples.jsonl, flushed and fsync'd before returning: the runner writes the
    row into run.json only after this, so no row is on disk before its samples. On an OSError (disk full)
    the file is cut back to its length before the call, so no half-written row is left behind."""
    path = Path(run_dir) / SAMPLES_FILE
    data = "".join(json.dumps(s, ensure_ascii=False, default=_json_default) + "\n" for s in samples).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # unbuffered: nothing left to flush later
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            try:  # truncating frees space, so it works on a full disk too
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)
    return path


def _json_default(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def resolve_run_path(ref: str | Path) -> Path:
    """A run directory or a run.json path -> the run.json path. Raises UserError when absent."""
    p = Path(ref)
    if p.is_dir():
        p = p / RUN_FILE
    if not p.is_file():
        raise UserError(f"no run record at {ref} (expected a run directory or its {RUN_FILE})")
    return p


#: a run.json or samples.jsonl larger than this is read with a progress line (docs/results-schema.md)
LARGE_RECORD_BYTES = 50 * 2**20
Progress = Callable[[str], None]


@contextmanager
def gc_paused():
    """Run the block without the cyclic garbage collector: decoding a large record creates millions of
    objects, and every collection would walk all of them again (records have no reference cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _announce(path: Path, what: str, progress: Progress | None) -> None:
    if progress is None:
        return
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it will say why
    if size > LARGE_RECORD_BYTES:
        progress(f"reading {what} {path} ({size / 2**20:,.0f} MiB)...")


def read_run(ref: str | Path, progress: Progress | None = None) -> RunRecord:
    """Read and validate one record; one clear UserError (naming the file and the row) for a missing,
    unreadable, malformed or too-new file, so that no later command trips over a bad value.

    ``progress`` gets one line before a file over LARGE_RECORD_BYTES is read."""
    path = resolve_run_path(ref)
    _announce(path, "run record", progress)
    text = read_user_text(path, "run record")
    with gc_paused():
        try:
            data = decode_json(defang_controls(text))
        except ValueError as exc:
            raise UserError(f"cannot read run record {path}: {exc}") from None
        del text
        if not isinstance(data, dict) or "run_id" not in data or "rows" not in data:
            raise UserError(f"{path} is not an llmbench run record (no run_id/rows)")
        check_version(data, path)
        check_record(data, path)
        data = dict(data, created_at=data.get("created_at") or "", command=data.get("command") or "")
        try:
            return RunRecord.from_dict(data, path=path)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise UserError(f"{path} is not a valid run record: {exc}") from None


def read_samples(record_or_dir: RunRecord | str | Path, progress: Progress | None = None) -> list[dict]:
    """Per-sample lines of a run ([] when the run has no samples.jsonl, e.g. lm-eval-only rows).

    A line that is not JSON, not an object, lacks its row's ``model``/``task`` names or an integer
    ``index``, or repeats the index of an earlier line of the same row, is a UserError naming the file and
    the line, as is a file that is not UTF-8 text. ``progress`` as for ``read_run``.
    """
    if isinstance(record_or_dir, RunRecord):
        run_dir = record_or_dir.path.parent if record_or_dir.path else None
    else:
        p = Path(record_or_dir)
        run_dir = p if p.is_dir() else p.parent
    if run_dir is None or not (run_dir / SAMPLES_FILE).exists():
        return []
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        raise UserError(f"{path} is not a file of samples")
    _announce(path, "samples", progress)
    out = []
    first_line: dict[tuple, int] = {}  # (model, task, index) -> the line that had it first
    try:
        with open(path, encoding="utf-8") as fh, gc_paused():
            for n, raw in enumerate(fh, 1):
                line = raw.strip()
                if not line:
                    continue
                try:
                    sample = decode_json(line)
                except ValueError as exc:
                    if not raw.endswith("\n") and isinstance(record_or_dir, RunRecord) and record_or_dir.incomplete:
                        # the last line of a run killed while appending it: its row never reached run.json
                        record_or_dir.read_notes.append(f"{path}:{n}: the last line is cut off (the run was "
                                                        "killed while writing it); ignored")
                        break
                    raise UserError(f"{path}:{n}: {exc}") from None
                problem = sample_problem(sample)
                if problem:
                    raise UserError(f"{path}:{n}: {problem}")
                key = (sample["model"], sample["task"], sample["index"])
                if key in first_line:
                    raise UserError(f"{path}:{n}: sample index {key[2]} of {key[0]} / {key[1]} is already on line "
                                    f"{first_line[key]}; each example of a row has one line")
                first_line[key] = n
                out.append(sample)
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return out


def run_files(record: RunRecord) -> list[Path]:
    """The files a command reading ``record`` uses: its run.json and (present or not) samples.jsonl."""
    if record.path is None:
        return []
    return [record.path, record.path.parent / SAMPLES_FILE]


def expand_run_refs(refs: Iterable[str], results_dir: Path = Path("results")) -> list[Path]:
    """Run dirs, run.json paths or globs -> run.json paths, in order, without duplicates.

    With no refs, the latest run under ``results_dir`` (by run id, which sorts by time).
    """
    refs = list(refs)
    paths: list[Path] = []
    seen: set[Path] = set()
    if not refs:
        latest = latest_run(results_dir)
        if latest is None:
            raise UserError(f"no runs under {results_dir}/; run `llmbench run` first or name a run")
        return [latest]
    for ref in refs:
        matches = sorted(_glob.glob(ref)) if any(c in ref for c in "*?[") else [ref]
        if not matches:
            raise UserError(f"no run matches {ref!r}")
        for m in matches:
            p = resolve_run_path(m)
            if p.resolve() not in seen:  # the same run named twice (dir and run.json, ./x and /abs/x)
                seen.add(p.resolve())
                paths.append(p)
    return paths


def latest_run(results_dir: Path = Path("results")) -> Path | None:
    """The run.json of the most recent run under results_dir, or None."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return None
    runs = sorted(p for p in results_dir.glob(f"*/{RUN_FILE}"))
    return runs[-1] if runs else None
