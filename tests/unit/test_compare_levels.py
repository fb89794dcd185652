"""Sweep levels in `compare`: the verdict answers "is the smaller model enough" at one operating point.

Rows of a batch-size sweep (``NAME@b4``), a length sweep (``NAME@n64``, ``NAME@b4@n64``) and served load levels
(``NAME@c4``) are the same model at other settings: the verdict groups a task's rows by level and decides
among the models of each level, one verdict per level (led by the level), never a level against another
level of its own model. A task of one level keeps the verdict it always had; a tie in parameters is never
"the smallest"; a level with one scored model says there is nothing to compare."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from pathlib import Path
from typing import ClassVar

import pytest
from cli_helpers import ECHO_WORDS, run_cli, run_echo, write_echo_task
from fakes.instant_backend import InstantBackend
from report_fixtures import environment, make_row_and_samples

from llmbench.models import BACKENDS
from llmbench.models.base import Generation, LoadedModel
from llmbench.records import RunRecord
from llmbench.records.store import write_run, write_samples
from llmbench.report import build_comparison, load_runs
from llmbench.report.exporters.csv import to_csv
from llmbench.report.exporters.markdown import to_markdown
from llmbench.report.levels import level_order
from llmbench.report.table import summary_lines, table_cells, verdict_lines

TASK = "translation-en-fr"
SMALL, LARGE = "smollm2-135m", "gemma3-270m"  # the fixture's weaker and better translators


def _rows(model: str, levels: dict[str, dict], parameters: int | None = None):
    """One row per level of ``model`` (suffix -> model-entry settings), shaped as a sweep writes them: the
    suffix on the name, ``base_name`` the name without it; every level with the fixture's answers."""
    row, samples = make_row_and_samples(model, TASK)
    out = []
    for suffix, entry in levels.items():
        r = copy.deepcopy(row)
        r.model.update(entry, name=model + suffix)
        if parameters is not None:
            r.model["parameters"] = parameters
        if suffix:
            r.model["base_name"] = model
        out.append((r, [dict(s, model=model + suffix) for s in samples]))
    return out


def _compare(tmp_path: Path, *models):
    rows = [pair for m in models for pair in m]
    record = RunRecord(run_id="20250304-120000-sweep", created_at="2025-03-04T12:00:00+00:00",
                       command="llmbench run ...", environment=environment(),
                       settings={"seed": 0, "tasks": [TASK]}, rows=[r for r, _ in rows])
    path = write_run(record, tmp_path)
    write_samples(path.parent, [s for _, lines in rows for s in lines])
    return path.parent, build_comparison(load_runs([str(path.parent)]), resamples=200)


BATCH = {"": {"batch_size": 1, "setting": "latency"}, "@b4": {"batch_size": 4, "setting": "throughput"}}


def _verdicts(tc) -> list[str]:
    return [text for kind, text in verdict_lines(tc) if kind == "verdict"]


def _printed_verdicts(run_dir: Path, capsys, monkeypatch) -> list[str]:
    """The lines `compare` ends with: the verdicts, one per task (per level of a sweep)."""
    from llmbench.cli.console import out

    monkeypatch.setenv("COLUMNS", "400")
    out.cache_clear()  # a fresh Console: it reads COLUMNS when created
    capsys.readouterr()
    assert run_cli(["compare", str(run_dir), "--resamples", "200"]) == 0
    return capsys.readouterr().out.split("\nverdicts\n", 1)[1].splitlines()


ENOUGH_AGAINST = "enough against {0}: 653% of {0}'s BLEU [434%, 838%], above a 95% margin"
NOT_ENOUGH = "{0} is not enough (15% of {1}'s BLEU [12%, 23%], below a 95% margin)"


