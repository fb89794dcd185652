"""Assertions shared by the bad-input tests of the record-reading commands."""

from __future__ import annotations

import json
from pathlib import Path


def one_line_error(code, err: str, fragment: str) -> None:
    """Exit code 2, one `error: ...` line containing ``fragment``, no traceback."""
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err


def edit_run(run: Path, change) -> None:
    """Apply ``change`` to the parsed run.json of ``run`` and write it back."""
    data = json.loads((run / "run.json").read_text())
    change(data)
    (run / "run.json").write_text(json.dumps(data))
