"""A task file's data stays inside its folder (or its package) unless LLMBENCH_ALLOW_OUTSIDE_DATA=1: an
absolute path, a ``..`` escape and a symbolic link pointing out are refused with one line. No torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import run_cli
from test_tasks import user_error, write_task

from llmbench.tasks import load_catalog
from llmbench.tasks.sources import ALLOW_OUTSIDE_ENV

RECORDS = [{"source": "secret sentence", "target": "phrase secrète"}]


@pytest.fixture(autouse=True)
def _default_rule(monkeypatch):
    monkeypatch.delenv(ALLOW_OUTSIDE_ENV, raising=False)


def outside_file(tmp_path: Path) -> Path:
    """A data file next to (not inside) the tasks folder."""
    file = tmp_path / "private" / "secret.jsonl"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return file


def escaping_task(tmp_path: Path, how: str) -> Path:
    """A tasks folder with one task whose data path leaves it: absolute, ``..``, or a link pointing out."""
    tasks, file = tmp_path / "tasks", outside_file(tmp_path)
    if how == "absolute":
        write_task(tasks, source={"type": "jsonl", "path": str(file)})
    elif how == "dotdot":
        write_task(tasks, source={"type": "jsonl", "path": "../private/secret.jsonl"})
    else:  # a link inside the folder pointing out of it
        write_task(tasks, source={"type": "jsonl", "path": "data/link.jsonl"})
        (tasks / "data" / "link.jsonl").symlink_to(file)
    return tasks


HOWS = ("absolute", "dotdot", "symlink")


@pytest.mark.parametrize("how", HOWS)
def test_data_outside_the_task_folder_is_refused_with_one_line(tmp_path, how):
    tasks = escaping_task(tmp_path, how)
    message = user_error(load_catalog([tasks]).resolve, ["toy"])
    assert message.startswith("task toy: data path ")
    assert "leaves the folder of task file" in message and "toy.yaml" in message
    assert f"set {ALLOW_OUTSIDE_ENV}=1" in message
    assert "secret sentence" not in message


@pytest.mark.parametrize("how", HOWS)
def test_refused_data_is_never_read(tmp_path, how):
    tasks = escaping_task(tmp_path, how)
    spec = load_catalog([tasks]).tasks["toy"]
    assert spec.size() is None and "leaves the folder" in spec.problem()
    assert "leaves the folder" in user_error(spec.task().examples)


def test_a_symlinked_folder_or_a_link_inside_it_is_fine(tmp_path):
    tasks = tmp_path / "real"
    write_task(tasks, records=RECORDS)
    (tasks / "data" / "alias.jsonl").symlink_to(tasks / "data" / "toy.jsonl")
    write_task(tasks, name="aliased", source={"type": "jsonl", "path": "data/alias.jsonl"}, records=RECORDS)
    (tmp_path / "linked").symlink_to(tasks, target_is_directory=True)
    (toy, aliased) = load_catalog([tmp_path / "linked"]).resolve(["toy", "aliased"])
    assert toy.examples()[0].references == ["phrase secrète"]
    assert aliased.examples()[0].references == ["phrase secrète"]


def test_an_absolute_path_inside_the_folder_is_fine(tmp_path):
    tasks = tmp_path / "tasks"
    write_task(tasks, records=RECORDS)
    write_task(tasks, name="abs", source={"type": "jsonl", "path": str(tasks / "data" / "toy.jsonl")})
    assert load_catalog([tasks]).tasks["abs"].size() == 1


@pytest.mark.parametrize("how", HOWS)
def test_the_env_var_allows_outside_data(tmp_path, monkeypatch, how):
    tasks = escaping_task(tmp_path, how)
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")
    (task,) = load_catalog([tasks]).resolve(["toy"])
    assert [e.references for e in task.examples()] == [["phrase secrète"]]


@pytest.mark.parametrize("value", ["0", "", "no"])
def test_other_env_values_keep_the_rule(tmp_path, monkeypatch, value):
    tasks = escaping_task(tmp_path, "dotdot")
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, value)
    assert "leaves the folder" in user_error(load_catalog([tasks]).resolve, ["toy"])


def test_package_data_stays_inside_its_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "llmbench_fake_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    outside_file(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    write_task(tmp_path / "tasks", source={"type": "package", "package": "llmbench_fake_pkg",
                                           "path": "../../private/secret.jsonl"})
    message = user_error(load_catalog([tmp_path / "tasks"]).resolve, ["toy"])
    assert "leaves installed package llmbench_fake_pkg" in message and ALLOW_OUTSIDE_ENV in message
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")
    assert load_catalog([tmp_path / "tasks"]).tasks["toy"].size() == 1


def test_builtin_tasks_still_load(monkeypatch):
    catalog = load_catalog()
    for spec in catalog.tasks.values():
        problem = spec.problem()
        assert problem is None or "leaves" not in problem, problem
    (task,) = catalog.resolve(["translation-en-fr"], 2)
    assert len(task.examples()) == 2


def test_the_listing_shows_the_refusal_as_a_note(tmp_path, capsys):
    tasks = escaping_task(tmp_path, "dotdot")
    assert run_cli(["tasks", "--tasks-dir", str(tasks)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "toy: cannot run here: data path ../private/secret.jsonl leaves the folder of task file" in out


def test_run_refuses_before_any_model_is_loaded(tmp_path, capsys):
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    tasks = escaping_task(tmp_path, "absolute")
    code = run_cli(["run", "-m", "no-such/model-anywhere", "-t", "toy", "--tasks-dir", str(tasks),
                    "--out", str(tmp_path / "results")])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "task toy: data path" in stderr and ALLOW_OUTSIDE_ENV in stderr
    assert not (tmp_path / "results").exists()
    assert os.environ.get(ALLOW_OUTSIDE_ENV) is None


def test_an_hf_source_naming_a_local_path_is_refused_like_outside_data(tmp_path, monkeypatch):
    """`datasets.load_dataset` reads a local folder when the dataset names one: a shared task file could point
    it at any folder of the working directory. Hub ids that name no local path stay hub ids."""
    from llmbench.tasks.sources import HFSource

    monkeypatch.chdir(tmp_path)
    (tmp_path / "private").mkdir()
    for local in ("./private", str(tmp_path / "private"), "private", "../x", "~/data"):
        problem = HFSource(dataset=local).local_problem()
        assert problem and f"hf dataset {local} is a local path" in problem and ALLOW_OUTSIDE_ENV in problem
    assert HFSource(dataset="EdinburghNLP/xsum").local_problem() is None
    assert HFSource(dataset="wmt14").local_problem() is None
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")
    assert HFSource(dataset="./private").local_problem() is None
