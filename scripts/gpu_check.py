"""GPU check (`make gpu-check`): on a CUDA machine without hub access, build random-weight models from
Mistral-7B's and Gemma-2B's published configs in bf16, run `llmbench run` on a few prompts, and print
TTFT / TPOT / tokens/s, peak memory and NVML energy per model next to a bare generate loop timed with
CUDA events on the same prompts, so the meters can be checked against an independent timer.

Cost depends on shapes, not weight values, so random weights give honest latency, memory and energy.

Knobs (environment): GPU_CHECK_PROMPTS (5), GPU_CHECK_NEW_TOKENS (64), GPU_CHECK_DIR (where the models
are built; default a temporary folder), GPU_CHECK_MODELS (a comma-separated subset of the two),
GPU_CHECK_JSON (write every figure there as JSON), GPU_CHECK_VARIANTS (the second phase's variants of each
model, comma-separated from static-compile, bnb-4bit, bnb-8bit, torchao-int8, torchao-int4; default
"static-compile,bnb-4bit"; empty: no second phase), GPU_CHECK_BATCH_SIZES (that phase's --batch-size levels,
default "1,4,16"), GPU_CHECK_REFERENCE=0 (skip the first phase, llmbench against the CUDA-event loop: a
session short of device time spends it on the later phases), GPU_CHECK_LENGTHS (a fourth phase: the first
model with cache=static,compile=true at batch 1 over these --new-tokens levels, e.g. "64,256,1024", on
GPU_CHECK_LENGTHS_PROMPTS prompts (4); empty, the default: none), GPU_CHECK_SERVED (a third phase:
`transformers serve` on this model, e.g. gemma-2b-random, benchmarked with backend=openai beside the same
model in process; empty, the default: none), GPU_CHECK_DRY_RUN=1 (tiny shapes on the CPU, perf_counter
instead of CUDA events: checks the script itself on a machine without a GPU; its figures mean nothing).
With GPU_CHECK_JSON the figures are written after every phase, so a run cut short still leaves what it measured.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

# published configs (mistralai/Mistral-7B-v0.3, google/gemma-2b), the fields that set the shapes
CONFIGS = {
    "mistral-7b-random": ("MistralConfig", dict(
        vocab_size=32768, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
        rope_theta=1e6, sliding_window=None, tie_word_embeddings=False)),
    "gemma-2b-random": ("GemmaConfig", dict(
        vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
        num_attention_heads=8, num_key_value_heads=1, head_dim=256, max_position_embeddings=8192,
        tie_word_embeddings=True)),
}
DRY_SHAPES = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16)
DRY_RUN = os.environ.get("GPU_CHECK_DRY_RUN") == "1"
N_PROMPTS = int(os.environ.get("GPU_CHECK_PROMPTS", "5"))
MAX_NEW = int(os.environ.get("GPU_CHECK_NEW_TOKENS", "64"))
DEVICE = "cpu" if DRY_RUN else "cuda"
VARIANT_OPTIONS = {"static-compile": "cache=static,compile=true", "bnb-4bit": "quant=bnb-4bit",
                   "bnb-8bit": "quant=bnb-8bit", "torchao-int8": "quant=torchao-int8",
                   "torchao-int4": "quant=torchao-int4"}
VARIANTS = [v.strip() for v in os.environ.get("GPU_CHECK_VARIANTS", "static-compile,bnb-4bit").split(",") if v.strip()]
BATCH_SIZES = os.environ.get("GPU_CHECK_BATCH_SIZES", "1,4,16")
MODELS = [m.strip() for m in os.environ.get("GPU_CHECK_MODELS", ",".join(CONFIGS)).split(",") if m.strip()]
REFERENCE = os.environ.get("GPU_CHECK_REFERENCE", "1") != "0"
LENGTHS = os.environ.get("GPU_CHECK_LENGTHS", "").strip()
LENGTHS_PROMPTS = int(os.environ.get("GPU_CHECK_LENGTHS_PROMPTS", "4"))
SERVED = os.environ.get("GPU_CHECK_SERVED", "").strip()


def log(msg: str) -> None:
    print(msg, flush=True)


def build(name: str, root: Path) -> Path:
    import torch
    import transformers
    from tiny_model import build_tiny_model

    path = root / name
    build_tiny_model(path)  # tokenizer (byte-level BPE, 512 tokens) + a throwaway tiny model, replaced below
    cls_name, kw = CONFIGS[name]
    if DRY_RUN:
        kw = dict(kw, **DRY_SHAPES)
    config = getattr(transformers, cls_name)(**kw, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = None  # random weights: never stop early
    model.save_pretrained(path)
    del model
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    return path


class _Timer:
    """CUDA events on the GPU (the independent timer); perf_counter in a dry run."""

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def __enter__(self):
        if DEVICE == "cuda":
            self.start = self.torch.cuda.Event(enable_timing=True)
            self.end = self.torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if DEVICE == "cuda":
            self.end.record()
            self.torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


def bare_generate(path: Path, prompts: list[str]) -> dict:
    """Independent timer around a bare generate loop: TTFT from a 1-token generate, end-to-end from a full one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(DEVICE).eval()
    kw = dict(do_sample=False, pad_token_id=tok.pad_token_id)
    ttft, e2e, ntok = [], [], []
    with torch.inference_mode():
        # warm-up as llmbench's on CUDA: one full-length generation, then one prefill of every prompt (the
        # first prefill of each prompt length pays a one-off cost of the CUDA stack)
        model.generate(**tok(prompts[0], return_tensors="pt").to(DEVICE), max_new_tokens=MAX_NEW, **kw)
        for p in prompts:
            model.generate(**tok(p, return_tensors="pt").to(DEVICE), max_new_tokens=1, **kw)
        for p in prompts:
            enc = tok(p, return_tensors="pt").to(DEVICE)
            with _Timer() as t1:
                model.generate(**enc, max_new_tokens=1, **kw)
            with _Timer() as tn:
                ids = model.generate(**enc, max_new_tokens=MAX_NEW, **kw)
            ttft.append(t1.seconds)
            e2e.append(tn.seconds)
            ntok.append(ids.shape[1] - enc["input_ids"].shape[1])
    del model
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    # TPOT from two calls: where the full call took no longer than the 1-token one (noise larger than the
    # decode, e.g. tiny shapes on a busy CPU) that prompt gives no TPOT, rather than a negative one
    tpot = [(e - t) / (n - 1) for e, t, n in zip(e2e, ttft, ntok) if n > 1 and e > t]
    decode_s = sum(e - t for e, t, n in zip(e2e, ttft, ntok) if n > 1 and e > t)
    return {"ttft_s": ttft, "e2e_s": e2e, "ttft_p50_s": statistics.median(ttft),
            "tpot_p50_s": statistics.median(tpot) if tpot else None, "tpot_prompts": len(tpot),
            "e2e_p50_s": statistics.median(e2e), "new_tokens": ntok,
            "tokens_per_s": sum(n - 1 for e, t, n in zip(e2e, ttft, ntok) if n > 1 and e > t) / decode_s
            if decode_s else None}


