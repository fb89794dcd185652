"""Where an ``hf`` model comes from, checked before anything is measured: an embedded alias (a real model
in a PyPI package, converted once into LLMBENCH_CACHE), a local directory, or a hub id. Also the typed
SPEC options of the ``hf`` backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from llmbench.config import ModelSpec, parse_bool
from llmbench.errors import UserError
from llmbench.models import quant
from llmbench.models.base import Note, PreparedModel
from llmbench.registry import did_you_mean

DTYPES = ("auto", "float32", "float16", "bfloat16")
OPTION_KEYS = ("dtype", "device_map", "revision", "gguf_file", "trust_remote_code", *quant.OPTION_KEYS)
# device_map strings transformers accepts (transformers.integrations.accelerate.check_and_set_device_map):
# accelerate's placement strategies, or one torch device for the whole model.
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
DEVICE_MAP_DEVICES = ("cpu", "cuda", "cuda:N", "mps")


def valid_device_map(value: str) -> bool:
    """True for a device_map string transformers can place a model with."""
    return (value in DEVICE_MAP_STRATEGIES or value in ("cpu", "cuda", "mps")
            or (value.startswith("cuda:") and value[5:].isdigit()))


def parse_options(text: str, options: Mapping[str, str]) -> dict:
    """The ``hf`` backend's SPEC options, typed and checked."""
    out: dict = {}
    for key, value in options.items():
        if key == "trust_remote_code":
            out[key] = parse_bool(text, key, value)
        elif key == "dtype":
            if value not in DTYPES:
                raise UserError(f"model spec {text!r}: dtype must be one of {', '.join(DTYPES)}")
            out[key] = value
        elif key == "device_map":
            if not valid_device_map(value):
                raise UserError(
                    f"model spec {text!r}: device_map must be one of "
                    f"{', '.join(DEVICE_MAP_STRATEGIES + DEVICE_MAP_DEVICES)}, not {value!r}"
                )
            out[key] = value
        elif key in quant.OPTION_KEYS:
            out[key] = quant.parse_option(text, key, value)
        else:
            out[key] = value
    return out


def preflight(spec: ModelSpec) -> PreparedModel:
    """Check a model spec can be resolved, without loading weights. Unknown models raise UserError."""
    from llmbench.models.embedded import EMBEDDED, check_cache, is_converted

    revision, gguf_file = spec.option("revision"), spec.option("gguf_file")
    options = dict(spec.options)
    quant.check_installed(spec.source, options)
    if quant.QUANT_METHODS.get(options.get("quant") or "", None) and quant.QUANT_METHODS[options["quant"]].cuda_only:
        _check_cuda_visible(spec, options)
    if spec.source in EMBEDDED:
        emb = EMBEDDED[spec.source]
        # the alias is one fixed file inside a package: there is no other revision or GGUF file to pick
        for key, value in (("revision", revision), ("gguf_file", gguf_file)):
            if value is not None:
                raise UserError(
                    f"model {spec.source}: {key}= does not apply to an embedded alias (it is a fixed model shipped "
                    f"in the {emb.package} package); remove {key}={value}"
                )
        if not emb.installed():
            raise UserError(f"model {spec.source}: its package is not installed ({emb.install})")
        if not is_converted(spec.source):  # converted on first use: the cache must be able to hold it
            check_cache(spec.source)
        return PreparedModel(spec, spec.source, facts={"embedded": True})
    path = Path(spec.source).expanduser()
    if path.exists():
        if not path.is_dir():
            hint = f" (for a GGUF file use {path.parent},gguf_file={path.name})" if path.suffix == ".gguf" else ""
            raise UserError(f"model {spec.source}: is a file, not a model directory{hint}")
        if gguf_file:
            if not (path / gguf_file).is_file():
                raise UserError(f"model {spec.source}: gguf_file {gguf_file} not found in {path}")
        elif not (path / "config.json").is_file():
            raise UserError(f"model {spec.source}: directory has no config.json (and no gguf_file= given)")
        if revision is not None:
            raise UserError(f"model {spec.source}: revision= applies to hub ids only, not to a local directory")
        return PreparedModel(spec, str(path))
    parts = spec.source.split("/")
    if len(parts) != 2 or not all(parts):
        raise UserError(
            f"unknown model {spec.source!r}: not an embedded alias ({', '.join(EMBEDDED)}), "
            f"not a local directory, not a hub id (owner/name){did_you_mean(spec.source, EMBEDDED)}"
        )
    _check_hub_id(spec)
    return PreparedModel(spec, spec.source)


def _check_cuda_visible(spec: ModelSpec, options: dict) -> None:
    """A CUDA-only method where torch sees no CUDA device fails here; ``resolve_device`` checks again against
    the device the run actually picks (``--device cpu`` on a GPU machine)."""
    import torch

    if not torch.cuda.is_available():
        quant.check_device(spec.source, options, "cpu")


def _check_hub_id(spec: ModelSpec) -> None:
    """Resolve a hub id's config (one small file, cached) so a typo fails before anything is measured."""
    from transformers import AutoConfig

    gguf_file = spec.option("gguf_file")
    try:
        AutoConfig.from_pretrained(
            spec.source, revision=spec.option("revision"), trust_remote_code=spec.option("trust_remote_code", False),
            **({"gguf_file": gguf_file} if gguf_file else {}),
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {spec.source}: cannot resolve it on the hub or in the local cache ({first})") from None


def load_source(prepared: PreparedModel, load: Callable[[str], Any], note: Note) -> tuple[Any, str, float]:
    """``load(source)`` of the directory or id to load; returns its value, that source and the seconds spent
    preparing it. An embedded alias is converted from its packaged GGUF once (later runs find the converted
    directory), and converted again once when its cached copy is damaged (llmbench.models.embedded)."""
    if not prepared.facts.get("embedded"):
        return load(prepared.source), prepared.source, 0.0
    from llmbench.models.embedded import load_converted

    value, directory, spent = load_converted(prepared.source, lambda d: load(str(d)), note)
    return value, str(directory), spent
