"""The GPU check script itself, in its dry run (tiny shapes on the CPU): it must build both models, run
`llmbench run` on them and time the bare loop, so that a session lent a GPU does not discover a broken script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_reports_both_meters_for_both_models(tmp_path):
    out = tmp_path / "figures.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_CHECK_")}
    # phase 2 with one variant that runs on the CPU and two batch levels: the path a GPU session takes
    env.update(GPU_CHECK_DRY_RUN="1", GPU_CHECK_PROMPTS="2", GPU_CHECK_NEW_TOKENS="16",
               GPU_CHECK_JSON=str(out), TMPDIR=str(tmp_path), GPU_CHECK_VARIANTS="bnb-8bit",
               GPU_CHECK_BATCH_SIZES="1,2", GPU_CHECK_SERVED="gemma-2b-random", GPU_CHECK_LENGTHS="8,16")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert set(figures["models"]) == {"mistral-7b-random", "gemma-2b-random"}
    for name, fig in figures["models"].items():
        assert fig["status"] == "ok", name
        lat = fig["llmbench"]["latency"]
        assert lat["ttft_s"]["p50"] > 0 and lat["tpot_s"]["p50"] > 0
        assert fig["llmbench"]["samples"]["new_tokens"] == [16, 16]
        for ref in (fig["reference_before"], fig["reference_after"]):
            assert ref["new_tokens"] == [16, 16]  # random weights never stop early: eos is switched off
            assert ref["ttft_p50_s"] > 0 and ref["tpot_p50_s"] > 0
        # on the CPU there is no NVML: energy and CUDA memory say why instead of reporting zero
        assert fig["llmbench"]["memory"]["cuda_peak_allocated_bytes"] is None
        assert fig["llmbench"]["memory"]["cuda_reason"]
        assert fig["llmbench"]["energy"]["available"] is False and fig["llmbench"]["energy"]["reason"]
    assert f"{'mistral-7b-random':20} llmbench" in proc.stdout
    assert "perf-ctr before" in proc.stdout and "perf-ctr after" in proc.stdout
    # phase 2: every model plain and quantized, at batch 1 and 2, each a row with its roofline entry
    variants = {v["name"]: v for v in figures["variants"]}
    assert set(variants) == {f"{m}{v}{b}" for m in ("mistral-7b-random", "gemma-2b-random")
                             for v in ("", "[bnb-8bit]") for b in ("", "@b2")}, sorted(variants)
    for name, v in variants.items():
        assert v["status"] == "ok", (name, v.get("error"))
        assert "roofline" in v["latency"]
    assert variants["gemma-2b-random[bnb-8bit]"]["model"]["quantization"]["method"] == "bnb-8bit"
    # phase 3: transformers serve on the gemma shapes beside the same model in process, at two load levels
    served = {v["name"]: v for v in figures["served"]}
    assert set(served) == {"gemma-2b-random-served", "gemma-2b-random-served@c4", "gemma-2b-random-in-process",
                           "gemma-2b-random-in-process@b4"}, sorted(served)
    assert all(v["status"] == "ok" for v in served.values()), served
    c1 = served["gemma-2b-random-served"]
    assert c1["latency"]["token_source"] == "server-usage" and c1["model"]["backend"] == "openai"
    local = served["gemma-2b-random-in-process"]["latency"]["roofline"]
    assert c1["roofline_from_in_process"]["bytes_per_step"] == local["bytes_per_step"]
    assert c1["roofline_from_in_process"]["percent_of_peak"] == pytest.approx(
        100 * local["bytes_per_step"] / c1["latency"]["tpot_s"]["p50"] / local["peak_bytes_per_s"])
    # phase 4: the first model compiled with a static cache over two generation budgets
    lengths = {v["name"]: v for v in figures["lengths"]}
    assert set(lengths) == {"mistral-7b-random[static,compile]@n8", "mistral-7b-random[static,compile]@n16"}
    assert all(v["status"] == "ok" and v["model"]["compile"] for v in lengths.values()), lengths
    assert figures["environment"]["memory_bandwidth_bytes_per_s"] > 0


def test_gpu_check_rejects_unknown_models():
    env = dict(os.environ, GPU_CHECK_DRY_RUN="1", GPU_CHECK_MODELS="llama-99b")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 2 and "unknown or no model(s) in GPU_CHECK_MODELS: llama-99b" in proc.stdout
