"""Metering overhead: the same prompts through a bare `model.generate` loop and through `llmbench run`
with every meter on, measured in one process. Each rep times both, in alternating order (bare first, then
metered first, ...), so drift of the machine and any order effect hit both sides alike. Prints the median of
the per-rep ratios metered / bare (target: at most 1.02) and, as a cross-check, the ratio of the fastest
times (the timeit convention: other processes only ever add time).

    python benchmarks/bench_overhead.py [--model smollm2-135m] [--limit 4] [--reps 5] [--device auto]
                                        [--task NAME] [--tasks-dir DIR] [--streamer]

--streamer adds a third side: the bare loop with llmbench's timestamping streamer attached and nothing else,
which isolates the streamer's per-step cost (one device-to-host copy of the new token per step) from the
rest of the metering.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="translation-en-fr")
    ap.add_argument("--tasks-dir", action="append", default=[], help="more task files (like `llmbench run`)")
    ap.add_argument("--streamer", action="store_true", help="also time the bare loop with the TTFT streamer")
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (CUDA: both sides synchronise the device)")
    args = ap.parse_args()

    from preloaded import Preloaded  # benchmarks/, on sys.path as the script's folder

    from llmbench import runner
    from llmbench.config import GenerationConfig, ModelSpec, RunConfig
    from llmbench.meters.timing import TokenClock
    from llmbench.models.hf import HFBackend, cut_at_stop, resolve_device
    from llmbench.tasks import load_catalog

    spec = ModelSpec.parse(args.model)
    backend = HFBackend()
    device = resolve_device(args.device)
    loaded = backend.load(backend.preflight(spec), device, print)
    loaded.use_chat_template = loaded.has_chat_template
    tasks_dirs = tuple(Path(d) for d in args.tasks_dir)
    task = load_catalog(list(tasks_dirs)).resolve([args.task], args.limit)[0]
    examples = task.examples()
    prompts = [backend.render(loaded, ex.messages, ex.prompt) for ex in examples]

    def bare(streamer: bool = False) -> tuple[float, list[str]]:
        import torch

        hf_model, tokenizer = loaded.handle
        kw = backend.generate_kwargs(loaded, task.max_new_tokens, task.stop)
        texts = []
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        sync()
        t0 = time.perf_counter()
        for p in prompts:
            enc = backend.encode(loaded, [p])
            with torch.inference_mode():
                ids = hf_model.generate(**enc, **kw, **({"streamer": TokenClock()} if streamer else {}))
            texts.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        sync()
        return time.perf_counter() - t0, texts

    out = Path(tempfile.mkdtemp(prefix="llmbench-bench-"))
    config = RunConfig(models=(spec,), tasks=(args.task,), limit=args.limit, device=device, warmup=0,
                       out_dir=out, generation=GenerationConfig(), tasks_dirs=tasks_dirs)

    def metered() -> tuple[float, list[str]]:
        result = runner.run(config, backend=Preloaded(backend, loaded))
        row = result.record.rows[0]
        if row.status != "ok":
            raise SystemExit(f"metered run failed: {row.error}")
        return row.latency["window_s"], [s["prediction"] for s in result.samples]

    bare()  # warm-up, not counted
    sides = {"bare": bare, "metered": metered}
    if args.streamer:
        sides["streamer"] = lambda: bare(streamer=True)
    times: dict[str, list[float]] = {k: [] for k in sides}
    texts: dict[str, list[str]] = {}
    for rep in range(args.reps):
        order = list(sides) if rep % 2 == 0 else list(reversed(sides))
        for side in order:
            t, texts[side] = sides[side]()
            times[side].append(t)
    bare_t, met_t = times["bare"], times["metered"]
    bare_texts, met_texts = texts["bare"], texts["metered"]
    # the bare text cut at the stop sequences exactly as llmbench cuts its own, then compared for equality
    same = [cut_at_stop(b, task.stop) == m for b, m in zip(bare_texts, met_texts)]
    ratios = [m / b for m, b in zip(met_t, bare_t)]
    ratio = statistics.median(ratios)
    print(f"metering overhead ({args.model}, {args.task}, {len(prompts)} prompts, {args.reps} reps, {device})")
    print(f"  bare generate loop : median {statistics.median(bare_t):.3f} s  {[round(x, 3) for x in bare_t]}")
    print(f"  llmbench, all meters: median {statistics.median(met_t):.3f} s  {[round(x, 3) for x in met_t]}")
    print(f"  per-rep ratios: {[round(r, 3) for r in ratios]}   fastest / fastest: {min(met_t) / min(bare_t):.3f}")
    if args.streamer:
        st = times["streamer"]
        print(f"  bare + TTFT streamer: median {statistics.median(st):.3f} s  {[round(x, 3) for x in st]}   "
              f"ratio to bare (median of reps): {statistics.median(s / b for s, b in zip(st, bare_t)):.3f}")
    print(f"  ratio (metered / bare, median of reps): {ratio:.3f}   target <= 1.02   outputs identical: {all(same)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
