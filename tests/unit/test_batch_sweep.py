"""`--batch-size 1,4`: a batch-size sweep of an in-process model is one row variant per level (``NAME@b4``), as
served load levels are (``NAME@c4``), each scored from its own answers; answers that differ from batch 1's
are recorded and noted; a single --batch-size keeps today's records; served models and lm-eval are refused or
noted. A toy backend (no torch) runs through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from cli_helpers import read_single_run, run_echo, write_echo_task
from fakes.instant_backend import InstantBackend

from llmbench.config import GenerationConfig, ModelSpec, RunConfig
from llmbench.errors import UserError
from llmbench.levels import batch_suffix, parse_batch_sizes
from llmbench.models import BACKENDS
from llmbench.models.base import Generation, LoadedModel


class BatchToy(InstantBackend):
    """Echoes the last word of each prompt; with ``drift=true`` every answer after the first of a batch of more
    than one gets a trailing `` too`` (as padding can change a greedy answer). Records each call's batch size."""

    name: ClassVar[str] = "batchtoy"
    option_keys: ClassVar[tuple[str, ...]] = ("drift", "fail")
    calls: ClassVar[list[int]] = []

    def load(self, prepared, device, note):
        spec = prepared.spec
        if spec.option("fail"):
            raise RuntimeError("weights are corrupt")
        return LoadedModel(spec=spec, name=spec.name, parameters=7, weights_bytes=28, dtype="toy", device=device,
                           source=prepared.source, has_chat_template=False)

    def generate(self, model, prompts, params, sync=None):
        self.calls.append(len(prompts))
        drift = model.spec.option("drift") == "true"
        return [Generation(p, p.split()[-1] + (" too" if drift and i > 0 else ""), 3, 0.01 * len(prompts),
                           0.05 * len(prompts)) for i, p in enumerate(prompts)]



@pytest.fixture(autouse=True)
def batchtoy():
    BACKENDS.register("batchtoy", BatchToy)
    BatchToy.calls.clear()
    yield BatchToy
    BACKENDS.unregister("batchtoy")


@pytest.fixture()
def tasks_dir(tmp_path: Path) -> Path:
    return write_echo_task(tmp_path)


_run = run_echo


def test_batch_sizes_parse_ascending_without_repeats_and_bad_ones_are_one_line():
    assert parse_batch_sizes("1,4,16") == (1, 4, 16)
    assert parse_batch_sizes(" 16, 1,4,4") == (1, 4, 16)  # the latency setting first: the others compare with it
    assert parse_batch_sizes("4") == (4,) and parse_batch_sizes(None) == (1,)
    for bad in ("0", "1,0", "a", "", "1,,4", "-2", "1.5"):
        with pytest.raises(UserError, match=r"--batch-size .*positive integers"):
            parse_batch_sizes(bad)
    one = GenerationConfig.with_batch_levels((4,))
    assert one.batch_size == 4 and one.batch_sizes == () and not one.is_batch_sweep and one.batch_levels == (4,)
    sweep = GenerationConfig.with_batch_levels((1, 4))
    assert sweep.batch_size == 1 and sweep.is_batch_sweep and sweep.batch_levels == (1, 4)
    assert [batch_suffix(b) for b in (1, 4, 16)] == ["", "@b4", "@b16"]


def test_a_sweep_gives_one_row_per_level_named_as_load_levels_are(tmp_path, tasks_dir, capsys):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=batchtoy,name=toy", "--batch-size", "4,1") == 0
    record, samples = read_single_run(tmp_path / "out")
    rows = {r["model"]["name"]: r for r in record["rows"]}
    assert list(rows) == ["toy", "toy@b4"]  # ascending: batch 1 first
    settings = record["settings"]
    assert settings["batch_sizes"] == [1, 4] and settings["batch_size"] == 1 and settings["setting"] == "latency"
    b1, b4 = rows["toy"], rows["toy@b4"]
    assert b1["model"]["batch_size"] == 1 and b1["model"]["setting"] == "latency" and "base_name" not in b1["model"]
    assert b4["model"]["batch_size"] == 4 and b4["model"]["setting"] == "throughput"
    assert b4["model"]["base_name"] == "toy" and b4["model"]["spec"] == b1["model"]["spec"]
    assert b1["latency"]["batch_size"] == 1 and b1["latency"]["setting"] == "latency"
    assert b4["latency"]["batch_size"] == 4 and b4["latency"]["setting"] == "throughput"
    for row in (b1, b4):  # every level scored from its own answers, with its own meters
        assert row["status"] == "ok" and row["quality"]["exact_match"]["value"] == 100.0
        assert row["latency"]["tokens_per_s"] > 0 and "peak_rss_bytes" in row["memory"]
        assert "joules_per_token" in row["energy"] or row["energy"].get("available") is False
    assert "answers_vs_batch1" not in b1["model"]
    assert b4["model"]["answers_vs_batch1"] == {"differ": 0, "of": 5, "indices": []}
    assert BatchToy.calls == [1, 1, 1, 1, 1, 4, 1]  # five prompts one by one, then batches of 4 and 1
    assert [s["model"] for s in samples] == ["toy"] * 5 + ["toy@b4"] * 5
    assert [s.get("batch") for s in samples] == [None] * 5 + [0, 0, 0, 0, 1]
    out = capsys.readouterr()
    assert "differ" not in out.err
    assert "(batch sizes 1, 4: rows NAME@bN)" in " ".join(out.out.split())  # the table's title names the sweep


