"""A new backend is one class plus one registration: a toy backend defined here runs through the CLI (no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Mapping

import pytest
from cli_helpers import read_single_run, run_cli

from llmbench.config import ModelSpec
from llmbench.errors import UserError
from llmbench.models import BACKENDS
from llmbench.models.base import GenerateParams, Generation, LoadedModel, PreparedModel


class ToyBackend:
    """Echoes the last word of each prompt, 2 tokens, fixed timings; takes one option of its own."""

    name: ClassVar[str] = "toy"
    option_keys: ClassVar[tuple[str, ...]] = ("suffix",)
    calls: ClassVar[list[str]] = []

    @classmethod
    def parse_options(cls, text: str, options: Mapping[str, str]) -> dict:
        if options.get("suffix") == "bad":
            raise UserError(f"model spec {text!r}: suffix must not be 'bad'")
        return dict(options)

    def preflight(self, spec: ModelSpec) -> PreparedModel:
        self.calls.append("preflight")
        if spec.source == "missing":
            raise UserError(f"model {spec.source}: the toy backend has no such model")
        return PreparedModel(spec, spec.source)

    def resolve_device(self, requested: str) -> str:
        return "cpu"

    def load(self, prepared: PreparedModel, device: str, note) -> LoadedModel:
        self.calls.append("load")
        note(f"toy: loading {prepared.source}")
        spec = prepared.spec
        return LoadedModel(spec=spec, name=spec.name, parameters=7, weights_bytes=28, dtype="toy", device=device,
                           source=prepared.source, has_chat_template=False, info={"toy_version": "1"})

    def render(self, model: LoadedModel, messages: list[dict], plain: str) -> str:
        return plain

    def generate(self, model: LoadedModel, prompts, params: GenerateParams, sync=None) -> list[Generation]:
        self.calls.append("generate")
        suffix = model.spec.option("suffix", "")
        return [Generation(p, p.split()[-1].rstrip("?") + suffix, 2, 0.01, 0.03, extra={"toy_words": len(p.split())})
                for p in prompts]

    def unload(self, model: LoadedModel) -> None:
        self.calls.append("unload")


@pytest.fixture()
def toy_backend():
    BACKENDS.register("toy", ToyBackend)  # the one registration a plugin needs
    ToyBackend.calls.clear()
    yield ToyBackend
    BACKENDS.unregister("toy")


def _tasks_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tasks"
    (d / "data").mkdir(parents=True)
    (d / "data" / "d.jsonl").write_text('{"q": "say Paris", "a": "Paris"}\n{"q": "say Rome?", "a": "Rome"}\n')
    (d / "echo.yaml").write_text("name: echo\nkind: extraction\nsource: {type: jsonl, path: data/d.jsonl}\n"
                                 "prompt: '{{ q }}'\nreferences: a\nmetrics: [exact_match]\n")
    return d


def test_a_toy_backend_registered_from_the_tests_runs_end_to_end(toy_backend, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli(["run", "-m", "echo-model,backend=toy,name=toy-echo", "-t", "echo", "--tasks-dir",
                    str(_tasks_dir(tmp_path)), "--warmup", "1", "--out", str(out)])
    assert code == 0
    record, samples = read_single_run(out)
    [row] = record["rows"]
    assert row["status"] == "ok" and row["model"]["name"] == "toy-echo" and row["model"]["backend"] == "toy"
    assert row["model"]["parameters"] == 7 and row["model"]["toy_version"] == "1"
    assert row["quality"]["exact_match"]["value"] == 100.0
    assert row["latency"]["ttft_s"]["p50"] == pytest.approx(0.01) and row["latency"]["tpot_s"]["p50"] == \
        pytest.approx(0.02)
    assert [s["prediction"] for s in samples] == ["Paris", "Rome"]
    assert [s["toy_words"] for s in samples] == [2, 2]  # Generation.extra reaches samples.jsonl
    # preflight before load; one warm-up generation, then one per prompt at batch size 1; unload
    assert ToyBackend.calls == ["preflight", "load", "generate", "generate", "generate", "unload"]
    assert "toy: loading echo-model" in capsys.readouterr().err


def test_the_toy_backend_options_and_preflight_errors_are_one_line(toy_backend, tmp_path, capsys):
    tasks = _tasks_dir(tmp_path)
    for spec, message in [
        ("m,backend=toy,suffix=bad", "suffix must not be 'bad'"),
        ("m,backend=toy,dtype=float32", "unknown option 'dtype=float32' (known: backend, chat_template, name, "
                                        "suffix)"),
        ("missing,backend=toy", "the toy backend has no such model"),
        ("m,backend=tyo", "unknown backend 'tyo'"),
    ]:
        code = run_cli(["run", "-m", spec, "-t", "echo", "--tasks-dir", str(tasks), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1] and len(err) == 1, (spec, err)
    assert "load" not in ToyBackend.calls
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unknown_backend_suggests_the_close_one(toy_backend):
    with pytest.raises(UserError, match=r"unknown backend 'tyo' \(known: hf, .*toy\); did you mean toy\?"):
        ModelSpec.parse("x,backend=tyo")


def test_backend_is_inferred_from_the_id():
    from llmbench.models import infer_backend

    assert ModelSpec.parse("smollm2-135m").backend == "hf"
    assert ModelSpec.parse("org/model,dtype=bfloat16").backend == "hf"
    assert infer_backend("./some/dir") == "hf"
    assert json.dumps(ModelSpec.parse("org/model,dtype=bfloat16").options) == '[["dtype", "bfloat16"]]'
