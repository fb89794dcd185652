"""GPU check (`make gpu-check`): on a CUDA machine without hub access, build random-weight models from
Mistral-7B's and Gemma-2B's published configs in bf16, run `llmbench run` on a few prompts, and print
TTFT / TPOT / tokens/s, peak memory and NVML energy per model next to a bare generate loop timed with
CUDA events on the same prompts, so the meters can be checked against an independent timer.

Cost depends on shapes, not weight values, so random weights give honest latency, memory and energy.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

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
N_PROMPTS = int(os.environ.get("GPU_CHECK_PROMPTS", "5"))
MAX_NEW = int(os.environ.get("GPU_CHECK_NEW_TOKENS", "64"))


def build(name: str, root: Path) -> Path:
    import torch
    import transformers
    from tiny_model import build_tiny_model

    path = root / name
    build_tiny_model(path)  # tokenizer (byte-level BPE, 512 tokens) + a throwaway tiny model, replaced below
    cls_name, kw = CONFIGS[name]
    config = getattr(transformers, cls_name)(**kw, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = None  # random weights: always generate MAX_NEW tokens
    model.save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    return path


def bare_cuda_events(path: Path, prompts: list[str]) -> dict:
    """Independent timer: CUDA events around each generate; TTFT from a 1-token generate."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to("cuda").eval()
    ttft, e2e, ntok = [], [], []
    kw = dict(do_sample=False, pad_token_id=tok.pad_token_id, min_new_tokens=MAX_NEW)
    with torch.inference_mode():
        enc = tok(prompts[0], return_tensors="pt").to("cuda")
        model.generate(**enc, max_new_tokens=MAX_NEW, **{k: v for k, v in kw.items() if k != "min_new_tokens"})
        for p in prompts:
            enc = tok(p, return_tensors="pt").to("cuda")
            for n, sink in ((1, ttft), (MAX_NEW, e2e)):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                ids = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
                end.record()
                torch.cuda.synchronize()
                sink.append(start.elapsed_time(end) / 1000)
            ntok.append(ids.shape[1] - enc["input_ids"].shape[1])
    tpot = [(e - t) / (n - 1) for e, t, n in zip(e2e, ttft, ntok)]
    del model
    torch.cuda.empty_cache()
    return {"ttft_p50_s": statistics.median(ttft), "tpot_p50_s": statistics.median(tpot),
            "tokens_per_s": sum(n - 1 for n in ntok) / sum(e - t for e, t in zip(e2e, ttft))}


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


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; run it on a GPU machine")
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    root = Path(tempfile.mkdtemp(prefix="llmbench-gpu-"))
    out = root / "results"
    paths = {name: build(name, root) for name in CONFIGS}
    tasks_dir = _write_task(root)
    cmd = [sys.executable, "-m", "llmbench", "run", "--device", "cuda", "-t", "gpu-check",
           "--tasks-dir", str(tasks_dir), "--limit", str(N_PROMPTS), "--max-new-tokens", str(MAX_NEW),
           "--out", str(out), "--name", "gpu-check",
           "--no-chat-template", "--json"]
    for name, path in paths.items():
        cmd += ["-m", f"{path},dtype=bfloat16,name={name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return proc.returncode
    record = json.loads(proc.stdout)
    samples = [json.loads(x) for x in (out / record["run_id"] / "samples.jsonl").read_text().splitlines()]
    print(f"{'model':20} {'meter':10} {'TTFT p50 ms':>12} {'TPOT p50 ms':>12} {'tok/s':>8} {'peak GPU':>10} "
          f"{'J/sample':>9} {'J/token':>8}  method")
    for row in record["rows"]:
        name = row["model"]["name"]
        if row["status"] != "ok":
            print(f"{name:20} failed: {row['error']}")
            continue
        lat, mem, en = row["latency"], row["memory"], row["energy"]
        prompts = [s["prompt"] for s in samples if s["model"] == name]
        ref = bare_cuda_events(paths[name], prompts)
        gib = (mem.get("cuda_peak_allocated_bytes") or 0) / 2**30
        jps = en.get("joules_per_sample")
        jpt = en.get("joules_per_token")
        print(f"{name:20} {'llmbench':10} {lat['ttft_s']['p50']*1e3:12.2f} {lat['tpot_s']['p50']*1e3:12.2f} "
              f"{lat['tokens_per_s']:8.1f} {gib:9.2f}G {jps if jps is None else round(jps, 2)!s:>9} "
              f"{jpt if jpt is None else round(jpt, 3)!s:>8}  {en.get('method') or en.get('reason')}")
        print(f"{'':20} {'cuda-event':10} {ref['ttft_p50_s']*1e3:12.2f} {ref['tpot_p50_s']*1e3:12.2f} "
              f"{ref['tokens_per_s']:8.1f}")
    print(f"record: {out / record['run_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