def test_levels_of_one_model_never_compete(tmp_path):
    # the better model is also the smaller: the old verdict put it against its own @b4 row ("and is the
    # smallest model; enough against gemma3-270m@b4: 100% of gemma3-270m@b4's BLEU"), as if batch 4 were
    # another model
    _, cmp = _compare(tmp_path, _rows(LARGE, BATCH, parameters=100_000_000), _rows(SMALL, BATCH))
    tc = cmp.tasks[0]
    assert _verdicts(tc) == [
        f"@b1: {LARGE} has the best BLEU (43.7) and is the smallest model; " + ENOUGH_AGAINST.format(SMALL),
        f"@b4: {LARGE}@b4 has the best BLEU (43.7) and is the smallest model; "
        + ENOUGH_AGAINST.format(f"{SMALL}@b4")]
    assert [(v.level, v.best, v.runner_up) for v in tc.verdicts] == [
        ("", LARGE, SMALL), ("@b4", f"{LARGE}@b4", f"{SMALL}@b4")]
    for v in tc.verdicts:
        assert {tc.result(d.model).level for d in v.decisions} == {v.level}  # its own level's rows only
    # each level's best says so in the table (the two 100M rows sort first)
    assert [c[-1] for c in table_cells(tc)][:2] == ["best", "best"]


def test_one_verdict_per_level_in_compare_and_every_export(tmp_path, capsys, monkeypatch):
    run_dir, cmp = _compare(tmp_path, _rows(SMALL, BATCH), _rows(LARGE, BATCH))
    # the old verdict: one, with both of the small model's levels "not enough" against gemma3-270m
    expected = [f"{TASK} @b1: no smaller model is proven enough: {LARGE} has the best BLEU (43.7); "
                + NOT_ENOUGH.format(SMALL, LARGE),
                f"{TASK} @b4: no smaller model is proven enough: {LARGE}@b4 has the best BLEU (43.7); "
                + NOT_ENOUGH.format(f"{SMALL}@b4", f"{LARGE}@b4")]
    assert _printed_verdicts(run_dir, capsys, monkeypatch) == expected
    tc = cmp.tasks[0]
    # under the table, every format: each level's verdict and curve, led by the level
    assert [text.split(": ")[0] for kind, text in verdict_lines(tc) if kind in ("verdict", "curve")] == \
        ["@b1", "@b1", "@b4", "@b4"]
    md = to_markdown(cmp)
    assert "**Verdict:** @b1: no smaller model" in md and "**Verdict:** @b4: no smaller model" in md
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(to_csv(cmp)))}
    assert [m for m, r in rows.items() if r["verdict_best"] == "True"] == [LARGE, f"{LARGE}@b4"]
    assert summary_lines(tc) == expected and [v.chosen for v in tc.verdicts] == [LARGE, f"{LARGE}@b4"]
    data = json.loads(json.dumps(cmp.to_dict()))["tasks"][0]
    assert data["verdict"] is None and [v["level"] for v in data["verdicts"]] == ["", "@b4"]
    assert {r["model"]: r.get("level") for r in data["results"]}[f"{SMALL}@b4"] == "@b4"


def test_a_level_with_one_model_has_nothing_to_compare(tmp_path):
    served = {"": {"device": "server", "load": {"concurrency": 1, "rate": None}},
              "@c4": {"device": "server", "load": {"concurrency": 4, "rate": None}}}
    _, cmp = _compare(tmp_path, _rows(SMALL, {"": served[""]}), _rows(LARGE, served))
    tc = cmp.tasks[0]
    assert _verdicts(tc) == [
        f"@c1: no smaller model is proven enough: {LARGE} has the best BLEU (43.7); " + NOT_ENOUGH.format(SMALL, LARGE),
        f"@c4: {LARGE}@c4 is the only model scored at this level (BLEU 43.7): no other model to compare it with"]
    assert tc.verdicts[1].alone and [d.decision for d in tc.verdicts[1].decisions] == [None]


def test_a_tie_in_parameters_is_not_the_smallest(tmp_path):
    _, cmp = _compare(tmp_path, _rows(SMALL, {"": {}}, parameters=10), _rows(LARGE, {"": {}}, parameters=10))
    v = cmp.tasks[0].verdict
    # the old verdict: "gemma3-270m has the best BLEU (43.7) and is the smallest model; enough against ..."
    assert v.text == f"{LARGE} has the best BLEU (43.7) and is as small as {SMALL}; " + ENOUGH_AGAINST.format(SMALL)
    assert v.size_ties == [SMALL]


