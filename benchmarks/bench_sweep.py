"""Sweep overhead: a `--batch-size 1,4` (or `--new-tokens 16,64`) sweep against the same levels run one by one,
the model loaded once for all (so model loading, which a sweep saves, is not counted in its favour). Each rep
runs the sweep and every single level, alternating the order per rep. Prints, per level, the time from its
task's start to its row (warm-up, metered generations, scoring) inside the sweep against alone, and the time
outside the level rows (run setup: the bandwidth probe, environment, task data, record writes) of the sweep
against one single run. No overhead beyond its runs means: level ratios about 1, and the sweep's time outside
its rows about that of one single run (not one per level). Outputs are checked identical level by level.

    python benchmarks/bench_sweep.py [--model smollm2-135m] [--task translation-en-fr] [--limit 4]
                                     [--batch-size 1,4] [--new-tokens N,N] [--reps 3] [--device auto]
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


class _Spans:
    """A runner progress callback that times each row from its task's start to its row."""

    def __init__(self) -> None:
        self.spans: dict[str, float] = {}
        self._start = 0.0

    def model_started(self, *a) -> None: ...
    def advance(self, *a) -> None: ...
    def note(self, *a) -> None: ...

    def task_started(self, model, task, n) -> None:
        self._start = time.perf_counter()

    def row_done(self, row) -> None:
        self.spans[row.model.get("name")] = time.perf_counter() - self._start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="translation-en-fr")
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--batch-size", default="1,4")
    ap.add_argument("--new-tokens", default=None)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from preloaded import Preloaded  # benchmarks/, on sys.path as the script's folder

    from llmbench import runner
    from llmbench.config import GenerationConfig, ModelSpec, RunConfig
    from llmbench.levels import parse_batch_sizes, parse_new_tokens
    from llmbench.models.hf import HFBackend, resolve_device

    spec = ModelSpec.parse(args.model)
    backend = HFBackend()
    device = resolve_device(args.device)
    loaded = backend.load(backend.preflight(spec), device, print)

    batches, lengths = parse_batch_sizes(args.batch_size), parse_new_tokens(args.new_tokens)
    sweep_gen = GenerationConfig.with_batch_levels(batches, new_tokens=lengths)
    levels = [(b, n) for b in sweep_gen.batch_levels for n in sweep_gen.length_levels]
    if len(levels) < 2:
        raise SystemExit("give two or more levels (--batch-size 1,4 and/or --new-tokens 16,64)")
    out = Path(tempfile.mkdtemp(prefix="llmbench-bench-sweep-"))

    def one(gen: GenerationConfig) -> tuple[float, dict[str, float], dict[str, list[str]]]:
        config = RunConfig(models=(spec,), tasks=(args.task,), limit=args.limit, device=device, warmup=1,
                           out_dir=out, generation=gen)
        spans = _Spans()
        t0 = time.perf_counter()
        result = runner.run(config, backend=Preloaded(backend, loaded), progress=spans)
        wall = time.perf_counter() - t0
        bad = [r for r in result.record.rows if r.status != "ok"]
        if bad:
            raise SystemExit(f"a run failed: {bad[0].error}")
        texts: dict[str, list[str]] = {}
        for s in result.samples:
            texts.setdefault(s["model"], []).append(s["prediction"])
        return wall, spans.spans, texts

    names = [spec.name + sweep_gen.level_suffix(b, n) for b, n in levels]
    singles = {name: GenerationConfig(batch_size=b, new_tokens=(n,) if n else ()) for name, (b, n) in
               zip(names, levels)}
    one(GenerationConfig())  # warm-up of the process (kernels, allocator), not counted
    sweep_walls, sweep_outside, single_outside = [], [], []
    ratios: dict[str, list[float]] = {name: [] for name in names}
    identical = True
    for rep in range(args.reps):
        sides = ["sweep", *names] if rep % 2 == 0 else [*names, "sweep"]
        results = {side: one(sweep_gen if side == "sweep" else singles[side]) for side in sides}
        wall, spans, texts = results["sweep"]
        sweep_walls.append(wall)
        sweep_outside.append(wall - sum(spans.values()))
        for name in names:
            s_wall, s_spans, s_texts = results[name]
            [(_, s_span)] = s_spans.items()
            ratios[name].append(spans[name] / s_span)
            single_outside.append(s_wall - s_span)
            identical &= next(iter(s_texts.values())) == texts[name]
    print(f"sweep overhead ({args.model}, {args.task}, {args.limit} prompts, levels {', '.join(names)}, "
          f"{args.reps} reps, {device})")
    for name in names:
        print(f"  {name:<28} span in the sweep / alone: median {statistics.median(ratios[name]):.3f}  "
              f"{[round(r, 3) for r in ratios[name]]}")
    so, si = statistics.median(sweep_outside), statistics.median(single_outside)
    print(f"  outside the level rows: sweep {so:.3f} s (one run), a single level {si:.3f} s; "
          f"the sweep saves {(len(names) - 1) * si:.3f} s of setup over {len(names)} separate runs")
    print(f"  sweep wall: median {statistics.median(sweep_walls):.3f} s   outputs identical level by level: "
          f"{identical}   target: span ratios about 1, sweep outside ≈ one single run's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