def test_answers_that_differ_from_batch_1_are_recorded_and_noted(tmp_path, tasks_dir, capsys):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=batchtoy,drift=true,name=toy", "--batch-size", "1,2,4") == 0
    record, samples = read_single_run(tmp_path / "out")
    rows = {r["model"]["name"]: r for r in record["rows"]}
    assert list(rows) == ["toy", "toy@b2", "toy@b4"]
    # batches of 2: [0 1] [2 3] [4] -> answers 1 and 3 drift; batches of 4: [0 1 2 3] [4] -> 1, 2, 3
    assert rows["toy@b2"]["model"]["answers_vs_batch1"] == {"differ": 2, "of": 5, "indices": [1, 3]}
    assert rows["toy@b4"]["model"]["answers_vs_batch1"] == {"differ": 3, "of": 5, "indices": [1, 2, 3]}
    # quality is each level's own: the drifted answers miss
    assert [rows[n]["quality"]["exact_match"]["value"] for n in rows] == [100.0, 60.0, 40.0]
    err = " ".join(capsys.readouterr().err.split())
    assert "toy@b2 / echo: greedy answers differ from batch 1's on 2 of 5 prompts (index 1, 3)" in err
    assert "toy@b4 / echo: greedy answers differ from batch 1's on 3 of 5 prompts (index 1, 2, 3)" in err
    b4 = [s for s in samples if s["model"] == "toy@b4"]
    assert [s["index"] for s in b4 if s["prediction"].endswith(" too")] == [1, 2, 3]


def test_a_sweep_without_batch_1_says_nothing_is_compared(tmp_path, tasks_dir, capsys):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=batchtoy,name=toy", "--batch-size", "2,4") == 0
    record, _ = read_single_run(tmp_path / "out")
    assert [r["model"]["name"] for r in record["rows"]] == ["toy@b2", "toy@b4"]
    assert record["settings"]["batch_size"] == 2 and record["settings"]["setting"] == "throughput"
    assert all("answers_vs_batch1" not in r["model"] for r in record["rows"])
    assert "batch 1 is not among the --batch-size levels" in " ".join(capsys.readouterr().err.split())


def test_one_batch_size_keeps_the_records_of_a_run_without_a_sweep(tmp_path, tasks_dir):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=batchtoy,name=toy", "--batch-size", "4") == 0
    record, samples = read_single_run(tmp_path / "out")
    [row] = record["rows"]
    assert row["model"]["name"] == "toy"
    assert not {"batch_size", "setting", "base_name", "answers_vs_batch1"} & set(row["model"])
    assert "batch_sizes" not in record["settings"]
    assert record["settings"]["batch_size"] == 4 and record["settings"]["setting"] == "throughput"
    assert row["latency"]["batch_size"] == 4 and {s["model"] for s in samples} == {"toy"}
    assert BatchToy.calls == [4, 1]


def test_a_model_that_fails_to_load_fails_every_level(tmp_path, tasks_dir):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=batchtoy,fail=true,name=toy", "--batch-size", "1,4") == 3
    record, _ = read_single_run(tmp_path / "out")
    assert [(r["model"]["name"], r["status"]) for r in record["rows"]] == [("toy", "failed"), ("toy@b4", "failed")]
    assert all("weights are corrupt" in r["error"] for r in record["rows"])


def test_a_level_name_that_is_another_models_name_is_refused():
    models = (ModelSpec.parse("m,backend=batchtoy,name=toy"), ModelSpec.parse("toy@b4,backend=batchtoy"))
    with pytest.raises(UserError, match=r"'toy@b4' is also the name of sweep level b4 of 'toy'"):
        RunConfig(models=models, generation=GenerationConfig.with_batch_levels((1, 4)))
    RunConfig(models=models, generation=GenerationConfig.with_batch_levels((1, 2)))  # no clash: fine


def test_a_sweep_with_lm_eval_or_only_served_models_is_one_line_and_exit_2(tmp_path, tasks_dir, capsys):
    for args, message in [
        (["-m", "m,backend=batchtoy", "--lm-eval", "hellaswag"], "lm-eval runs at one batch size"),
        (["-m", "http://127.0.0.1:9/v1,model=x"], "every model here is served"),
    ]:
        code = _run(tmp_path, tasks_dir, *args, "--batch-size", "1,4")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], (args, err)
    assert "--concurrency 1,4" in _message_for(["-m", "http://127.0.0.1:9/v1,model=x"])
    assert BatchToy.calls == []


def _message_for(models: list[str]) -> str:
    with pytest.raises(UserError) as info:
        RunConfig(models=tuple(ModelSpec.parse(m) for m in models[1::2]),
                  generation=GenerationConfig.with_batch_levels((1, 4)))
    return str(info.value)


def test_a_served_model_beside_a_sweep_keeps_its_load_levels_and_says_so(tmp_path, tasks_dir, capsys):
    pytest.importorskip("httpx")
    pytest.importorskip("httpx_sse")
    from openai_stub import StubServer

    with StubServer() as stub:
        code = _run(tmp_path, tasks_dir, "-m", f"{stub.url},name=served", "-m", "m,backend=batchtoy,name=toy",
                    "--batch-size", "1,4")
    assert code == 0
    record, _ = read_single_run(tmp_path / "out")
    assert [r["model"]["name"] for r in record["rows"]] == ["served", "toy", "toy@b4"]
    served = record["rows"][0]
    assert "batch_size" not in served["model"] and served["model"]["load"]["concurrency"] == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "served: served, one request per prompt and one row per --concurrency/--rate level; --batch-size " \
           "levels 1,4 apply to in-process models" in err
