"""Committed baselines: copies of a run record under results/baselines/<name>/ that the gate finds by name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from llmbench.errors import UserError
from llmbench.records import RUN_FILE, SAMPLES_FILE, RunRecord
from llmbench.store import read_run, resolve_run_path

BASELINES_DIR = Path("results") / "baselines"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """A baseline name is a plain directory name: letters, digits, '.', '_' and '-'."""
    if not _NAME.match(name or ""):
        raise UserError(f"bad baseline name {name!r}: use letters, digits, '.', '_' and '-' (e.g. 'main')")
    return name


def save_baseline(run_ref: str | Path, name: str, directory: str | Path = BASELINES_DIR,
                  force: bool = False) -> Path:
    """Copy a run's run.json (and samples.jsonl, which the noise model needs) to ``directory/name``.

    Refuses to replace an existing baseline unless ``force``. Returns the new run.json path.
    """
    check_name(name)
    record = read_run(run_ref)  # validates before anything is copied
    src = record.path.parent
    dest = Path(directory) / name
    if dest.exists() and not force:
        raise UserError(f"baseline {name!r} already exists at {dest}; pass --force to replace it")
    tmp = Path(directory) / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(record.path, tmp / RUN_FILE)
    if (src / SAMPLES_FILE).is_file():
        shutil.copy2(src / SAMPLES_FILE, tmp / SAMPLES_FILE)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest / RUN_FILE


def list_baselines(directory: str | Path = BASELINES_DIR) -> list[tuple[str, RunRecord | None, str]]:
    """(name, record or None, problem) for every baseline directory, sorted by name."""
    d = Path(directory)
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
