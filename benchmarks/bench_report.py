"""Time `compare` and `export` over 200 synthetic rows (10 models x 20 tasks, 20 samples each).

Not a test: prints the figures. Run with `make bench` or `python benchmarks/bench_report.py`.
The rows are written by llmbench.records.store into a temporary directory, one run per model, exactly as
`llmbench run` lays them out, so the timings include reading the records and samples.

Two sets of figures: in one process (each step on its own, best of --repeat), and whole commands as a user
types them (`llmbench compare`, `llmbench export --format md|html`: interpreter start, imports, reading,
significance, rendering, writing). The HTML report is timed with and without its charts (matplotlib renders
three per task, 60 here, which dominates).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmbench.metrics import compute_all, sample_scores_all  # noqa: E402
from llmbench.records import ResultRow, RunRecord  # noqa: E402
from llmbench.records.store import write_run, write_samples  # noqa: E402
from llmbench.stats import Summary  # noqa: E402

WORDS = "the a cat dog runs over under house tree river blue green small large quickly slowly".split()


def _summary(values) -> dict:
    return Summary.from_values(values).to_dict()


def build(out: Path, models: int = 10, tasks: int = 20, samples: int = 20, seed: int = 0) -> list[Path]:
    """Write one run per model; half the tasks are QA (exact_match), half translation (bleu)."""
    rng = np.random.default_rng(seed)
    refs = {t: [" ".join(rng.choice(WORDS, 8)) for _ in range(samples)] for t in range(tasks)}
    dirs = []
    for m in range(models):
        params = int(50e6 * 2 ** m)
        name = f"model-{m:02d}"
        rows, lines = [], []
        for t in range(tasks):
            task = f"task-{t:02d}"
            metric = "exact_match" if t % 2 else "bleu"
            keep = 0.4 + 0.05 * m  # larger models copy more of the reference
            preds = [" ".join(w if rng.random() < keep else "zz" for w in r.split()) for r in refs[t]]
            ttft = (0.01 * (1 + m) * rng.lognormal(0, 0.1, samples)).tolist()
            tpot = (0.005 * (1 + m) * rng.lognormal(0, 0.1, samples)).tolist()
            e2e = [a + b * 15 for a, b in zip(ttft, tpot)]
            # quality and per-sample scores computed as `llmbench run` computes them
            references = [[r] for r in refs[t]]
            quality = compute_all([metric], preds, references)
            scores = sample_scores_all([metric], preds, references)
            rows.append(ResultRow(
                model={"name": name, "spec": name, "parameters": params, "dtype": "float32", "device": "cpu"},
                task={"name": task, "kind": "extraction" if t % 2 else "translation", "n": samples},
                quality=quality,
                latency={"ttft_s": _summary(ttft), "tpot_s": _summary(tpot), "e2e_s": _summary(e2e),
                         "tokens_per_s": 1 / float(np.mean(tpot))},
                memory={"peak_rss_bytes": 4 * params + 5e8},
                energy={"available": True, "method": "rapl", "joules_per_sample": 0.1 * (1 + m)},
            ))
            lines += [{"model": name, "task": task, "index": i, "prompt": f"q {i}", "prediction": preds[i],
                       "references": [refs[t][i]], "scores": scores[i], "ttft_s": ttft[i], "tpot_s": tpot[i],
                       "e2e_s": e2e[i], "new_tokens": 16} for i in range(samples)]
        record = RunRecord(run_id=f"20250101-0000{m:02d}-{name}", created_at="2025-01-01T00:00:00+00:00",
                           command="bench", environment={"hostname": "bench"}, settings={}, rows=rows)
        path = write_run(record, out)
        write_samples(path.parent, lines)
        dirs.append(path.parent)
    return dirs


def _time(fn, repeat: int):
    """Best of ``repeat`` runs (one run when it takes over 2 s: the figure is then clear enough)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
        if best > 2:
            break
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--no-cli", action="store_true", help="skip the whole-command timings")
    args = parser.parse_args()

    from llmbench.metrics import get_metric
    from llmbench.report import build_comparison, load_runs
    from llmbench.report.exporters import export
    from llmbench.report.exporters.html import to_html

    for name in ("bleu", "exact_match"):  # import the metric libraries outside the timings
        get_metric(name).sample_stats(["a"], [["a"]])
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [str(d) for d in build(Path(tmp))]
        merged = load_runs(dirs)
        print(f"{len(merged.rows)} rows, {len(merged.tasks())} tasks, {len(dirs)} runs; best of {args.repeat}")
        figures = {}
        figures["load records + samples"], merged = _time(lambda: load_runs(dirs), args.repeat)
        figures["compare, no significance (--resamples 0)"], _ = _time(
            lambda: build_comparison(merged, resamples=0), args.repeat)
        # the first call pays lazy imports and fills per-process caches (sample statistics, resample indices),
        # as every `llmbench compare` does: timed in a fresh process; repeats in this one are warm
        figures["compare with significance, first call"] = _first_compare(dirs, args.repeat)
        figures["compare with significance, warm (cached)"], cmp = _time(
            lambda: build_comparison(merged), args.repeat)
        for fmt in ("md", "csv", "json", "latex"):
            figures[f"export {fmt}"], _ = _time(lambda f=fmt: export(cmp, merged, f), args.repeat)
        figures["export html, no charts"], _ = _time(lambda: to_html(cmp, merged, charts=False), args.repeat)
        figures["export html with its 60 charts"], _ = _time(lambda: export(cmp, merged, "html"), 1)
        print("in one process:")
        for label, seconds in figures.items():
            print(f"  {label:<45} {seconds * 1000:8.1f} ms")
        total = sum(v for k, v in figures.items() if not any(w in k for w in ("no significance", "with its", "warm")))
        print(f"  {'load + compare + md/csv/json/latex/html':<45} {total * 1000:8.1f} ms  (target < 1000 ms; "
              "html without charts)")
        if not args.no_cli:
            _cli_figures(dirs, Path(tmp), args.repeat)


