"""`--new-tokens 2,8`: a length sweep runs every task of an in-process model at each generation budget, one row
variant per level (``NAME@n8``, crossed with batch levels as ``NAME@b4@n8``), each scored from its own answers
(a short budget can cut an answer: the row shows it); one value sets every task's budget without a sweep;
conflicting options and served models are one line and exit 2. A toy backend (no torch) runs through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from cli_helpers import ECHO_WORDS as WORDS
from cli_helpers import read_single_run, run_echo, write_echo_task
from fakes.instant_backend import InstantBackend

from llmbench.config import GenerationConfig, ModelSpec, RunConfig
from llmbench.errors import UserError
from llmbench.levels import length_suffix, parse_new_tokens
from llmbench.models import BACKENDS
from llmbench.models.base import Generation, LoadedModel


class SpellToy(InstantBackend):
    """Answers the last word of each prompt one letter per token, so a budget of N tokens keeps its first N
    letters. Records each call's (batch size, budget)."""

    name: ClassVar[str] = "spelltoy"
    option_keys: ClassVar[tuple[str, ...]] = ("fail",)
    calls: ClassVar[list[tuple[int, int]]] = []

    def load(self, prepared, device, note):
        spec = prepared.spec
        if spec.option("fail"):
            raise RuntimeError("weights are corrupt")
        return LoadedModel(spec=spec, name=spec.name, parameters=7, weights_bytes=28, dtype="toy", device=device,
                           source=prepared.source, has_chat_template=False)

    def generate(self, model, prompts, params, sync=None):
        self.calls.append((len(prompts), params.max_new_tokens))
        out = []
        for p in prompts:
            letters = list(p.split()[-1])[:params.max_new_tokens]
            out.append(Generation(p, "".join(letters), len(letters), 0.01, 0.01 * (1 + len(letters))))
        return out


@pytest.fixture(autouse=True)
def spelltoy():
    BACKENDS.register("spelltoy", SpellToy)
    SpellToy.calls.clear()
    yield SpellToy
    BACKENDS.unregister("spelltoy")


@pytest.fixture()
def tasks_dir(tmp_path: Path) -> Path:
    return write_echo_task(tmp_path, "generation: {max_new_tokens: 3}\n")


_run = run_echo


def test_parse_new_tokens():
    assert parse_new_tokens("256, 16,64,64") == (16, 64, 256) and parse_new_tokens(None) == ()
    for bad in ("0", "x", "4,", "-2"):
        with pytest.raises(UserError, match="--new-tokens"):
            parse_new_tokens(bad)
    assert [length_suffix(n) for n in (None, 64)] == ["", "@n64"]


def test_a_length_sweep_is_one_row_per_budget_each_scored_from_its_own_answers(tmp_path, tasks_dir):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=spelltoy,name=toy", "--new-tokens", "8,2") == 0
    record, samples = read_single_run(tmp_path / "out")
    rows = record["rows"]
    assert [r["model"]["name"] for r in rows] == ["toy@n2", "toy@n8"]
    assert [r["model"]["new_tokens"] for r in rows] == [2, 8]
    assert [r["model"]["base_name"] for r in rows] == ["toy", "toy"]
    assert [r["task"]["max_new_tokens"] for r in rows] == [2, 8]  # the level replaces the task's own 3
    # two letters are no word; eight letters spell every word: the cut answers are scored as they came
    assert [r["quality"]["exact_match"]["value"] for r in rows] == [0.0, 100.0]
    assert [r["latency"]["new_tokens"]["mean"] for r in rows] == [2.0, sum(map(len, WORDS)) / len(WORDS)]
    assert record["settings"]["new_tokens"] == [2, 8]
    assert {s["model"] for s in samples} == {"toy@n2", "toy@n8"} and len(samples) == 2 * len(WORDS)
    assert SpellToy.calls == [(1, 2)] * 5 + [(1, 8)] * 5


def test_length_and_batch_levels_cross_and_answers_compare_within_one_budget(tmp_path, tasks_dir, capsys):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=spelltoy,name=toy", "--new-tokens", "2,8",
                "--batch-size", "1,4") == 0
    assert "(batch sizes 1, 4, new tokens 2, 8: rows NAME@bN@nN)" in " ".join(capsys.readouterr().out.split())
    record, _ = read_single_run(tmp_path / "out")
    rows = record["rows"]
    assert [r["model"]["name"] for r in rows] == ["toy@n2", "toy@n8", "toy@b4@n2", "toy@b4@n8"]
    assert [(r["model"]["batch_size"], r["model"]["new_tokens"]) for r in rows] == [(1, 2), (1, 8), (4, 2), (4, 8)]
    # batch 4's answers are compared with batch 1's at the same budget (the cut ones too): none differ
    assert [r["model"].get("answers_vs_batch1") for r in rows[2:]] == [{"differ": 0, "of": 5, "indices": []}] * 2


def test_one_value_sets_every_tasks_budget_without_a_sweep(tmp_path, tasks_dir, capsys):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=spelltoy,name=toy", "--new-tokens", "8") == 0
    assert "(latency setting, batch 1, 8 new tokens)" in " ".join(capsys.readouterr().out.split())
    record, _ = read_single_run(tmp_path / "out")
    [row] = record["rows"]
    assert row["model"]["name"] == "toy" and "new_tokens" not in row["model"]
    assert row["task"]["max_new_tokens"] == 8 and row["quality"]["exact_match"]["value"] == 100.0
    assert record["settings"]["new_tokens"] == [8]


def test_without_new_tokens_the_task_budget_capped_by_max_new_tokens_is_kept(tmp_path, tasks_dir):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=spelltoy,name=toy", "--max-new-tokens", "2") == 0
    record, _ = read_single_run(tmp_path / "out")
    assert record["rows"][0]["task"]["max_new_tokens"] == 2 and "new_tokens" not in record["settings"]
    assert GenerationConfig(max_new_tokens=50).budget(3) == 3  # a cap never raises a task's own budget


def test_a_model_that_fails_to_load_fails_every_level(tmp_path, tasks_dir):
    assert _run(tmp_path, tasks_dir, "-m", "m,backend=spelltoy,fail=true,name=toy", "--new-tokens", "2,8") == 3
    record, _ = read_single_run(tmp_path / "out")
    assert [(r["model"]["name"], r["status"]) for r in record["rows"]] == [("toy@n2", "failed"),
                                                                           ("toy@n8", "failed")]


@pytest.mark.parametrize("args, message", [
    (["-m", "m,backend=spelltoy", "--max-new-tokens", "4"], "give one of them"),
    (["-m", "m,backend=spelltoy", "--lm-eval", "hellaswag"], "lm-eval tasks keep their own"),
    (["-m", "m,backend=spelltoy", "-m", "http://127.0.0.1:9/v1,model=x"], "'x' is served"),
    (["-m", "m,backend=spelltoy", "--new-tokens", "0"], "positive integers"),
])
def test_conflicting_options_are_one_line_and_exit_2(tmp_path, tasks_dir, capsys, args, message):
    extra = [] if "--new-tokens" in args else ["--new-tokens", "2,8"]
    code = _run(tmp_path, tasks_dir, *args, *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert SpellToy.calls == []


def test_a_level_name_that_is_another_models_name_is_refused():
    models = (ModelSpec.parse("m,backend=spelltoy,name=toy"), ModelSpec.parse("toy@b4@n8,backend=spelltoy"))
    with pytest.raises(UserError, match=r"'toy@b4@n8' is also the name of sweep level b4@n8 of 'toy'"):
        RunConfig(models=models, generation=GenerationConfig.with_batch_levels((1, 4), new_tokens=(2, 8)))
