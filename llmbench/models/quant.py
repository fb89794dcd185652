"""Quantized variants of an ``hf`` model (``quant=`` in the model spec) through transformers' quantization
configs (BitsAndBytesConfig, TorchAoConfig), and the faster HF paths (``cache=``, ``compile=``, ``attn=``).

What works where (checked with bitsandbytes 0.50, torchao 0.18, torch 2.13, transformers 5.25):
- bitsandbytes 8-bit (LLM.int8) and 4-bit (fp4, nf4): CPU and CUDA (the PyPI wheels ship CPU builds).
- torchao int8 weight-only: CPU and CUDA.
- torchao int4 weight-only: CUDA only (torchao 0.18 dropped the CPU int4 layout: its plain format needs the
  CUDA ``mslk`` kernels, the tinygemm tile layout needs CUDA, the int32 layout refuses the CPU).

Each check raises a one-line UserError before any model is loaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from typing import Mapping

from llmbench.config import parse_bool
from llmbench.errors import UserError


@dataclass(frozen=True)
class QuantMethod:
    name: str
    library: str  # the distribution whose version is recorded
    module: str  # what must be importable
    bits: int
    scheme: str  # what is quantized, in words
    cuda_only: bool = False
    cuda_reason: str = ""


QUANT_METHODS: dict[str, QuantMethod] = {m.name: m for m in (
    QuantMethod("bnb-8bit", "bitsandbytes", "bitsandbytes", 8, "LLM.int8 linear weights (per-row absmax)"),
    QuantMethod("bnb-4bit", "bitsandbytes", "bitsandbytes", 4, "fp4 linear weights (blockwise absmax, 64)"),
    QuantMethod("bnb-nf4", "bitsandbytes", "bitsandbytes", 4, "nf4 linear weights (blockwise absmax, 64)"),
    QuantMethod("torchao-int8", "torchao", "torchao", 8, "int8 weight-only linear weights (per-row scale)"),
    QuantMethod("torchao-int4", "torchao", "torchao", 4, "int4 weight-only linear weights (groups of 128)",
                cuda_only=True, cuda_reason="torchao 0.18 int4 weight-only kernels are CUDA-only"),
)}
CACHE_CHOICES = ("dynamic", "static")
ATTN_CHOICES = ("sdpa", "eager", "flash_attention_2")
INSTALL_HINT = "pip install 'llmbench[quant]'"


def parse_option(text: str, key: str, value: str):
    """One of this module's SPEC options, typed and checked (UserError naming the spec)."""
    if key == "quant":
        if value not in QUANT_METHODS:
            raise UserError(f"model spec {text!r}: quant must be one of {', '.join(QUANT_METHODS)}, not {value!r}")
        return value
    if key == "cache":
        if value not in CACHE_CHOICES:
            raise UserError(f"model spec {text!r}: cache must be one of {', '.join(CACHE_CHOICES)}, not {value!r}")
        return value
    if key == "attn":
        if value not in ATTN_CHOICES:
            raise UserError(f"model spec {text!r}: attn must be one of {', '.join(ATTN_CHOICES)}, not {value!r}")
        return value
    if key == "compile":
        return parse_bool(text, key, value)
    raise KeyError(key)


OPTION_KEYS = ("quant", "cache", "compile", "attn")


def variant_suffix(options: Mapping[str, object]) -> str | None:
    """The default row name's suffix for these options, e.g. ``[torchao-int8,static,compile]``: rows of one
    model then sort together, the plain one first."""
    parts = []
    if options.get("quant"):
        parts.append(str(options["quant"]))
    if options.get("cache") == "static":
        parts.append("static")
    if options.get("compile"):
        parts.append("compile")
    if options.get("attn"):
        parts.append(str(options["attn"]))
    return f"[{','.join(parts)}]" if parts else None


def library_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_installed(source: str, options: Mapping[str, object]) -> None:
    """quant= and attn=flash_attention_2 need their library importable (checked without importing it)."""
    method = QUANT_METHODS.get(options.get("quant") or "")
    if method and importlib.util.find_spec(method.module) is None:
        raise UserError(f"model {source}: quant={method.name} needs {method.library}, which is not installed "
                        f"({INSTALL_HINT})")
    if options.get("attn") == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise UserError(f"model {source}: attn=flash_attention_2 needs the flash-attn package (CUDA only), "
                        f"which is not installed; use attn=sdpa")


def check_device(source: str, options: Mapping[str, object], device: str) -> None:
    """A method that needs CUDA, on a run that is not on CUDA: one line, before anything is loaded."""
    on_cuda = device.startswith("cuda")
    method = QUANT_METHODS.get(options.get("quant") or "")
    if method and method.cuda_only and not on_cuda:
        raise UserError(f"model {source}: quant={method.name} needs a CUDA device ({method.cuda_reason}); "
                        f"this run is on {device}: use quant=torchao-int8 or bnb-4bit here")
    if options.get("attn") == "flash_attention_2" and not on_cuda:
        raise UserError(f"model {source}: attn=flash_attention_2 needs a CUDA device; this run is on {device}")


