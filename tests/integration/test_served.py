"""A real OpenAI-compatible server on 127.0.0.1 — `transformers serve` (transformers[serving]) on the tiny
test model, started by the fixture — benchmarked by `llmbench run` beside the same model in process: the
served answers and token counts must equal the in-process ones on the same prompts, at every load level."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("httpx")
pytest.importorskip("fastapi")  # transformers[serving]
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.integration

from cli_helpers import read_single_run, run_cli  # noqa: E402
from served_server import same_text, start_transformers_serve, stop  # noqa: E402


@pytest.fixture(scope="module")
def served_tiny(tiny_model_dir, tmp_path_factory):
    proc, url = start_transformers_serve(tiny_model_dir, tmp_path_factory.mktemp("serve") / "serve.log")
    yield url
    stop(proc)


def test_served_answers_equal_in_process_answers_at_every_level(served_tiny, tiny_model_dir, task_dir, tmp_path):
    out = tmp_path / "r"
    code = run_cli(["run", "-m", f"{served_tiny},name=served,tokenizer={tiny_model_dir}",
                    "-m", f"{tiny_model_dir},name=local", "-t", "tiny-translation", "-t", "tiny-qa",
                    "--tasks-dir", str(task_dir), "--out", str(out), "--device", "cpu", "--concurrency", "1,2",
                    "--slo", "ttft_ms=60000"])
    assert code == 0
    record, samples = read_single_run(out)
    names = [(r["model"]["name"], r["task"]["name"]) for r in record["rows"]]
    assert names == [(m, t) for t in ("tiny-translation", "tiny-qa") for m in ("served", "served@c2")] + [
        ("local", "tiny-translation"), ("local", "tiny-qa")]
    rows = {(r["model"]["name"], r["task"]["name"]): r for r in record["rows"]}
    local = {(s["task"], s["index"]): s for s in samples if s["model"] == "local"}
    for name in ("served", "served@c2"):
        for task in ("tiny-translation", "tiny-qa"):
            row = rows[(name, task)]
            assert row["status"] == "ok", row["error"]
            assert row["model"]["parameters"] == rows[("local", task)]["model"]["parameters"]
            assert row["model"]["server_model"] == str(tiny_model_dir)
            lat = row["latency"]
            assert lat["token_source"] == "server-usage" and lat["requests"]["failed"] == 0
            assert lat["ttft_s"]["p50"] > 0 and lat["output_tokens_per_s"] > 0
            assert lat["goodput"]["met"] == lat["goodput"]["of"] == row["task"]["n"]
            assert lat["max_in_flight"] == (1 if name == "served" else 2)
            assert not row["energy"]["available"] and row["energy"]["reason"]
    served = [s for s in samples if s["model"].startswith("served")]
    assert len(served) == 2 * (3 + 2)
    for s in served:
        ref = local[(s["task"], s["index"])]
        assert same_text(s["prediction"], ref["prediction"]), (s["prediction"], ref["prediction"])
        assert s["new_tokens"] == ref["new_tokens"]  # the server's usage counts what the model generated
        assert s["request_id"] and s["status"] == "ok" and s["chunks"] >= 1
        assert s["client_completion_tokens"] is not None  # re-tokenised text: recorded, may differ
    # the served prompt is the message list the server templated itself
    assert served[0]["prompt"].startswith("[{")


def test_completions_api_with_plain_prompts_matches_in_process(served_tiny, tiny_model_dir, task_dir, tmp_path):
    out = tmp_path / "r"
    code = run_cli(["run", "-m", f"{served_tiny},name=served", "-m", f"{tiny_model_dir},name=local",
                    "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out), "--device", "cpu",
                    "--no-chat-template", "--warmup", "0"])
    assert code == 0
    record, samples = read_single_run(out)
    served = [s for s in samples if s["model"] == "served"]
    local = {s["index"]: s for s in samples if s["model"] == "local"}
    assert record["rows"][0]["model"]["parameters"] is None  # not declared, no tokenizer: unknown, not guessed
    for s in served:
        assert s["prompt"] == local[s["index"]]["prompt"]
        assert same_text(s["prediction"], local[s["index"]]["prediction"])
        assert s["new_tokens"] == local[s["index"]]["new_tokens"]


def test_a_model_name_the_server_does_not_serve_is_one_line_exit_2(served_tiny, task_dir, tmp_path, capsys):
    code = run_cli(["run", "-m", f"{served_tiny},model=tiny-llam", "-t", "tiny-qa", "--tasks-dir", str(task_dir),
                    "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not serve model 'tiny-llam'" in err