_FIRST_COMPARE = """
import sys, time
from llmbench.report import build_comparison, load_runs
merged = load_runs(sys.argv[1:])
t = time.perf_counter()
build_comparison(merged)
print(time.perf_counter() - t)
"""


def _first_compare(dirs: list[str], repeat: int) -> float:
    """``build_comparison`` once, in a fresh process with the records loaded (best of ``repeat`` processes)."""
    def once():
        proc = subprocess.run([sys.executable, "-c", _FIRST_COMPARE, *dirs], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            raise SystemExit(f"first compare failed ({proc.returncode}): {proc.stderr[-1000:]}")
        return float(proc.stdout.split()[-1])

    return min(once() for _ in range(repeat))


def _cli_figures(dirs: list[str], tmp: Path, repeat: int) -> None:
    """Whole commands, as a user runs them (best of ``repeat``)."""
    llmbench = [sys.executable, "-m", "llmbench"]
    commands = {
        "llmbench --help (start-up alone)": [*llmbench, "--help"],
        "llmbench compare (200 rows)": [*llmbench, "compare", *dirs],
        "llmbench export --format md": [*llmbench, "export", *dirs, "--format", "md", "-o", str(tmp / "r.md")],
        "llmbench export --format html (60 charts)": [*llmbench, "export", *dirs, "--format", "html", "-o",
                                                      str(tmp / "r.html")],
    }
    print("whole commands:")
    for label, cmd in commands.items():
        def once(cmd=cmd, label=label):
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
            if proc.returncode != 0:
                raise SystemExit(f"{label} failed ({proc.returncode}): {proc.stderr[-1000:]}")
        seconds, _ = _time(once, 1 if "html" in label else repeat)
        print(f"  {label:<45} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
