"""Quantized and faster HF variants as SPEC options: parsing, row names, refusals before any model is loaded,
and the bytes quantized weights really hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.config import ModelSpec, RunConfig
from llmbench.errors import UserError


def _model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


@pytest.mark.parametrize("text, name", [
    ("smollm2-135m", "smollm2-135m"),
    ("smollm2-135m,quant=torchao-int8", "smollm2-135m[torchao-int8]"),
    ("smollm2-135m,quant=bnb-4bit,cache=static,compile=true", "smollm2-135m[bnb-4bit,static,compile]"),
    ("smollm2-135m,attn=eager", "smollm2-135m[eager]"),
    ("smollm2-135m,cache=dynamic", "smollm2-135m"),
    ("smollm2-135m,quant=bnb-nf4,name=mine", "mine"),
])
def test_variant_rows_are_named_after_their_options_and_sort_with_their_model(text, name):
    assert ModelSpec.parse(text).name == name


def test_variants_of_one_model_are_distinct_rows_sorted_together():
    specs = [ModelSpec.parse(t) for t in ("smollm2-135m,quant=bnb-4bit", "gemma3-270m", "smollm2-135m",
                                          "smollm2-135m,quant=torchao-int8")]
    RunConfig(models=tuple(specs))  # no duplicate-name refusal
    names = sorted(s.name for s in specs)
    assert names == ["gemma3-270m", "smollm2-135m", "smollm2-135m[bnb-4bit]", "smollm2-135m[torchao-int8]"]


@pytest.mark.parametrize("text, expected", [
    ("m,quant=int3", "quant must be one of bnb-8bit, bnb-4bit, bnb-nf4, torchao-int8, torchao-int4"),
    ("m,cache=paged", "cache must be one of dynamic, static"),
    ("m,attn=flash", "attn must be one of sdpa, eager, flash_attention_2"),
    ("m,compile=maybe", "compile must be true or false"),
])
def test_bad_variant_options_are_user_errors(text, expected):
    with pytest.raises(UserError, match=expected):
        ModelSpec.parse(text)


def test_a_cuda_only_method_on_a_cpu_run_is_one_line_exit_2_before_any_load(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_cli

    import llmbench.models.hf as hf

    def load(*a, **k):
        raise AssertionError("no model may be loaded")

    monkeypatch.setattr(hf.HFBackend, "load", load)
    monkeypatch.setattr(hf, "resolve_device", lambda device: "cpu")
    code = run_cli(["run", "-m", f"{_model_dir(tmp_path)},quant=torchao-int4", "--device", "cpu",
                    "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "quant=torchao-int4 needs a CUDA device" in err
    assert not (tmp_path / "r").exists()


def test_the_device_check_uses_the_device_the_run_picks(tmp_path, monkeypatch):
    """--device cpu on a machine with a GPU: preflight passes, resolve_device refuses."""
    import llmbench.models.hf as hf
    from llmbench.models import hf_source

    monkeypatch.setattr(hf_source, "_check_cuda_visible", lambda spec, options: None)
    monkeypatch.setattr(hf, "resolve_device", lambda device: device)
    backend = hf.HFBackend()
    backend.preflight(ModelSpec.parse(f"{_model_dir(tmp_path)},quant=torchao-int4"))
    assert backend.resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(UserError, match="needs a CUDA device"):
        backend.resolve_device("cpu")


def test_flash_attention_needs_cuda():
    from llmbench.models import quant

    with pytest.raises(UserError, match="attn=flash_attention_2 needs a CUDA device"):
        quant.check_device("m", {"attn": "flash_attention_2"}, "cpu")
    quant.check_device("m", {"attn": "flash_attention_2"}, "cuda:0")


def test_a_missing_library_is_one_line_in_preflight(tmp_path, monkeypatch):
    import importlib.util

    from llmbench.models import hf_source

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(UserError, match=r"quant=bnb-4bit needs bitsandbytes, which is not installed \(pip install"):
        hf_source.preflight(ModelSpec.parse(f"{_model_dir(tmp_path)},quant=bnb-4bit"))


class _Plain:
    def __init__(self, numel, size, ptr, **attrs):
        self._numel, self._size, self._ptr = numel, size, ptr
        self.__dict__.update(attrs)

    def numel(self):
        return self._numel

    def element_size(self):
        return self._size

    def data_ptr(self):
        return self._ptr


class _Subclass(_Plain):
    """Pretends to be a float32 tensor of 100 elements; holds int8 data and float32 scales."""

    def __init__(self, ptr):
        super().__init__(100, 4, ptr)
        self.qdata = _Plain(100, 1, ptr + 1)
        self.scale = _Plain(10, 4, ptr + 2)

    def __tensor_flatten__(self):
        return ["qdata", "scale"], {}


class _State:
    def __init__(self, ptr):
        self.absmax = _Plain(4, 4, ptr)
        self.code = None
        self.offset = None
        self.state2 = None


class _Model:
    def __init__(self, params, buffers=()):
        self._p, self._b = params, buffers

    def parameters(self):
        return iter(self._p)

    def buffers(self):
        return iter(self._b)


def test_weights_bytes_counts_what_quantized_tensors_hold():
    from llmbench.meters.memory import weights_bytes

    dense = _Plain(50, 4, 1000)
    int8_bnb = _Plain(100, 1, 2000, SCB=_Plain(10, 4, 2100))  # int8 data + per-row float32 scales
    four_bit = _Plain(50, 1, 3000, quant_state=_State(3100))  # packed nibbles + blockwise absmax
    model = _Model([dense, _Subclass(4000), int8_bnb, four_bit, dense])  # dense twice: tied, counted once
    assert weights_bytes(model) == 200 + (100 + 40) + (100 + 40) + (50 + 16)


def test_parameter_count_of_4bit_packed_weights_is_the_logical_count():
    from llmbench.meters.memory import parameter_count

    state = _State(5100)
    state.shape = (10, 10)
    packed = _Plain(50, 1, 5000, quant_state=state)  # 100 weights, two per byte
    assert parameter_count(_Model([packed, _Plain(7, 4, 6000)])) == 107
