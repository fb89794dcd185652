"""Committed baselines: save, list, find by name."""

from __future__ import annotations

import pytest
from gate_fixtures import make_run

from llmbench.errors import UserError
from llmbench.gate import list_baselines, resolve_baseline, save_baseline
from llmbench.records import RUN_FILE, SAMPLES_FILE
from llmbench.records.store import read_run, read_samples


def test_save_copies_record_and_samples(tmp_path):
    run = make_run(tmp_path / "results", "20261126-120000-main")
    where = tmp_path / "results" / "baselines"
    path = save_baseline(run, "main", where)
    assert path == where / "main" / RUN_FILE
    assert (where / "main" / SAMPLES_FILE).is_file()
    assert read_run(path).run_id == "20261126-120000-main"
    assert read_samples(path.parent) == read_samples(run)


def test_save_refuses_to_overwrite_without_force(tmp_path):
    first = make_run(tmp_path, "first")
    second = make_run(tmp_path, "second")
    save_baseline(first, "main", tmp_path / "b")
    with pytest.raises(UserError, match="already exists.*--force"):
        save_baseline(second, "main", tmp_path / "b")
    save_baseline(second, "main", tmp_path / "b", force=True)
    assert read_run(tmp_path / "b" / "main").run_id == "second"
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["main"]  # no temporary left behind


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden", "with space"])
def test_bad_names(tmp_path, name):
    run = make_run(tmp_path, "run")
    with pytest.raises(UserError, match="bad baseline name"):
        save_baseline(run, name, tmp_path / "b")


def test_save_of_a_missing_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no run record"):
        save_baseline(tmp_path / "nope", "main", tmp_path / "b")


def test_list_and_resolve(tmp_path):
    where = tmp_path / "b"
    assert list_baselines(where) == []
    save_baseline(make_run(tmp_path, "r1"), "main", where)
    save_baseline(make_run(tmp_path, "r2"), "nightly", where)
    (where / "broken").mkdir()
    listed = list_baselines(where)
    assert [n for n, _, _ in listed] == ["broken", "main", "nightly"]
    assert listed[0][1] is None and "no run record" in listed[0][2]
    assert resolve_baseline("main", where) == where / "main" / RUN_FILE
    run_dir = tmp_path / "r1"
    assert resolve_baseline(str(run_dir), where) == run_dir / RUN_FILE  # a path wins over a name
    with pytest.raises(UserError, match="saved baselines: broken, main, nightly"):
        resolve_baseline("mian", where)


def test_listing_a_file_as_the_baselines_directory_is_bad_input(tmp_path):
    not_a_dir = tmp_path / "p.sh"
    not_a_dir.write_text("echo\n")
    with pytest.raises(UserError, match="is not a directory of baselines"):
        list_baselines(not_a_dir)
    assert list_baselines(tmp_path / "absent") == []  # none saved yet is not an error