def quantization_config(name: str):
    """transformers' quantization config for ``quant=name``."""
    if name.startswith("bnb-"):
        from transformers import BitsAndBytesConfig

        if name == "bnb-8bit":
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4" if name == "bnb-nf4" else "fp4")
    from transformers import TorchAoConfig

    if name == "torchao-int8":
        from torchao.quantization import Int8WeightOnlyConfig

        return TorchAoConfig(Int8WeightOnlyConfig())
    from torchao.quantization import Int4WeightOnlyConfig

    return TorchAoConfig(Int4WeightOnlyConfig(group_size=128))


def quantization_info(name: str, held_bytes: int | None) -> dict:
    """The row's ``model.quantization`` entry: what was quantized, how, by which library version, and the
    bytes the weights actually hold in memory."""
    m = QUANT_METHODS[name]
    return {"method": name, "bits": m.bits, "scheme": m.scheme, "library": m.library,
            "library_version": library_version(m.library), "via": "transformers quantization_config",
            "weights_bytes": held_bytes}


def silence_bnb_cast_warning() -> None:
    """bitsandbytes' 8-bit matmul warns at every call (generation included) that float32 inputs are cast to
    float16 for the int8 product: the cast is recorded once in the row (``quantization.scheme``)."""
    import warnings

    warnings.filterwarnings("ignore", message=r"MatMul8bitLt: inputs will be cast")


def runtime_info(hf_model, spec, held_bytes: int) -> dict:
    """The facts of the HF path a row's model entry carries: quantization, attention implementation, cache,
    compile, and the KV-cache bytes per token of context (for the roofline)."""
    from llmbench.meters.bandwidth import kv_bytes_per_context_token

    method = spec.option("quant")
    emb = hf_model.get_input_embeddings()
    act_bytes = int(emb.weight.element_size()) if emb is not None else None
    return {
        "quantization": quantization_info(method, held_bytes) if method else None,
        "attn_implementation": getattr(hf_model.config, "_attn_implementation", None),
        "cache": spec.option("cache", "dynamic"),
        "compile": bool(spec.option("compile", False)),
        "kv_bytes_per_context_token": kv_bytes_per_context_token(hf_model.config, act_bytes),
    }


def compile_model(backend, loaded, note) -> float:
    """Compile the model's forward pass and trigger the compilation with one short generation inside load:
    its seconds are returned (``compile_s``) and never fall in a measured window. With ``cache=static`` this
    is transformers' own compiled decode step (CompileConfig); otherwise ``torch.compile(forward,
    dynamic=True)``, so new prompt lengths do not recompile."""
    import time

    import torch

    from llmbench.models.base import GenerateParams

    hf_model, _ = loaded.handle
    if loaded.spec.option("cache") == "static":
        from transformers import CompileConfig

        config = CompileConfig(dynamic=None)
        config._compile_all_devices = True  # transformers compiles on accelerators only unless told
        hf_model.generation_config.compile_config = config
        loaded.info["compile_how"] = "transformers CompileConfig (static-cache decode step, inductor)"
    else:
        hf_model.forward = torch.compile(hf_model.forward, dynamic=True)
        loaded.info["compile_how"] = "torch.compile(model.forward, dynamic=True, inductor)"
    note(f"{loaded.name}: compiling (timed as compile_s, outside every measured window)")
    t0 = time.perf_counter()
    backend.generate(loaded, ["Hello"], GenerateParams(max_new_tokens=4))
    if loaded.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


STATIC_CACHE_LEN = 1024  # tokens; prompt + answer of every built-in task fit


def static_cache(hf_model, compile_: bool) -> int:
    """``cache=static``: one cache length for every call (the model's context if shorter), so the cache is
    allocated once and a compiled decode step never recompiles for a new prompt length inside a measured
    window (a longer call still grows it, transformers#46424). Without ``compile=true`` transformers' own
    auto-compile (CUDA) is switched off: a row says compiled only when it asked to be. Returns the length."""
    gen = hf_model.generation_config
    limit = getattr(hf_model.config.get_text_config(), "max_position_embeddings", None) or STATIC_CACHE_LEN
    gen.max_cache_len = min(STATIC_CACHE_LEN, int(limit))
    if not compile_:
        gen.disable_compile = True
    return gen.max_cache_len


def import_torchao_quietly() -> None:
    """transformers imports torchao (where installed) inside every from_pretrained, and torchao logs a warning
    for each CUDA-only extension a CPU build cannot load, and torch one per enum it registers: lines that say
    nothing about the run. Import it first with warnings off; a torchao that fails to import stays absent
    (quant=torchao-* then fails at load with its own error)."""
    import importlib.util
    import logging
    import sys

    if "torchao" in sys.modules or importlib.util.find_spec("torchao") is None:
        return
    logging.disable(logging.WARNING)
    try:
        import torchao  # noqa: F401
        import torchao.prototype.safetensors.safetensors_support  # noqa: F401  (what transformers imports)
        import torchao.quantization  # noqa: F401
    except Exception:
        pass
    finally:
        logging.disable(logging.NOTSET)
