"""Time `llmbench gate` on two synthetic records of 100,000 rows each (baseline vs a candidate 2% worse).

Not a test: prints the figures. Run with `python benchmarks/bench_gate.py` (`--rows N` for another size).
Each record is about 100 MB of run.json, as `llmbench run` lays it out (one quality metric with its CI,
latency summaries, memory, energy), without samples.jsonl, so the gate compares point values (the noise
tests need samples and would time the statistics, not the gate). The records are over the size that is read
with a progress line (records.store.LARGE_RECORD_BYTES).

Figures: the whole command as a user types it (interpreter start, imports, reading, checks, the table on
stdout, sent to a file), then its steps in one process. On a 2-core machine, before the table was laid out
as plain text and the records were read and gated with the garbage collector paused, 10,000 rows took 28 s
and 100,000 rows 285 s (rich rendered each row's table, ~7 ms a row, and collections walked the records
again and again); now 100,000 rows take about 16 s (reading and checking 206 MiB of JSON: 7 s).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _summary(x: float) -> dict:
    return {"mean": x, "p50": x, "p90": x * 1.1, "p99": x * 1.2, "ci_low": x * 0.9, "ci_high": x * 1.1, "n": 10}


def build(out: Path, rows: int) -> tuple[Path, Path]:
    """A baseline and a candidate run of ``rows`` rows (100 models x rows/100 tasks)."""
    dirs = []
    for name, scale in (("baseline", 1.0), ("candidate", 1.02)):
        table = []
        for i in range(rows):
            model, task = f"model-{i % 100:03d}", f"task-{i // 100:05d}"
            table.append({
                "model": {"name": model, "spec": model, "parameters": 10**8 * (1 + i % 100), "device": "cpu"},
                "task": {"name": task, "kind": "extraction", "n": 10},
                "quality": {"exact_match": {"value": 50.0 / scale, "ci_low": 40.0, "ci_high": 60.0,
                                            "higher_is_better": True, "scale": "0-100", "n": 10}},
                "latency": {"ttft_s": _summary(0.05 * scale), "tpot_s": _summary(0.01 * scale),
                            "e2e_s": _summary(0.2), "new_tokens": _summary(16), "tokens_per_s": 100.0},
                "memory": {"peak_rss_bytes": 1e9 * scale},
                "energy": {"available": True, "method": "rapl", "joules_per_sample": 0.2 * scale},
                "status": "ok", "error": None})
        run_id = f"2025010{1 if name == 'baseline' else 2}-000000-{name}"
        run_dir = out / run_id
        run_dir.mkdir(parents=True)
        record = {"schema_version": 1, "run_id": run_id, "created_at": "2025-01-01T00:00:00+00:00",
                  "command": "bench", "environment": {"hostname": "bench"}, "settings": {}, "rows": table}
        (run_dir / "run.json").write_text(json.dumps(record), encoding="utf-8")
        dirs.append(run_dir)
    return dirs[0], dirs[1]


def _steps(base: Path, cand: Path) -> dict[str, float]:
    from llmbench.cli.gate_table import print_report
    from llmbench.gate import evaluate, resolve_rules
    from llmbench.records.store import read_run

    figures = {}
    t = time.perf_counter()
    records = read_run(base), read_run(cand)
    figures["read and check both records"] = time.perf_counter() - t
    rules, source = resolve_rules((), None)
    t = time.perf_counter()
    report = evaluate(*records, rules, rules_source=source, baseline_samples=[], candidate_samples=[])
    figures[f"evaluate ({len(report.checks):,} checks)"] = time.perf_counter() - t
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        print_report(report)
    figures["the table (piped)"] = time.perf_counter() - t
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per record (default 100,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, cand = build(Path(tmp), args.rows)
        size = sum((d / "run.json").stat().st_size for d in (base, cand)) / 2**20
        print(f"{args.rows:,} rows per record, {size:,.0f} MiB of run.json in all")
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "llmbench", "gate", "--baseline", str(base), "--candidate",
                               str(cand)], capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        whole = time.perf_counter() - t
        if proc.returncode not in (0, 1, 3):
            raise SystemExit(f"gate failed ({proc.returncode}): {proc.stderr[-1000:]}")
        print(f"  {'llmbench gate (whole command, stdout to a pipe)':<50} {whole:8.1f} s  (exit {proc.returncode}; "
              "target: seconds, not minutes)")
        for label, seconds in _steps(base, cand).items():
            print(f"  {label:<50} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
