"""Files written where the user says (``-o``, ``--markdown``, ``--dir``): modes, overwrites, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from llmbench.errors import UserError


def refuse_overwrite(output: str | Path, inputs: Iterable[Path]) -> None:
    """UserError when writing ``output`` would replace one of ``inputs`` (same resolved path or same file)."""
    out = Path(output)
    target = out.resolve()
    for src in inputs:
        same = target == Path(src).resolve()
        if not same and out.exists() and Path(src).exists():
            try:
                same = os.path.samefile(out, src)
            except OSError:
                same = False
        if same:
            what = f"over {src}" if str(output) == str(src) else f"{output}: it is {src}"
            raise UserError(f"refusing to write {what}, which this command reads; choose another output path")


def output_error(path: str | Path, exc: OSError) -> UserError:
    """'cannot write PATH: <reason>' for an OSError met while writing an output file."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        candidates = [*reversed(Path(path).parents), Path(path)]
        blocker = next((p for p in candidates if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            reason = f"{blocker} is not a directory"
    elif isinstance(exc, IsADirectoryError) and Path(path).is_dir():
        reason = "it is a directory"
    return UserError(f"cannot write {path}: {reason}")


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write a file the user named (``-o``, ``--markdown``...), creating its directory.

    Any OSError (a directory at that path, a parent that is a file, no permission) is a UserError
    ``cannot write PATH: <reason>``.
    """
    if str(path) == "":
        raise UserError("cannot write '': the output path is empty")
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise output_error(path, exc) from None
    return p
