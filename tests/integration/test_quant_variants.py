"""Quantized and faster HF variants of a tiny model, end to end: one row each, with what they hold."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.integration

from cli_helpers import read_single_run, run_cli  # noqa: E402


@pytest.mark.parametrize("method, library, bits", [
    ("torchao-int8", "torchao", 8), ("bnb-8bit", "bitsandbytes", 8), ("bnb-4bit", "bitsandbytes", 4),
    ("bnb-nf4", "bitsandbytes", 4),
])
def test_quantized_variant_rows_record_method_library_and_bytes_held(method, library, bits, tiny_model_dir,
                                                                     task_dir, tmp_path):
    pytest.importorskip(library)
    out = tmp_path / "r"
    code = run_cli(["run", "-m", str(tiny_model_dir), "-m", f"{tiny_model_dir},quant={method}",
                    "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out), "--device", "cpu",
                    "--warmup", "1"])
    assert code == 0
    record, _ = read_single_run(out)
    plain, quantized = record["rows"]
    assert quantized["status"] == "ok", quantized["error"]
    assert quantized["model"]["name"] == f"{tiny_model_dir.name}[{method}]"
    q = quantized["model"]["quantization"]
    assert (q["method"], q["library"], q["bits"]) == (method, library, bits) and q["library_version"]
    assert plain["model"]["quantization"] is None
    assert quantized["model"]["parameters"] == plain["model"]["parameters"]  # 4-bit packing is not fewer weights
    # the linear weights shrink; embeddings and norms stay float32, so less than the fp32 count, not 1/4 of it
    held, fp32 = quantized["memory"]["weights_bytes"], plain["memory"]["weights_bytes"]
    assert q["weights_bytes"] == held and 0 < held < fp32
    roof = quantized["latency"]["roofline"]
    assert roof["weights_bytes"] == held and roof["achieved_bytes_per_s"] > 0
    env = record["environment"]
    assert env["memory_bandwidth_bytes_per_s"] > 0 and env["memory_bandwidth_method"].startswith("numpy-triad")
    assert roof["peak_bytes_per_s"] == env["memory_bandwidth_bytes_per_s"]


def test_static_cache_and_eager_attention_are_recorded(tiny_model_dir, task_dir, tmp_path):
    out = tmp_path / "r"
    code = run_cli(["run", "-m", f"{tiny_model_dir},cache=static,attn=eager", "-t", "tiny-qa",
                    "--tasks-dir", str(task_dir), "--out", str(out), "--device", "cpu", "--warmup", "1"])
    assert code == 0
    record, _ = read_single_run(out)
    [row] = record["rows"]
    assert row["status"] == "ok", row["error"]
    m = row["model"]
    assert m["name"].endswith("[static,eager]") and m["static_cache_len"] == 1024
    assert (m["cache"], m["attn_implementation"], m["compile"]) == ("static", "eager", False)
    assert m["kv_bytes_per_context_token"] == 2 * 2 * 16 * 2 * 4  # layers x kv heads x head dim x K,V x fp32
    assert row["latency"]["roofline"]["mean_context_tokens"] > 0


@pytest.mark.slow
def test_compiled_static_cache_reports_compile_seconds_outside_latency(tiny_model_dir, task_dir, tmp_path):
    """Inductor compiles C++ on the CPU: 20-100 s on 2 cores, hence slow."""
    out = tmp_path / "r"
    code = run_cli(["run", "-m", f"{tiny_model_dir},cache=static,compile=true", "-t", "tiny-qa",
                    "--tasks-dir", str(task_dir), "--out", str(out), "--device", "cpu", "--warmup", "1"])
    assert code == 0
    record, _ = read_single_run(out)
    [row] = record["rows"]
    assert row["status"] == "ok", row["error"]
    m = row["model"]
    assert m["compile"] is True and m["compile_s"] > 0 and m["static_cache_len"] == 1024
    assert "CompileConfig" in m["compile_how"]
    assert m["compile_s"] < m["load_time_s"]  # the compiling generation ran inside load, not in a window