def _write_task(root: Path) -> Path:
    """Real English prompts (from translation-en-fr) with no stop sequence: random weights never stop early."""
    from llmbench.tasks import load_catalog

    examples = load_catalog([]).resolve(["translation-en-fr"], N_PROMPTS)[0].examples()
    d = root / "tasks"
    (d / "data").mkdir(parents=True)
    (d / "data" / "gpu-check.jsonl").write_text(
        "".join(json.dumps({"source": e.record["source"], "target": e.references[0]}) + "\n" for e in examples))
    (d / "gpu-check.yaml").write_text(
        "name: gpu-check\nkind: translation\ndescription: translation prompts, no stop sequence\n"
        "source: {type: jsonl, path: data/gpu-check.jsonl}\n"
        "prompt: \"Translate into French: {{ source }}\\nFrench:\"\nreferences: target\nmetrics: [chrf]\n"
        f"generation: {{max_new_tokens: {MAX_NEW}, stop: []}}\n")
    return d


def _fmt(x, nd=2, unit="") -> str:
    return "n/a" if x is None else f"{x:.{nd}f}{unit}"


def _ms(s) -> float | None:
    return None if s is None else s * 1e3


def _gib(n) -> float | None:
    return None if n is None else n / 2**30


def main() -> int:
    import torch

    if not DRY_RUN and not torch.cuda.is_available():
        log("gpu-check: no CUDA device here; run it on a GPU machine (or GPU_CHECK_DRY_RUN=1 to test the script)")
        return 2
    card = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu (dry run)"
    log(f"device: {card}, torch {torch.__version__}")
    root = Path(os.environ.get("GPU_CHECK_DIR") or tempfile.mkdtemp(prefix="llmbench-gpu-"))
    out = root / "results"
    paths = {}
    unknown = set(MODELS) - set(CONFIGS)
    if unknown or not MODELS:
        log(f"gpu-check: unknown or no model(s) in GPU_CHECK_MODELS: {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(CONFIGS)}")
        return 2
    for name in MODELS:
        t0 = time.perf_counter()
        paths[name] = build(name, root)
        log(f"built {name} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    os.sync()  # the saved weights (GBs) are not written back to disk in the background while timers run
    log(f"flushed the page cache's dirty pages in {time.perf_counter() - t0:.1f} s")
    tasks_dir = _write_task(root)
    figures = {"device": card, "prompts": N_PROMPTS, "max_new_tokens": MAX_NEW, "models": {}}
    if REFERENCE and reference_phase(paths, tasks_dir, out, figures) != 0:
        return 1
    phases = (("variants", VARIANTS, variants_phase), ("served", SERVED, served_phase),
              ("lengths", LENGTHS, lengths_phase))
    failed = False
    for key, wanted, phase in phases:
        if not wanted:
            continue
        figures[key] = phase(paths, tasks_dir, out)
        failed = failed or figures[key] is None
        save(figures)  # after every phase: a run cut short keeps what it measured
    save(figures)
    return 1 if failed else 0


ENVIRONMENT: dict = {}  # the last record's environment (card, driver, versions, peak bandwidth)


def save(figures: dict) -> None:
    figures.setdefault("environment", ENVIRONMENT)
    if os.environ.get("GPU_CHECK_JSON"):
        Path(os.environ["GPU_CHECK_JSON"]).write_text(json.dumps(figures, indent=2))


def llmbench_run(args: list[str], label: str) -> dict | None:
    """One `llmbench run --json` in a subprocess (the checkout on PYTHONPATH); its record, or None (logged)."""
    cmd = [sys.executable, "-m", "llmbench", "run", "--device", DEVICE, "--no-chat-template", "--json", *args]
    t0 = time.perf_counter()
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=pythonpath))
    log(f"{label}: llmbench run took {time.perf_counter() - t0:.1f} s (exit {proc.returncode})")
    if proc.returncode not in (0, 3) or not proc.stdout.strip():  # 3: a model failed (e.g. out of memory);
        log(proc.stderr[-3000:])  # its row says why
        return None
    return json.loads(proc.stdout)


