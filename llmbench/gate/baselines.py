"""Committed baselines: copies of a run record under results/baselines/<name>/ that the gate finds by name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from llmbench.errors import UserError
from llmbench.records import RUN_FILE, SAMPLES_FILE, RunRecord
from llmbench.records.output_files import output_error
from llmbench.records.store import read_run, read_samples, resolve_run_path

BASELINES_DIR = Path("results") / "baselines"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """A baseline name is a plain directory name: letters, digits, '.', '_' and '-'."""
    if not _NAME.match(name or ""):
        raise UserError(f"bad baseline name {name!r}: use letters, digits, '.', '_' and '-' (e.g. 'main')")
    return name


def save_baseline(run_ref: str | Path, name: str, directory: str | Path = BASELINES_DIR,
                  force: bool = False, incomplete: bool = False) -> Path:
    """Copy a run's run.json and samples.jsonl (which the paired tests need) to ``directory/name``.

    Refuses (UserError) a record without rows, a run without a readable samples.jsonl, an unfinished run
    (``complete: false``) unless ``incomplete``, and replacing an existing baseline unless ``force``: two
    flags, so that refreshing a baseline can never let an unfinished run through unasked. The copies get the normal
    mode of a new file (0o666 less the umask), whatever the source's. Returns the new run.json path.
    """
    check_name(name)
    if not str(directory):
        raise UserError("--dir is empty; name the directory baselines are saved in, e.g. results/baselines")
    record = read_run(run_ref)  # validates before anything is copied
    src = record.path.parent
    if not record.rows:
        raise UserError(f"no rows in {src}: no model × task finished in that run, nothing to gate against")
    if record.incomplete and not incomplete:
        missing = len(record.missing or [])
        raise UserError(f"{src} is an unfinished run ({missing} model × task rows missing): finish it with "
                        f"`llmbench run --resume {src}` before saving it as a baseline "
                        "(--incomplete: save it as it is)")
    if not (src / SAMPLES_FILE).is_file():
        raise UserError(f"{src} has no {SAMPLES_FILE}; a baseline needs it for the gate's paired tests "
                        f"(copy it next to {RUN_FILE}, or save a run that `llmbench run` wrote)")
    read_samples(record)  # a malformed samples.jsonl is refused now, not when the gate reads it
    dest = Path(directory) / name
    if dest.exists() and not force:
        raise UserError(f"baseline {name!r} already exists at {dest}; pass --force to replace it")
    tmp = Path(directory) / f".{name}.tmp"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # copyfile, not copy2: the copy is a new file with the usual mode, not the source's (maybe 0600)
        shutil.copyfile(record.path, tmp / RUN_FILE)
        shutil.copyfile(src / SAMPLES_FILE, tmp / SAMPLES_FILE)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        tmp.rename(dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(dest, exc) from None
    return dest / RUN_FILE


def list_baselines(directory: str | Path = BASELINES_DIR) -> list[tuple[str, RunRecord | None, str]]:
    """(name, record or None, problem) for every baseline directory, sorted by name."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise UserError(f"{directory} is not a directory of baselines")
    if not d.is_dir():
        return []
    out = []
    for sub in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            out.append((sub.name, read_run(sub), ""))
        except UserError as exc:
            out.append((sub.name, None, str(exc)))
    return out


def resolve_baseline(ref: str, directory: str | Path = BASELINES_DIR) -> Path:
    """A run directory, a run.json or the name of a saved baseline -> the run.json path."""
    p = Path(ref)
    if p.exists():
        return resolve_run_path(p)
    named = Path(directory) / ref / RUN_FILE
    if _NAME.match(ref) and named.is_file():
        return named
    known = [name for name, _, _ in list_baselines(directory)]
    hint = f"; saved baselines: {', '.join(known)}" if known else f"; no baselines saved under {directory}/"
    raise UserError(f"no run record or baseline named {ref!r}{hint}")
