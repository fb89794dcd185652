"""Frozen, validated configuration objects built by the CLI and read by the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import UserError

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# SPEC options every backend takes; the rest belong to the model's backend (its parse_options)
COMMON_SPEC_KEYS = ("backend", "chat_template", "name")


def _cuda_index(value: str) -> bool:
    """True for ``cuda:N``."""
    return value.startswith("cuda:") and value[5:].isdigit()


def parse_bool(text: str, key: str, value: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no) for option ``key`` of spec ``text``; UserError otherwise."""
    if value.lower() not in _BOOL:
        raise UserError(f"model spec {text!r}: {key} must be true or false, not {value!r}")
    return _BOOL[value.lower()]


def unknown_option(text: str, part: str, known) -> UserError:
    """The one error for an option no backend key matches."""
    return UserError(f"model spec {text!r}: unknown option {part!r} (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class ModelSpec:
    """A model to benchmark: an id (hub id, local directory, embedded alias, server URL...) with
    lm-eval-style options, e.g. ``smollm2-135m,dtype=bfloat16`` or ``mistralai/Mistral-7B-v0.3,device_map=auto``.

    ``backend`` is given with ``backend=NAME`` or inferred from the id (llmbench.models.infer_backend);
    ``options`` are that backend's own keys, typed by its ``parse_options``.
    """

    source: str
    backend: str = "hf"
    label: str | None = None
    chat_template: bool | None = None  # None: use it when the model has one
    options: tuple[tuple[str, object], ...] = ()
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        from llmbench.models import BACKENDS, infer_backend

        parts = [p.strip() for p in text.split(",")]
        if not parts[0]:
            raise UserError(f"model spec {text!r}: the model id or path is empty")
        pairs = [(part, *(x.strip() for x in part.partition("="))) for part in parts[1:] if part]
        explicit = [value for _, key, sep, value in pairs if key == "backend" and sep and value]
        backend = explicit[0] if explicit else infer_backend(parts[0])
        backend_cls = BACKENDS.get(backend)
        known = set(COMMON_SPEC_KEYS) | set(backend_cls.option_keys)
        common: dict[str, str] = {}
        rest: dict[str, str] = {}
        for part, key, sep, value in pairs:
            if not sep or key not in known:
                raise unknown_option(text, part, known)
            if key in common or key in rest:
                raise UserError(f"model spec {text!r}: option {key}= is given twice")
            if not value:
                raise UserError(f"model spec {text!r}: option {key}= needs a value")
            (common if key in COMMON_SPEC_KEYS else rest)[key] = value
        options = backend_cls.parse_options(text, rest)
        return cls(
            source=parts[0], backend=backend, label=common.get("name"),
            chat_template=parse_bool(text, "chat_template", common["chat_template"])
            if "chat_template" in common else None,
            options=tuple(sorted(options.items())), raw=text,
        )

    def option(self, key: str, default=None):
        """The value of this backend's option ``key`` (typed), else ``default``."""
        return dict(self.options).get(key, default)

    @property
    def name(self) -> str:
        """Short display name: the label, else the last path component of the id."""
        if self.label:
            return self.label
        base = Path(self.source.rstrip("/")).name or self.source
        # a backend may name its variants (``smollm2-135m[bnb-4bit]``), so rows of one model sort together
        from llmbench.models import BACKENDS

        variant = getattr(BACKENDS.get(self.backend), "variant", None) if self.backend in BACKENDS else None
        suffix = variant(dict(self.options)) if variant else None
        return base + suffix if suffix else base


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
