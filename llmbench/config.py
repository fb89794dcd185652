"""Frozen, validated configuration objects built by the CLI and read by the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import UserError

DTYPES = ("auto", "float32", "float16", "bfloat16")
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_SPEC_KEYS = {"dtype", "device_map", "revision", "gguf_file", "trust_remote_code", "name", "chat_template"}
# device_map strings transformers accepts (transformers.integrations.accelerate.check_and_set_device_map):
# accelerate's placement strategies, or one torch device for the whole model.
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
DEVICE_MAP_DEVICES = ("cpu", "cuda", "cuda:N", "mps")


def _cuda_index(value: str) -> bool:
    """True for ``cuda:N``."""
    return value.startswith("cuda:") and value[5:].isdigit()


def valid_device_map(value: str) -> bool:
    """True for a device_map string transformers can place a model with."""
    return value in DEVICE_MAP_STRATEGIES or value in ("cpu", "cuda", "mps") or _cuda_index(value)


@dataclass(frozen=True)
class ModelSpec:
    """A model to benchmark: a hub id, a local directory or an embedded alias, with lm-eval-style options.

    ``smollm2-135m,dtype=bfloat16`` or ``mistralai/Mistral-7B-v0.3,device_map=auto,revision=main``.
    """

    source: str
    dtype: str = "auto"
    device_map: str | None = None
    revision: str | None = None
    gguf_file: str | None = None
    trust_remote_code: bool = False
    label: str | None = None
    chat_template: bool | None = None  # None: use it when the tokenizer has one
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        parts = [p.strip() for p in text.split(",")]
        if not parts[0]:
            raise UserError(f"model spec {text!r}: the model id or path is empty")
        kwargs: dict = {}
        seen: set[str] = set()
        for part in parts[1:]:
            if not part:
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in _SPEC_KEYS:
                raise UserError(
                    f"model spec {text!r}: unknown option {part!r} (known: {', '.join(sorted(_SPEC_KEYS))})"
                )
            if key in seen:
                raise UserError(f"model spec {text!r}: option {key}= is given twice")
            seen.add(key)
            if not value:
                raise UserError(f"model spec {text!r}: option {key}= needs a value")
            if key in ("trust_remote_code", "chat_template"):
                if value.lower() not in _BOOL:
                    raise UserError(f"model spec {text!r}: {key} must be true or false, not {value!r}")
                kwargs[key] = _BOOL[value.lower()]
            elif key == "dtype":
                if value not in DTYPES:
                    raise UserError(f"model spec {text!r}: dtype must be one of {', '.join(DTYPES)}")
                kwargs["dtype"] = value
            elif key == "device_map":
                if not valid_device_map(value):
                    raise UserError(
                        f"model spec {text!r}: device_map must be one of "
                        f"{', '.join(DEVICE_MAP_STRATEGIES + DEVICE_MAP_DEVICES)}, not {value!r}"
                    )
                kwargs["device_map"] = value
            elif key == "name":
                kwargs["label"] = value
            else:
                kwargs[key] = value
        return cls(source=parts[0], raw=text, **kwargs)

    @property
    def name(self) -> str:
        """Short display name: the label, else the last path component of the id."""
        if self.label:
            return self.label
        return Path(self.source.rstrip("/")).name or self.source


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings shared by every model in a run (tasks may lower max_new_tokens / add stops)."""

    max_new_tokens: int | None = None  # None: the task's own setting
    batch_size: int = 1
    seed: int = 0
    do_sample: bool = False
    use_chat_template: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UserError("--max-new-tokens must be at least 1")


@dataclass(frozen=True)
class RunConfig:
    """Everything one `llmbench run` needs."""

    models: tuple[ModelSpec, ...]
    tasks: tuple[str, ...] = ("smoke",)
    limit: int | None = None
    device: str = "auto"
    warmup: int = 1
    out_dir: Path = Path("results")
    name: str | None = None
    tasks_dirs: tuple[Path, ...] = ()
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    lm_eval_tasks: tuple[str, ...] = ()
    lm_eval_include: Path | None = None
    command: str = ""

    def __post_init__(self) -> None:
        if not self.models:
            raise UserError("give at least one model with -m/--model")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.warmup < 0:
            raise UserError("--warmup must be 0 or more")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or _cuda_index(dev)):
            raise UserError(f"--device must be auto, cpu, cuda or cuda:N, not {dev!r}")
        seen: set[str] = set()
        for spec in self.models:
            if spec.name in seen:
                raise UserError(
                    f"two models are named {spec.name!r}; rows and comparisons are keyed by name: give each "
                    f"its own label with name=LABEL, e.g. -m '{_with_name(spec, spec.name + '-2')}'"
                )
            seen.add(spec.name)
        if self.lm_eval_include is not None and not self.lm_eval_tasks:
            raise UserError("--lm-eval-include only applies with --lm-eval TASKS")


def _with_name(spec: ModelSpec, name: str) -> str:
    """The spec as the user wrote it, with ``name=`` set to ``name`` (replacing one already given)."""
    parts = [p for p in (spec.raw or spec.source).split(",") if not p.strip().startswith("name=")]
    return ",".join([*parts, f"name={name}"])
