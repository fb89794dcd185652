"""Embedded aliases: cache location and the conversion child process's failure path (no torch needed)."""

from __future__ import annotations

import pytest

from llmbench.models import embedded


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "c"))
    assert embedded.converted_dir("smollm2-135m") == tmp_path / "c" / "models" / "smollm2-135m"
    assert not embedded.is_converted("smollm2-135m")


def test_conversion_failure_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"converting no-such-alias failed: KeyError: 'no-such-alias'"):
        embedded.convert_in_subprocess("no-such-alias")


def test_already_converted_is_not_converted_again(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path))
    target = embedded.converted_dir("smollm2-135m")
    target.mkdir(parents=True)
    (target / "llmbench-converted.json").write_text("{}")
    assert embedded.convert_in_subprocess("smollm2-135m") == target