def _task_args(tasks_dir: Path, out: Path, name: str, limit: int = N_PROMPTS) -> list[str]:
    return ["-t", "gpu-check", "--tasks-dir", str(tasks_dir), "--limit", str(limit), "--out", str(out),
            "--name", name]


def reference_phase(paths: dict[str, Path], tasks_dir: Path, out: Path, figures: dict) -> int:
    """Phase 1: llmbench's meters against a bare generate loop timed with CUDA events, before and after."""
    from llmbench.tasks import load_catalog

    prompts = [e.prompt for e in load_catalog([tasks_dir]).resolve(["gpu-check"], N_PROMPTS)[0].examples()]
    timer = "cuda-event" if DEVICE == "cuda" else "perf-ctr"
    # the reference loop runs before AND after llmbench, so drift of the machine over the run shows
    before = {name: bare_generate(path, prompts) for name, path in paths.items()}
    args = [*_task_args(tasks_dir, out, "gpu-check"), "--max-new-tokens", str(MAX_NEW)]
    for name, path in paths.items():
        args += ["-m", f"{path},dtype=bfloat16,name={name}"]
    record = llmbench_run(args, "meters")
    if record is None:
        return 1
    env = record["environment"]
    figures["environment"] = env
    log(f"gpu: {env.get('gpu_name')}, driver {env.get('gpu_driver')}, cuda {env.get('cuda')}, "
        f"transformers {env.get('transformers')}")
    samples = [json.loads(x) for x in (out / record["run_id"] / "samples.jsonl").read_text().splitlines()]
    log(f"{'model':20} {'timer':17} {'TTFT p50 ms':>12} {'TPOT p50 ms':>12} {'tok/s':>8} {'weights':>8} "
        f"{'peak alloc':>10} {'NVML used':>9} {'J/sample':>9} {'J/token':>8}  energy method")
    for row in record["rows"]:
        name = row["model"]["name"]
        if row["status"] != "ok":
            log(f"{name:20} failed: {row['error']}")
            figures["models"][name] = {"status": "failed", "error": row["error"]}
            continue
        lat, mem, en = row["latency"], row["memory"], row["energy"]
        if [s["prompt"] for s in samples if s["model"] == name] != prompts:
            log(f"{name}: llmbench's prompts differ from the reference loop's; the comparison would be void")
            return 1
        after = bare_generate(paths[name], prompts)
        gib = [_fmt(_gib(mem.get(k)), unit="G") for k in ("weights_bytes", "cuda_peak_allocated_bytes",
                                                            "nvml_used_bytes")]
        log(f"{name:20} {'llmbench':17} {lat['ttft_s']['p50'] * 1e3:12.2f} {lat['tpot_s']['p50'] * 1e3:12.2f} "
            f"{lat['tokens_per_s']:8.1f} {gib[0]:>8} {gib[1]:>10} {gib[2]:>9} "
            f"{_fmt(en.get('joules_per_sample')):>9} {_fmt(en.get('joules_per_token'), 3):>8}  "
            f"{en.get('method') or en.get('reason')}")
        for when, ref in (("before", before[name]), ("after", after)):
            log(f"{'':20} {timer + ' ' + when:17} {ref['ttft_p50_s'] * 1e3:12.2f} "
                f"{_fmt(_ms(ref['tpot_p50_s'])):>12} {_fmt(ref['tokens_per_s'], 1):>8}")
        per_sample = {k: [s[k] for s in samples if s["model"] == name] for k in ("ttft_s", "e2e_s", "new_tokens")}
        figures["models"][name] = {
            "status": "ok", "parameters": row["model"]["parameters"],
            "llmbench": {"latency": lat, "memory": mem, "energy": en, "samples": per_sample},
            "reference_before": before[name], "reference_after": after,
        }
    log(f"record: {out / record['run_id']}")
    save(figures)
    return 0


