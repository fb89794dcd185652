"""Helpers shared by the integration tests that drive the CLI in-process."""

from __future__ import annotations

import json
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
