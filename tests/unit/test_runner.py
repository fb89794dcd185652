"""Runner decisions that need no model."""

from __future__ import annotations


def test_warmup_is_full_length_on_cuda_and_short_on_cpu():
    from llmbench.meters.timing import warmup_new_tokens

    # an 8-step warm-up left the first measured CUDA sample ~3x slower per token (docs/gpu.md)
    assert warmup_new_tokens("cuda:0", 64) == 64
    assert warmup_new_tokens("cpu", 64) == 8
    assert warmup_new_tokens("cpu", 4) == 4


def _warm_up_calls(device: str, warmup: int, batch_size: int) -> list[tuple[list[str], int]]:
    from types import SimpleNamespace

    from llmbench.models.base import GenerateParams
    from llmbench.task_rows import warm_up

    calls = []

    class Recorder:
        def generate(self, model, prompts, params, sync=None):
            calls.append((list(prompts), params.max_new_tokens))
            return []

    ctx = SimpleNamespace(config=SimpleNamespace(warmup=warmup), device=device, backend=Recorder(), loaded=None,
                          sync=None)
    warm_up(ctx, ["p0", "p1", "p2"], GenerateParams(32, ("\n",), batch_size, 0))
    return calls


def test_cuda_warm_up_prefills_every_measured_batch_once():
    # on an H200 the first prefill of each prompt length cost 60-90 ms against 15 ms for a repeat (docs/gpu.md)
    assert _warm_up_calls("cuda:0", 1, 1) == [(["p0"], 32), (["p0"], 1), (["p1"], 1), (["p2"], 1)]
    assert _warm_up_calls("cuda:0", 2, 2) == [(["p0", "p1"], 32), (["p2"], 32)] * 2 + [(["p0", "p1"], 1),
                                                                                     (["p2"], 1)]


def test_a_smaller_last_batch_is_warmed_up_too():
    """A compiled decode step compiles again for a new batch size: the last batch of 3 prompts at batch 2 (one
    prompt) is warmed up like the first, so no compilation falls in the measured window."""
    assert _warm_up_calls("cpu", 1, 2) == [(["p0", "p1"], 8), (["p2"], 8)]
    assert _warm_up_calls("cpu", 1, 3) == [(["p0", "p1", "p2"], 8)]  # one batch: one shape
    assert _warm_up_calls("cpu", 1, 4) == [(["p0", "p1", "p2"], 8)]  # fewer prompts than the batch


def test_cpu_warm_up_and_no_warm_up_prefill_nothing():
    assert _warm_up_calls("cpu", 1, 1) == [(["p0"], 8)]
    assert _warm_up_calls("cuda:0", 0, 1) == []  # --warmup 0 means no warm-up at all, on CUDA too


def test_transformers_streams_each_token_without_delay_on_cuda_and_cpu():
    """TTFT comes from the streamer's first put. transformers' DeferredStopCheck streams one step late and is
    enabled on `mps` only; if a release enables it for CUDA or the CPU, TTFT would include an extra step, so
    this canary fails and the TTFT clock must be revisited."""
    import pytest

    torch = pytest.importorskip("torch")
    utils = pytest.importorskip("transformers.generation.utils")
    deferred = getattr(utils, "DeferredStopCheck", None)
    if deferred is None:  # older transformers: every token is streamed as soon as it is sampled
        return
    for device in ("cuda", "cpu"):
        assert deferred.is_supported(torch.device(device), None, False, False) is False, device


# ---------------------------------------------------------------------------------------------------------
# Model specs and run options: bad input is one UserError before anything is loaded


import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from fakes.instant_backend import InstantBackend  # noqa: E402