def rows_table(record: dict, out: Path) -> list[dict]:
    """Print one line per row (TTFT, TPOT, decode and end-to-end tok/s, weights, J/token, % of roofline) and
    return the rows' figures."""
    env = record["environment"]
    ENVIRONMENT.update(env)
    log(f"peak bandwidth: {_fmt((env.get('memory_bandwidth_bytes_per_s') or 0) / 1e9 or None)} GB/s "
        f"({env.get('memory_bandwidth_method') or env.get('memory_bandwidth_reason')})")
    log(f"{'row':44} {'TTFT p50 ms':>11} {'TPOT p50 ms':>11} {'tok/s':>8} {'e2e tok/s':>9} {'weights':>8} "
        f"{'J/token':>8} {'% roofline':>10}")
    rows = []
    for row in record["rows"]:
        name = row["model"]["name"]
        if row["status"] != "ok":
            log(f"{name:44} failed: {row['error']}")
            rows.append({"name": name, "status": "failed", "error": row["error"]})
            continue
        lat, mem, en = row["latency"], row["memory"], row["energy"]
        roof = (lat.get("roofline") or {}).get("percent_of_peak")
        ttft, tpot = ((lat.get(k) or {}).get("p50") for k in ("ttft_s", "tpot_s"))
        log(f"{name:44} {_fmt(_ms(ttft)):>11} {_fmt(_ms(tpot)):>11} {_fmt(lat.get('tokens_per_s'), 1):>8} "
            f"{_fmt(lat.get('e2e_tokens_per_s'), 1):>9} {_fmt(_gib(mem.get('weights_bytes')), unit='G'):>8} "
            f"{_fmt(en.get('joules_per_token'), 3):>8} {_fmt(roof, 1, '%'):>10}")
        rows.append({"name": name, "status": "ok", "model": row["model"], "latency": lat, "memory": mem,
                     "energy": en, "quality": row.get("quality"), "settings": row.get("settings")})
    log(f"record: {out / record['run_id']}")
    return rows


