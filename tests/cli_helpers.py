"""Helpers shared by the integration tests that drive the CLI in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(args) -> int:
    """Run `llmbench ARGS` in-process; return its exit code (0 when it returns normally)."""
    from llmbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
        raise SystemExit(0)
    return exc.value.code


def read_single_run(out: Path):
    """The run.json dict and samples.jsonl lines of the only run under ``out``."""
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    return record, samples


def modules_imported_by_cli(argv: list[str], modules: tuple[str, ...], prelude: str = "") -> tuple[list[str], str]:
    """Run `llmbench ARGV` in a fresh interpreter; return which of ``modules`` it imported, and its stdout."""
    code = (f"import sys\n{prelude}\nfrom llmbench.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print('IMPORTED', [m for m in {modules!r} if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert marker, proc.stdout + proc.stderr
    return eval(marker[-1].removeprefix("IMPORTED ")), proc.stdout  # a list literal printed by the child


ECHO_WORDS = ["Paris", "Rome", "Oslo", "Bern", "Lima"]


def write_echo_task(root: Path, extra_yaml: str = "") -> Path:
    """A task folder under ``root`` with one task, ``echo``: five prompts ``say WORD`` whose reference is
    WORD, scored by exact match (``extra_yaml``: more lines of the task file). Returns the folder."""
    d = root / "tasks"
    (d / "data").mkdir(parents=True)
    (d / "data" / "d.jsonl").write_text("".join(json.dumps({"q": f"say {w}", "a": w}) + "\n" for w in ECHO_WORDS))
    (d / "echo.yaml").write_text("name: echo\nkind: extraction\nsource: {type: jsonl, path: data/d.jsonl}\n"
                                 "prompt: '{{ q }}'\nreferences: a\nmetrics: [exact_match]\n" + extra_yaml)
    return d


def run_echo(tmp_path: Path, tasks_dir: Path, *args) -> int:
    """`llmbench run -t echo` from ``tasks_dir`` into ``tmp_path/out`` without warm-up, plus ``args``."""
    return run_cli(["run", "-t", "echo", "--tasks-dir", str(tasks_dir), "--out", str(tmp_path / "out"),
                    "--warmup", "0", *args])