from llmbench.config import ModelSpec, RunConfig  # noqa: E402
from llmbench.errors import UserError  # noqa: E402


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("text, expected", [
    ("x,device_map=weird", "device_map must be one of auto, balanced, balanced_low_0, sequential, cpu, cuda"),
    ("x,device_map=disk", "not 'disk'"),
    ("x,dtype=float32,dtype=bfloat16", "option dtype= is given twice"),
    ("x,name=a,name=b", "option name= is given twice"),
    ("x,name=", "option name= needs a value"),
    ("x,revision=", "option revision= needs a value"),
    ("x,gguf_file= ", "option gguf_file= needs a value"),
])
def test_bad_model_spec_options(text, expected):
    assert expected in _message(ModelSpec.parse, text)


@pytest.mark.parametrize("value", ["auto", "balanced", "balanced_low_0", "sequential", "cpu", "cuda", "cuda:1",
                                   "mps"])
def test_device_map_values_transformers_accepts(value):
    assert ModelSpec.parse(f"x,device_map={value}").option("device_map") == value


def test_two_models_with_the_same_name_are_refused_with_a_hint():
    message = _message(RunConfig, models=(ModelSpec.parse("smollm2-135m"), ModelSpec.parse("smollm2-135m")))
    assert "two models are named 'smollm2-135m'" in message and "name=LABEL" in message
    message = _message(RunConfig, models=(ModelSpec.parse("a/model"), ModelSpec.parse("b/model,dtype=float16")))
    assert "'model'" in message and "-m 'b/model,dtype=float16,name=model-2'" in message
    RunConfig(models=(ModelSpec.parse("smollm2-135m"), ModelSpec.parse("smollm2-135m,name=other")))


def test_lm_eval_include_without_lm_eval_is_refused(tmp_path):
    message = _message(RunConfig, models=(ModelSpec.parse("x"),), lm_eval_include=tmp_path)
    assert "--lm-eval-include" in message and "--lm-eval" in message


def _model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def test_preflight_refuses_a_regular_file_as_model(tmp_path):
    from llmbench.runner import preflight_model

    f = tmp_path / "afile"
    f.write_text("not a model")
    assert "is a file, not a model directory" in _message(preflight_model, ModelSpec.parse(str(f)))
    g = tmp_path / "m.gguf"
    g.write_text("")
    assert f"use {tmp_path},gguf_file=m.gguf" in _message(preflight_model, ModelSpec.parse(str(g)))


def test_preflight_checks_a_local_gguf_file(tmp_path):
    from llmbench.runner import preflight_model

    d = _model_dir(tmp_path)
    message = _message(preflight_model, ModelSpec.parse(f"{d},gguf_file=x.gguf"))
    assert message == f"model {d}: gguf_file x.gguf not found in {d}" and "huggingface.co" not in message
    (d / "x.gguf").write_bytes(b"GGUF")
    assert preflight_model(ModelSpec.parse(f"{d},gguf_file=x.gguf")).source == str(d)


@pytest.mark.parametrize("option", ["gguf_file=x.gguf", "revision=main"])
def test_preflight_refuses_options_an_embedded_alias_would_ignore(option):
    from llmbench.runner import preflight_model

    message = _message(preflight_model, ModelSpec.parse(f"smollm2-135m,{option}"))
    assert message.startswith(f"model smollm2-135m: {option.split('=')[0]}= does not apply to an embedded alias")


def test_preflight_refuses_revision_for_a_local_directory(tmp_path):
    from llmbench.runner import preflight_model

    d = _model_dir(tmp_path)
    assert "revision= applies to hub ids only" in _message(preflight_model, ModelSpec.parse(f"{d},revision=v1"))


# ---------------------------------------------------------------------------------------------------------
# Run directories


