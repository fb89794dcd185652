"""`llmbench run` on a served model (a stub OpenAI server on 127.0.0.1) beside a toy in-process backend:
load levels as rows, bad input as one line and exit 2 before anything is measured, failures mid-run kept,
the API key never in a record, and `llmbench --help` free of HTTP clients."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("httpx_sse")

from fakes.instant_backend import InstantBackend  # noqa: E402
from openai_stub import Stream, StubServer, default_answer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = [("2+2?", "4"), ("Capital of France?", "Paris"), ("Colour of the sky?", "blue"),
             ("3+3?", "6"), ("Largest ocean?", "Pacific"), ("Opposite of hot?", "cold")]


class ToyBackend(InstantBackend):
    """An instant in-process backend (no torch) registered as ``toy``."""

    name = "toy"

    def generate(self, loaded, prompts, params, sync=None):
        from llmbench.models.base import Generation

        return [Generation(p, "4", 2, 0.01, 0.02) for p in prompts]


@pytest.fixture(autouse=True)
def toy_backend():
    from llmbench.models import BACKENDS

    BACKENDS.register("toy", ToyBackend)
    yield
    BACKENDS.unregister("toy")


@pytest.fixture()
def tasks_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tasks"
    (d / "data").mkdir(parents=True)
    (d / "data" / "q.jsonl").write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in QUESTIONS))
    (d / "qa.yaml").write_text("name: qa\nkind: extraction\nsource: {type: jsonl, path: data/q.jsonl}\n"
                               "prompt: 'Q: {{ q }}'\nreferences: a\nmetrics: [exact_match, f1]\n"
                               "generation: {max_new_tokens: 16, stop: []}\n")
    return d


def _cli(args) -> int:
    from llmbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    return info.value.code


def _run(tmp_path, tasks_dir, *args) -> list[str]:
    return ["run", "-t", "qa", "--tasks-dir", str(tasks_dir), "--out", str(tmp_path / "out"), *args]


def _record(tmp_path) -> tuple[dict, list[dict]]:
    [run_dir] = (tmp_path / "out").iterdir()
    samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    return json.loads((run_dir / "run.json").read_text()), samples


def _slow(delay: float):
    def answer(body):
        s = default_answer(body)
        s.gap_s = delay
        return s
    return answer


def test_concurrency_levels_are_rows_and_the_server_never_sees_more_in_flight(tmp_path, tasks_dir, capsys):
    with StubServer(answer=_slow(0.03)) as stub:
        code = _cli(_run(tmp_path, tasks_dir, "-m", f"{stub.url},name=served", "-m", "toy,backend=toy",
                         "--concurrency", "1,4", "--warmup", "0"))
        max_seen = stub.max_in_flight
    assert code == 0
    record, samples = _record(tmp_path)
    rows = {r["model"]["name"]: r for r in record["rows"]}
    assert list(rows) == ["served", "served@c4", "toy"]
    assert "toy: in-process, so it runs its latency setting only" in " ".join(capsys.readouterr().err.split())
    assert 2 <= max_seen <= 4  # six prompts at concurrency 4: the stub saw at most 4 of ours at once
    c1, c4 = rows["served"], rows["served@c4"]
    assert c1["model"]["load"]["concurrency"] == 1 and c1["model"]["load"]["max_in_flight"] == 1
    assert c4["model"]["load"] | {"duration_s": 0} == {"concurrency": 4, "rate": None, "arrivals": "closed-loop",
                                                       "duration_s": 0, "requests": 6, "max_in_flight": 4,
                                                       "seed": None}
    assert c4["model"]["base_name"] == "served" and "load" not in rows["toy"]["model"]
    for row in (c1, c4):
        lat = row["latency"]
        assert lat["requests"] == {"sent": 6, "ok": 6, "failed": 0}
        assert lat["requests_per_s"] > 0 and lat["output_tokens_per_s"] > 0 and lat["ttft_s"]["ci_low"] is not None
        assert lat["token_source"] == "server-usage" and row["quality"]["exact_match"]["n"] == 6
        # no roofline percentage for a served row, and the reason instead of a silent gap
        assert lat["roofline"]["percent_of_peak"] is None and lat["roofline"]["tpot_s_p50"] == lat["tpot_s"]["p50"]
        assert "not visible to the client" in lat["roofline"]["reason"]
        # requests overlap: generation time is the level's wall, not the sum of the e2e times
        assert lat["generate_s"] == lat["duration_s"] and lat["e2e_tokens_per_s"] == lat["output_tokens_per_s"]
    assert c1["latency"]["setting"] == "latency" and c4["latency"]["setting"] == "load"
    # at concurrency 4 the level takes well under the sequential time
    assert c4["model"]["load"]["duration_s"] < c1["model"]["load"]["duration_s"]
    assert record["settings"]["load"]["levels"][1]["suffix"] == "@c4"
    served = [s for s in samples if s["model"].startswith("served")]
    assert len(served) == 12 and all(s["request_id"].startswith("req-") and s["status"] == "ok" for s in served)
    assert {s["model"] for s in served} == {"served", "served@c4"}
    assert all(s["chunk_times_s"] and s["new_tokens"] == s["server_completion_tokens"] for s in served)


def test_a_rate_level_with_an_slo_records_goodput(tmp_path, tasks_dir):
    with StubServer() as stub:
        code = _cli(_run(tmp_path, tasks_dir, "-m", stub.url, "--rate", "40", "--slo", "ttft_ms=5000,tpot_ms=1000",
                         "--seed", "3"))
    assert code == 0
    record, _ = _record(tmp_path)
    [row] = record["rows"]
    assert row["model"]["name"] == stub.url.split("/")[2] + "@r40"  # no name=, no model=: host:port
    assert row["model"]["server_model"] == "stub-model"  # the only model /models lists
    assert row["model"]["load"]["rate"] == 40 and row["model"]["load"]["arrivals"] == "poisson"
    assert row["model"]["load"]["seed"] == 3
    good = row["latency"]["goodput"]
    assert good["slo"] == {"ttft_s": 5.0, "tpot_s": 1.0} and good["met"] == good["of"] == 6
    assert good["requests_per_s"] == pytest.approx(row["latency"]["requests_per_s"])


def test_replicas_share_the_requests(tmp_path, tasks_dir):
    with StubServer() as a, StubServer() as b:
        assert _cli(_run(tmp_path, tasks_dir, "-m", f"{a.url},urls={b.url}", "--warmup", "0")) == 0
        assert len(a.requests) == 3 and len(b.requests) == 3
    record, samples = _record(tmp_path)
    assert record["rows"][0]["model"]["replicas"] == [a.url, b.url]
    assert [s["replica"] for s in samples] == [a.url, b.url] * 3


def test_the_api_key_is_sent_but_never_recorded(tmp_path, tasks_dir, monkeypatch):
    secret = "sk-llmbench-test-0123456789"
    monkeypatch.setenv("STUB_KEY", secret)
    with StubServer(api_key=secret) as stub:
        assert _cli(_run(tmp_path, tasks_dir, "-m", f"{stub.url},api_key_env=STUB_KEY")) == 0
        assert stub.headers[0]["Authorization"] == f"Bearer {secret}"
    [run_dir] = (tmp_path / "out").iterdir()
    for f in run_dir.iterdir():
        assert secret not in f.read_text(), f.name
    assert "api_key_env=STUB_KEY" in json.loads((run_dir / "run.json").read_text())["rows"][0]["model"]["spec"]


def test_failed_requests_are_kept_the_row_fails_with_counts_and_other_models_go_on(tmp_path, tasks_dir, capsys):
    def answer(body):
        if "France" in json.dumps(body) or "ocean" in json.dumps(body):
            return Stream(status=500, error_body={"error": {"message": "engine crashed"}})
        return default_answer(body)

    with StubServer(answer=answer) as stub:
        code = _cli(_run(tmp_path, tasks_dir, "-m", f"{stub.url},name=served", "-m", "toy,backend=toy",
                         "--warmup", "0"))
    assert code == 3
    record, samples = _record(tmp_path)
    served, toy = record["rows"]
    assert served["status"] == "failed" and toy["status"] == "ok"
    assert served["error"].startswith("2 of 6 requests failed (first: HTTP 500: engine crashed)")
    assert served["latency"]["requests"] == {"sent": 6, "ok": 4, "failed": 2}
    assert served["quality"]["exact_match"]["n"] == 4  # over the answered ones
    bad = [s for s in samples if s["model"] == "served" and s["status"] == "error"]
    assert [s["index"] for s in bad] == [1, 4] and all(s["http_status"] == 500 and s["scores"] == {} for s in bad)


def test_a_server_that_is_gone_fails_every_level_and_the_run_goes_on(tmp_path, tasks_dir):
    from llmbench import runner
    from llmbench.config import LoadConfig, ModelSpec, RunConfig

    stub = StubServer().__enter__()
    spec = ModelSpec.parse(f"{stub.url},name=served")
    config = RunConfig(models=(spec, ModelSpec.parse("toy,backend=toy")), tasks=("qa",), tasks_dirs=(tasks_dir,),
                       out_dir=tmp_path / "out", warmup=0, load=LoadConfig(concurrency=(1, 2)))
    real_load = runner.BACKENDS.get("openai").load

    def load_then_die(self, prepared, device, note=lambda m: None):
        loaded = real_load(self, prepared, device, note)
        stub.__exit__(None, None, None)  # preflight passed; the server dies before the first request
        return loaded

    import llmbench.models.openai_http as oh

    original = oh.OpenAIBackend.load
    oh.OpenAIBackend.load = load_then_die
    try:
        result = runner.run(config)
    finally:
        oh.OpenAIBackend.load = original
    rows = result.record.rows
    assert [(r.model["name"], r.status) for r in rows] == [("served", "failed"), ("served@c2", "failed"),
                                                           ("toy", "ok")]
    assert rows[0].error.startswith("6 of 6 requests failed (first: ConnectError")
    assert rows[0].latency["requests"]["failed"] == 6 and rows[0].quality == {}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("spec, extra, expected", [
    ("{url},model=stub-modle", [], "does not serve model 'stub-modle' (it serves: stub-model); did you mean "
                                   "stub-model?"),
    ("{url},api_key_env=LLMBENCH_NO_SUCH_VAR", [], "api_key_env=LLMBENCH_NO_SUCH_VAR but the environment "
                                                   "variable LLMBENCH_NO_SUCH_VAR is not set"),
    ("{url},api=grpc", [], "api must be chat or completions, not 'grpc'"),
    ("{url},parameters=lots", [], "parameters must be a count such as 134515008, 135M or 7B"),
    ("{url},api_key_env=sk-abc", [], "api_key_env takes the NAME of an environment variable"),
    ("{url},urls=ftp://x", [], "'ftp://x' is not an http(s):// URL"),
    ("{url},dtype=bfloat16", [], "unknown option 'dtype=bfloat16'"),
    ("http://user:pw@127.0.0.1:1/v1", [], "put no credentials in the URL"),
    ("{url}?api_key=sk-in-url", [], "put no credentials in the URL (?api_key="),
    ("{url},urls=http://127.0.0.1:1/v1?token=t0k", [], "put no credentials in the URL (?token="),
    ("{url}", ["--gpu-telemetry", "http://127.0.0.1:1/metrics?key=k3y"], "--gpu-telemetry: put no credentials"),
    ("{url}", ["--concurrency", "0,4"], "--concurrency '0,4': give positive integers"),
    ("{url}", ["--rate", "fast"], "--rate 'fast': give requests per second as positive numbers"),
    ("{url}", ["--slo", "ttft=3"], "--slo 'ttft=3': unknown bound 'ttft=3'"),
    ("{url}", ["--request-timeout", "0"], "--request-timeout must be a positive number"),
    ("{url}", ["--lm-eval", "hellaswag"], "--lm-eval runs on in-process models only"),
    ("{url}", ["--gpu-telemetry", "http://127.0.0.1:{closed}/metrics"], "--gpu-telemetry http://127.0.0.1:"),
    ("{url},api=chat", ["--no-chat-template"], "api=chat always applies the server's chat template"),
    ("http://127.0.0.1:{closed}/v1", [], "cannot reach http://127.0.0.1:{closed}/v1"),
    ("{root}", [], "/models not found (HTTP 404): give the OpenAI-compatible base URL; did you mean"),
])
def test_bad_served_input_is_one_line_and_exit_2_before_anything_runs(spec, extra, expected, tmp_path, tasks_dir,
                                                                      capsys):
    closed = _closed_port()
    with StubServer() as stub:
        fill = {"url": stub.url, "root": stub.url[:-3], "closed": closed}
        code = _cli(_run(tmp_path, tasks_dir, "-m", spec.format(**fill), *[e.format(**fill) for e in extra]))
        assert stub.requests == []  # nothing was generated
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert expected.format(**fill) in " ".join(err.split())
    assert not any(secret in err for secret in ("pw@", "sk-in-url", "t0k", "k3y"))  # never echoed
    assert not (tmp_path / "out").exists()


def test_a_wrong_api_key_is_one_line_exit_2(tmp_path, tasks_dir, capsys, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "wrong")
    with StubServer(api_key="right") as stub:
        code = _cli(_run(tmp_path, tasks_dir, "-m", f"{stub.url},api_key_env=STUB_KEY"))
    err = capsys.readouterr().err
    assert code == 2 and "refused the request (HTTP 401)" in err and len(err.strip().splitlines()) == 1


def test_several_served_models_need_a_model_name(tmp_path, tasks_dir, capsys):
    with StubServer(models=("a", "b")) as stub:
        code = _cli(_run(tmp_path, tasks_dir, "-m", stub.url))
    assert code == 2 and "serves 2 models (a, b); name one with model=NAME" in capsys.readouterr().err


def test_one_new_tokens_value_is_every_served_requests_budget_and_a_sweep_is_refused(tmp_path, tasks_dir, capsys):
    with StubServer() as stub:
        assert _cli(_run(tmp_path, tasks_dir, "-m", stub.url, "--new-tokens", "3", "--warmup", "0")) == 0
        budgets = {body.get("max_tokens", body.get("max_completion_tokens")) for body in stub.requests}
    assert budgets == {3}
    [row] = _record(tmp_path)[0]["rows"]
    assert row["task"]["max_new_tokens"] == 3
    with StubServer() as stub:
        assert _cli(_run(tmp_path / "s", tasks_dir, "-m", stub.url, "--new-tokens", "3,6")) == 2
        assert stub.requests == []


def test_a_server_that_lists_no_models_is_asked_for_the_named_one(tmp_path, tasks_dir, capsys):
    # transformers serve 5.17 lists only hub-cache models, yet serves the local folder it was started on
    with StubServer(listed=False) as stub:
        assert _cli(_run(tmp_path, tasks_dir, "-m", stub.url)) == 2  # no name to ask for: one line, exit 2
        assert "serves 0 models (none); name one with model=NAME" in capsys.readouterr().err
        code = _cli(_run(tmp_path, tasks_dir, "-m", f"{stub.url},model=stub-model,name=s", "--warmup", "0"))
    assert code == 0
    record, _ = _record(tmp_path)
    [row] = record["rows"]
    assert row["status"] == "ok" and row["model"]["server_model"] == "stub-model"
    assert row["model"]["server"] == {"id": "stub-model", "listed": False}  # the record says it was not listed
    with StubServer(listed=False) as stub:  # a wrong name is then found by the requests, not before them
        code = _cli(_run(tmp_path / "w", tasks_dir, "-m", f"{stub.url},model=stub-modle,name=w", "--warmup", "0"))
    [row] = _record(tmp_path / "w")[0]["rows"]
    assert code == 3 and row["status"] == "failed" and "HTTP 404" in row["error"]


def test_help_and_served_spec_parsing_import_neither_torch_nor_an_http_client():
    script = (
        "import sys\n"
        "from llmbench.cli import main\n"
        "from llmbench.config import ModelSpec\n"
        "ModelSpec.parse('http://127.0.0.1:8000/v1,model=m,api=chat')\n"
        "for args in (['--help'], ['run', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'transformers', 'httpx', 'httpx_sse', 'prometheus_client')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('LIGHT-OK')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "LIGHT-OK" in proc.stdout and "--concurrency" in proc.stdout


def test_served_spec_options_and_names():
    from llmbench.config import ModelSpec

    spec = ModelSpec.parse("http://h:8000/v1,model=org/Some-Model-7B,parameters=7.2B,api=completions")
    assert spec.backend == "openai" and spec.name == "Some-Model-7B"
    assert spec.option("parameters") == 7_200_000_000 and spec.option("api") == "completions"
    assert ModelSpec.parse("https://h:8443/v1").name == "h:8443"
    assert ModelSpec.parse("http://h/v1,name=mine,parameters=134515008").name == "mine"
    assert ModelSpec.parse("http://h/v1,urls=http://a/v1;http://b/v1/").option("urls") == ("http://a/v1",
                                                                                          "http://b/v1")


def test_an_api_key_is_stripped_and_one_that_is_not_printable_ascii_is_refused_unprinted(tmp_path, tasks_dir,
                                                                                          capsys, monkeypatch):
    from llmbench.models.openai_http import api_key

    class Spec:
        name = "m"

        def __init__(self, var):
            self.var = var

        def option(self, key, default=None):
            return self.var if key == "api_key_env" else default

    monkeypatch.setenv("STUB_KEY", "  sk-ok\n")
    assert api_key(Spec("STUB_KEY")) == "sk-ok"
    monkeypatch.setenv("STUB_KEY", "sk-h\u00e9llo")
    with StubServer(api_key="x") as stub:
        code = _cli(_run(tmp_path, tasks_dir, "-m", f"{stub.url},api_key_env=STUB_KEY"))
    err = capsys.readouterr().err
    assert code == 2 and "not printable ASCII" in err and "h\u00e9llo" not in err and len(err.strip().splitlines()) == 1


def test_the_api_key_is_redacted_from_error_text_a_gateway_echoes():
    import asyncio

    import httpx

    from llmbench.config import LoadLevel
    from llmbench.models.openai_load import run_level
    from llmbench.models.openai_stream import build_payload, endpoint

    echo = Stream(status=401, error_body={"error": {"message": "bad header Authorization: Bearer sk-SECRET-9"}})
    with StubServer(answer=lambda body: echo) as stub:
        body = build_payload("completions", "stub-model", "hi", 4, (), 0)

        async def go():
            async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer sk-SECRET-9"}) as client:
                return await run_level(client, [(stub.url, endpoint(stub.url, "completions"), body)],
                                       LoadLevel(1), 0, 30.0)

        result = asyncio.run(go()).results[0]
    assert result.error == "HTTP 401: bad header Authorization: Bearer ***"