def variants_phase(paths: dict[str, Path], tasks_dir: Path, out: Path) -> list[dict] | None:
    """Phase 2: each model plain and as its GPU_CHECK_VARIANTS, at every GPU_CHECK_BATCH_SIZES level, in one
    `llmbench run`: tok/s, TPOT, J/token, weights held and % of the bandwidth roofline per row."""
    unknown = [v for v in VARIANTS if v not in VARIANT_OPTIONS]
    if unknown:
        log(f"gpu-check: unknown GPU_CHECK_VARIANTS: {', '.join(unknown)}; choose from {', '.join(VARIANT_OPTIONS)}")
        return None
    args = [*_task_args(tasks_dir, out, "gpu-check-variants"), "--max-new-tokens", str(MAX_NEW),
            "--batch-size", BATCH_SIZES]
    for path in paths.values():  # rows are named DIR[variant] and DIR[variant]@bN by llmbench itself
        args += ["-m", f"{path},dtype=bfloat16"]
        args += [x for v in VARIANTS for x in ("-m", f"{path},dtype=bfloat16,{VARIANT_OPTIONS[v]}")]
    record = llmbench_run(args, "variants")
    return None if record is None else rows_table(record, out)


def lengths_phase(paths: dict[str, Path], tasks_dir: Path, out: Path) -> list[dict] | None:
    """Phase 4: the first model, static cache + compile at batch 1, over GPU_CHECK_LENGTHS new-token levels:
    the KV-cache read grows with the context, which is where the roofline's KV term shows."""
    path = next(iter(paths.values()))
    args = [*_task_args(tasks_dir, out, "gpu-check-lengths", LENGTHS_PROMPTS), "--new-tokens", LENGTHS,
            "-m", f"{path},dtype=bfloat16,{VARIANT_OPTIONS['static-compile']}"]
    record = llmbench_run(args, "lengths")
    return None if record is None else rows_table(record, out)


def served_phase(paths: dict[str, Path], tasks_dir: Path, out: Path) -> list[dict] | None:
    """Phase 3: `transformers serve` on GPU_CHECK_SERVED's model, benchmarked through backend=openai at
    concurrency 1 and 4, beside the same model in process at batch 1 and 4, in one `llmbench run`."""
    if SERVED not in paths:
        log(f"gpu-check: GPU_CHECK_SERVED={SERVED} is not among the built models ({', '.join(paths)})")
        return None
    from served_server import start_transformers_serve, stop

    def fail(msg: str):
        raise RuntimeError(msg)

    path = paths[SERVED]
    t0 = time.perf_counter()
    try:
        proc, url = start_transformers_serve(path, out.parent / "serve.log", device=DEVICE, fail=fail)
    except RuntimeError as exc:
        log(f"served: transformers serve did not start: {exc}")
        return None
    log(f"served: transformers serve answered after {time.perf_counter() - t0:.1f} s at {url}")
    try:
        args = [*_task_args(tasks_dir, out, "gpu-check-served"), "--max-new-tokens", str(MAX_NEW),
                "--concurrency", "1,4", "--batch-size", "1,4",
                "-m", f"{url},name={SERVED}-served,model={path},tokenizer={path}",
                "-m", f"{path},dtype=bfloat16,name={SERVED}-in-process"]
        record = llmbench_run(args, "served")
    finally:
        stop(proc)
    if record is None:
        return None
    rows = rows_table(record, out)
    # a served row has no roofline of its own (the client cannot see what the server holds): the in-process
    # row of the same model at batch 1 says what one decode step must read, so the served c1 row's TPOT is
    # set against that (the same weights, the same context lengths)
    by_name = {r["name"]: r for r in rows if r["status"] == "ok"}
    local, served = by_name.get(f"{SERVED}-in-process"), by_name.get(f"{SERVED}-served")
    roof = (local or {}).get("latency", {}).get("roofline") or {}
    tpot = ((served or {}).get("latency", {}).get("tpot_s") or {}).get("p50")
    if roof.get("bytes_per_step") and roof.get("peak_bytes_per_s") and tpot:
        pct = 100 * roof["bytes_per_step"] / tpot / roof["peak_bytes_per_s"]
        served["roofline_from_in_process"] = {"bytes_per_step": roof["bytes_per_step"], "tpot_s_p50": tpot,
                                              "percent_of_peak": pct}
        log(f"served at c1 against the in-process row's {roof['bytes_per_step'] / 1e9:.2f} GB per step: "
            f"{pct:.1f}% of the roofline")
    return rows


if __name__ == "__main__":
    sys.exit(main())