def test_run_directories_are_created_exclusively(tmp_path, monkeypatch):
    """Two runs in the same second with the same --name must not share (and overwrite) one directory."""
    from llmbench.records import schema as records

    monkeypatch.setattr(records, "new_run_id", lambda label=None: f"20250101-120000-{label}")
    ids = [records.create_run_dir(tmp_path / "out", "same") for _ in range(3)]
    assert ids == ["20250101-120000-same", "20250101-120000-same-2", "20250101-120000-same-3"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ids


# ---------------------------------------------------------------------------------------------------------
# The runner with a fake backend (no torch): scoring failures and exit codes


class _FakeBackend(InstantBackend):
    """Answers 'A(<prompt>)' instantly; enough for the runner's bookkeeping."""

    def generate(self, loaded, prompts, params, sync=None):
        from llmbench.models.base import Generation

        return [Generation(p, f"A({p})", 3, 0.01, 0.03) for p in prompts]


def _tasks_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tasks"
    (d / "data").mkdir(parents=True)
    (d / "data" / "d.jsonl").write_text('{"q": "2+2?", "a": "4"}\n{"q": "Capital of France?", "a": "Paris"}\n')
    for name in ("t-a", "t-b", "t-c"):
        (d / f"{name}.yaml").write_text(
            f"name: {name}\nkind: extraction\nsource: {{type: jsonl, path: data/d.jsonl}}\n"
            "prompt: 'Q: {{ q }}'\nreferences: a\nmetrics: [f1]\n")
    return d


@pytest.fixture()
def no_torch_device(monkeypatch):
    import llmbench.models.hf as hf

    monkeypatch.setattr(hf, "resolve_device", lambda device: "cpu")


def test_a_scoring_error_becomes_a_failed_row_and_the_run_goes_on(tmp_path, monkeypatch, no_torch_device):
    """A metric raising after generation must not lose the generations or stop later tasks."""
    import llmbench.metrics
    from llmbench import runner

    real = llmbench.metrics.evaluate
    calls = []

    def evaluate(names, preds, refs, seed=0, **kw):
        calls.append(preds)
        if len(calls) == 2:  # the second task's scoring breaks
            raise ValueError("metric exploded")
        return real(names, preds, refs, seed=seed, **kw)

    monkeypatch.setattr(llmbench.metrics, "evaluate", evaluate)
    config = RunConfig(models=(ModelSpec.parse(str(_model_dir(tmp_path))),), tasks=("t-a", "t-b", "t-c"),
                       tasks_dirs=(_tasks_dir(tmp_path),), out_dir=tmp_path / "out", warmup=0, device="cpu")
    result = runner.run(config, backend=_FakeBackend())
    rows = {r.task["name"]: r for r in result.record.rows}
    assert [r.status for r in result.record.rows] == ["ok", "failed", "ok"]
    failed = rows["t-b"]
    assert failed.error == "scoring failed: ValueError: metric exploded"
    assert failed.task["n"] == 2 and failed.quality == {} and failed.latency["ttft_s"]["n"] == 2
    on_disk = json.loads(result.path.read_text())
    assert [r["status"] for r in on_disk["rows"]] == ["ok", "failed", "ok"]
    samples = [json.loads(x) for x in (result.path.parent / "samples.jsonl").read_text().splitlines()]
    assert [s["prediction"] for s in samples if s["task"] == "t-b"] == ["A(Q: 2+2?)", "A(Q: Capital of France?)"]
    assert all(s["scores"] == {} for s in samples if s["task"] == "t-b")
    assert all("f1" in s["scores"] for s in samples if s["task"] != "t-b")


def test_two_runs_in_the_same_second_with_the_same_name_keep_both_records(tmp_path, monkeypatch, no_torch_device):
    from llmbench import runner
    from llmbench.records import schema as records

    fixed = lambda label=None: f"20250101-120000-{label}"  # noqa: E731
    monkeypatch.setattr(records, "new_run_id", fixed)
    config = RunConfig(models=(ModelSpec.parse(str(_model_dir(tmp_path))),), tasks=("t-a",), name="nightly",
                       tasks_dirs=(_tasks_dir(tmp_path),), out_dir=tmp_path / "out", warmup=0, device="cpu")
    first = runner.run(config, backend=_FakeBackend())
    second = runner.run(config, backend=_FakeBackend())
    assert (first.record.run_id, second.record.run_id) == ("20250101-120000-nightly", "20250101-120000-nightly-2")
    assert first.path != second.path and first.path.is_file() and second.path.is_file()
    assert json.loads(first.path.read_text())["run_id"] == "20250101-120000-nightly"


def _cli(args, monkeypatch) -> int:
    """`llmbench ARGS` in-process with the fake backend; its exit code."""
    from llmbench import runner
    from llmbench.cli import main

    if not getattr(runner.run, "fake_backend", False):
        real_run = runner.run

        def run(config, progress=None):
            return real_run(config, _FakeBackend(), progress)

        run.fake_backend = True
        monkeypatch.setattr(runner, "run", run)
    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    return info.value.code


def test_run_exits_3_when_a_row_failed_and_0_when_all_are_ok(tmp_path, monkeypatch, no_torch_device, capsys):
    model, tasks = _model_dir(tmp_path), _tasks_dir(tmp_path)
    base = ["run", "-m", str(model), "-t", "t-a", "-t", "t-b", "--tasks-dir", str(tasks), "--warmup", "0"]
    assert _cli([*base, "--out", str(tmp_path / "ok")], monkeypatch) == 0

    def generate(self, loaded, prompts, *a, **k):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(_FakeBackend, "generate", generate)
    capsys.readouterr()
    assert _cli([*base, "--out", str(tmp_path / "bad")], monkeypatch) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert "2 of 2 rows failed" in err[-1] and "exit code 3" in err[-1]
    [run_dir] = (tmp_path / "bad").iterdir()
    assert [r["status"] for r in json.loads((run_dir / "run.json").read_text())["rows"]] == ["failed", "failed"]


@pytest.mark.parametrize("args, expected", [
    (["--lm-eval", ""], "--lm-eval '': give at least one lm-eval task name"),
    (["--lm-eval", ",,"], "--lm-eval ',,': give at least one lm-eval task name"),
    (["--lm-eval-include", "."], "--lm-eval-include only applies with --lm-eval TASKS"),
    (["-m", "x,device_map=weird"], "device_map must be one of"),
    (["-m", "smollm2-135m"], "two models are named 'smollm2-135m'"),
    (["--name", ""], "'--name': is empty"),
    (["--name", "  "], "'--name': is empty"),
])
def test_bad_run_options_are_one_line_and_exit_2(args, expected, tmp_path, monkeypatch, capsys):
    code = _cli(["run", "-m", "smollm2-135m", *args, "--out", str(tmp_path / "r")], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert not (tmp_path / "r").exists()


def test_duplicate_name_hint_is_a_spec_that_parses():
    from llmbench.config import ModelSpec, RunConfig
    from llmbench.errors import UserError

    with pytest.raises(UserError) as info:
        RunConfig(models=(ModelSpec.parse("a,name=x"), ModelSpec.parse("b,dtype=float32,name=x")))
    hint = str(info.value).split("-m '")[1].rstrip("'")
    assert hint == "b,dtype=float32,name=x-2"
    assert ModelSpec.parse(hint).name == "x-2"


def test_one_token_answers_have_no_decode_throughput_rather_than_zero():
    from llmbench.meters.timing import latency_summary
    from llmbench.models.base import Generation

    def _latency(gens, batch_size, seed):
        return latency_summary(gens, batch_size, seed, "test")

    one_token = [Generation("p", "a", 1, 0.05, 0.052), Generation("q", "b", 1, 0.04, 0.041)]
    lat = _latency(one_token, 1, 0)
    assert lat["tokens_per_s"] is None and lat["tpot_s"]["mean"] is None
    assert lat["e2e_tokens_per_s"] == 2 / (0.052 + 0.041)
    two = _latency([Generation("p", "ab", 2, 0.05, 0.07)], 1, 0)
    assert two["tokens_per_s"] == 1 / (0.07 - 0.05)