def test_one_level_keeps_its_verdict(tmp_path, capsys, monkeypatch):
    run_dir, cmp = _compare(tmp_path, _rows(SMALL, {"": {}}), _rows(LARGE, {"": {}}))
    # the line the code before sweep levels printed for these records, word for word
    assert _printed_verdicts(run_dir, capsys, monkeypatch) == [
        f"{TASK}: no smaller model is proven enough: {LARGE} has the best BLEU (43.7); "
        + NOT_ENOUGH.format(SMALL, LARGE)]
    tc = cmp.tasks[0]
    assert [kind for kind, _ in verdict_lines(tc)] == ["verdict", "curve"]
    assert verdict_lines(tc)[0][1] == tc.verdict.text  # no level before it
    assert tc.verdicts == [tc.verdict] and tc.verdict.level == "" and not tc.verdict.alone
    assert cmp.to_dict()["tasks"][0]["verdict"]["text"] == tc.verdict.text


def test_levels_sort_as_a_sweep_runs_them():
    levels = ["@b2@n64", "@n64", "@c16", "@r2", "@n4", "", "@b2@n4", "@c4"]
    assert sorted(levels, key=level_order) == ["", "@c4", "@c16", "@r2", "@n4", "@n64", "@b2@n4", "@b2@n64"]


class SizedToy(InstantBackend):
    """Answers each prompt's last word, cut to the budget; ``wrong=N`` answers the first N words wrong;
    ``params=N`` parameters."""

    name: ClassVar[str] = "sizedtoy"
    option_keys: ClassVar[tuple[str, ...]] = ("params", "wrong")

    def load(self, prepared, device, note):
        spec = prepared.spec
        return LoadedModel(spec=spec, name=spec.name, parameters=int(spec.option("params")), weights_bytes=40,
                           dtype="float32", device="cpu", source="toy", has_chat_template=False)

    def generate(self, model, prompts, params, sync=None):
        wrong = ECHO_WORDS[:int(model.spec.option("wrong") or 0)]
        words = [p.split()[-1] for p in prompts]
        return [Generation(p, a, len(a), 0.01, 0.02) for p, a in
                zip(prompts, ("no" if w in wrong else w[:params.max_new_tokens] for w in words))]


@pytest.fixture()
def sizedtoy():
    BACKENDS.register("sizedtoy", SizedToy)
    yield
    BACKENDS.unregister("sizedtoy")


def test_a_crossed_sweep_gets_a_verdict_per_level_through_the_cli(tmp_path, sizedtoy, capsys, monkeypatch):
    # the finding: --new-tokens 4,64 --batch-size 1,2 gave one verdict over four rows per model, each level
    # a rival of its own model's others (5,64 here: every answer word fits in 5 tokens)
    tasks = write_echo_task(tmp_path, "generation: {max_new_tokens: 8}\n")
    assert run_echo(tmp_path, tasks, "-m", "s,backend=sizedtoy,name=small,params=10,wrong=1",
                    "-m", "l,backend=sizedtoy,name=large,params=100", "--new-tokens", "5,64",
                    "--batch-size", "1,2") == 0
    tail = _printed_verdicts(next((tmp_path / "out").iterdir()), capsys, monkeypatch)
    levels = ["@n5", "@n64", "@b2@n5", "@b2@n64"]
    assert [line.split(":")[0] for line in tail] == [f"echo {level}" for level in levels]
    for line, level in zip(tail, levels):
        # the larger model is the best at every level, against the small model of the same level only
        assert f": no smaller model is proven enough: large{level} has the best EM (100.0); small{level} is " in line
        named = set(re.findall(r"(?:small|large)(@[@\w]+)", line))
        assert named == {level}


def test_a_plain_row_run_at_a_larger_batch_is_its_own_level_and_odd_suffixes_sort_without_a_traceback():
    from llmbench.report.levels import level_order, row_level

    # --batch-size 8 without a sweep: no suffix, but never in one level with batch-1 rows (labelled @b1)
    assert row_level({"name": "m", "base_name": "m", "batch_size": 8}) == "@b8"
    assert row_level({"name": "m", "batch_size": 8}) == "@b8"
    assert row_level({"name": "m", "batch_size": 1}) == ""
    assert row_level({"name": "m@b4", "base_name": "m", "batch_size": 4}) == "@b4"
    # a hand-made name with a malformed rate sorts last instead of raising; an 'r' elsewhere is no rate
    levels = ["@r1.2.3", "@c4r2", "@r2", "", "@c4", "@b2"]
    assert sorted(levels, key=level_order) == ["", "@c4", "@c4r2", "@r2", "@r1.2.3", "@b2"]
