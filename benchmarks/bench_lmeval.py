"""llmbench against the lm_eval CLI: whole-command wall time on the same model, tasks and examples.

Our translation and extraction tasks are exported as lm-eval tasks (`llmbench tasks export-lm-eval`), then
three commands run in turn, interleaved and repeated so that drift of the (shared) machine hits all:

  llmbench  llmbench run -m MODEL -t TASK... --limit N --no-chat-template      (meters on, warm-up included)
  lm_eval   lm_eval run --model hf --model_args pretrained=DIR --include_path EXPORT --tasks TASK,...
            --limit N --batch_size 1 --device cpu --log_samples --output_path TMP
  bridge    llmbench run -m MODEL --lm-eval TASK,... --lm-eval-include EXPORT --limit N --no-chat-template
            (lm-eval's own code path inside llmbench, under llmbench's meters; reported, not the target)

Each wall time is the whole command: interpreter start, imports, model load, generation, scoring (llmbench's
bootstrap CIs, lm-eval's stderr) and writing results. The outputs are checked to be identical (same
prediction for every example) before any time is reported. Prints the median wall time of each command and
the ratio llmbench / lm_eval (target: at most 0.7).

    python benchmarks/bench_lmeval.py [--model smollm2-135m] [--limit 10] [--reps 3] [--warmup 1] [--no-bridge]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BIN = Path(sys.executable).parent
TASKS = ("translation-en-fr", "extraction-qa")
TARGET = 0.7


def _timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return wall


def _llmbench_predictions(out: Path, prefix: str = "") -> dict[str, list[str]]:
    [samples] = sorted(out.rglob("samples.jsonl"))
    preds: dict[str, dict[int, str]] = {}
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        if s["task"].startswith(prefix):
            preds.setdefault(s["task"][len(prefix):], {})[s["index"]] = s["prediction"]
    return {t: [p[i] for i in sorted(p)] for t, p in preds.items()}


def _lm_eval_predictions(out: Path) -> dict[str, list[str]]:
    preds = {}
    for task in TASKS:
        [f] = sorted(out.rglob(f"samples_{task}_*.jsonl"))
        rows = sorted((json.loads(x) for x in f.read_text().splitlines()), key=lambda r: r["doc_id"])
        preds[task] = [r["filtered_resps"][0] for r in rows]
    return preds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m", help="embedded alias or local model directory")
    ap.add_argument("--limit", type=int, default=10, help="examples per task")
    ap.add_argument("--reps", type=int, default=3, help="runs of each command (interleaved)")
    ap.add_argument("--no-bridge", action="store_true", help="skip the `llmbench run --lm-eval` command")
    ap.add_argument("--warmup", type=int, default=1,
                    help="llmbench's warm-up generations per task (default 1, llmbench's own default; "
                         "lm_eval does none)")
    args = ap.parse_args()

    from llmbench.lmeval.export import export_task
    from llmbench.models.embedded import EMBEDDED, ensure_converted

    model_dir = ensure_converted(args.model) if args.model in EMBEDDED else Path(args.model).resolve()
    work = Path(tempfile.mkdtemp(prefix="llmbench-bench-lmeval-"))
    try:
        export = work / "export"
        for task in TASKS:
            export_task(task, export)
        task_args = [a for t in TASKS for a in ("-t", t)]
        common = ["--limit", str(args.limit), "--device", "cpu", "--no-chat-template", "--warmup", str(args.warmup)]
        commands = {
            "llmbench": lambda out: [str(BIN / "llmbench"), "run", "-m", args.model, *task_args, *common,
                                     "--out", str(out)],
            "lm_eval": lambda out: [str(BIN / "lm_eval"), "run", "--model", "hf", "--model_args",
                                    f"pretrained={model_dir}", "--include_path", str(export), "--tasks",
                                    ",".join(TASKS), "--limit", str(args.limit), "--batch_size", "1",
                                    "--device", "cpu", "--log_samples", "--output_path", str(out)],
        }
        if not args.no_bridge:
            commands["bridge"] = lambda out: [str(BIN / "llmbench"), "run", "-m", args.model, "--lm-eval",
                                              ",".join(TASKS), "--lm-eval-include", str(export), *common,
                                              "--out", str(out)]
        names = list(commands)
        walls: dict[str, list[float]] = {n: [] for n in names}
        reference: dict[str, list[str]] | None = None
        print(f"model {args.model} ({model_dir}), tasks {', '.join(TASKS)}, {args.limit} examples each, "
              f"{args.reps} interleaved runs of {', '.join(names)} on {os.cpu_count()} CPUs; llmbench warm-up "
              f"{args.warmup} per task", flush=True)
        for rep in range(args.reps):
            order = names if rep % 2 == 0 else names[::-1]  # alternate who goes first
            for name in order:
                out = work / f"{name}-{rep}"
                wall = _timed(commands[name](out), work)
                walls[name].append(wall)
                if name == "lm_eval":
                    preds = _lm_eval_predictions(out)
                else:
                    preds = _llmbench_predictions(out, "lm-eval:" if name == "bridge" else "")
                if reference is None:
                    reference = preds
                elif preds != reference:
                    raise SystemExit(f"{name} (run {rep + 1}) produced different predictions: not comparable")
                print(f"  run {rep + 1} {name:9} {wall:7.1f} s", flush=True)
                shutil.rmtree(out, ignore_errors=True)
        print(f"outputs identical: {sum(len(v) for v in reference.values())} predictions, all commands")
        med = {n: statistics.median(v) for n, v in walls.items()}
        for n in names:
            print(f"{n:9} median {med[n]:7.1f} s   runs {', '.join(f'{w:.1f}' for w in walls[n])}")
        ratio = med["llmbench"] / med["lm_eval"]
        pairs = [a / b for a, b in zip(walls["llmbench"], walls["lm_eval"])]
        print(f"llmbench / lm_eval wall time: {ratio:.2f}x (per-run ratios {min(pairs):.2f}-{max(pairs):.2f}); "
              f"target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}")
        if "bridge" in med:
            print(f"bridge / lm_eval wall time: {med['bridge'] / med['lm_eval']:.2f}x")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
