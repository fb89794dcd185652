"""A real OpenAI-compatible server on 127.0.0.1 — `transformers serve` (transformers[serving]) on the tiny
test model, started by the fixture — benchmarked by `llmbench run` beside the same model in process: the
served answers and token counts must equal the in-process ones on the same prompts, at every load level."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("httpx")
pytest.importorskip("fastapi")  # transformers[serving]
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.integration

from cli_helpers import read_single_run, run_cli  # noqa: E402

SERVE = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; sys.exit(main())"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_transformers_serve(model_dir: Path, log: Path, timeout_s: float = 180.0):
    """``transformers serve MODEL_DIR`` on a free 127.0.0.1 port, waited for until /health answers; returns
    (process, base URL). Offline: the model is a local directory."""
    import httpx

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--log-level", "warning"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"transformers serve did not answer within {timeout_s} s: {log.read_text()[-2000:]}")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def served_tiny(tiny_model_dir, tmp_path_factory):
    proc, url = start_transformers_serve(tiny_model_dir, tmp_path_factory.mktemp("serve") / "serve.log")
    yield url
    stop(proc)


def _same_text(served: str, local: str) -> bool:
    # the server's streaming decoder holds back a trailing incomplete UTF-8 sequence (random weights make
    # plenty) that the in-process decode shows as U+FFFD
    return served.rstrip("\ufffd").strip() == local.rstrip("\ufffd").strip()


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
        assert _same_text(s["prediction"], ref["prediction"]), (s["prediction"], ref["prediction"])
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
        assert _same_text(s["prediction"], local[s["index"]]["prediction"])
        assert s["new_tokens"] == local[s["index"]]["new_tokens"]


def test_a_model_name_the_server_does_not_serve_is_one_line_exit_2(served_tiny, task_dir, tmp_path, capsys):
    code = run_cli(["run", "-m", f"{served_tiny},model=tiny-llam", "-t", "tiny-qa", "--tasks-dir", str(task_dir),
                    "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not serve model 'tiny-llam'" in err
