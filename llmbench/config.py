"""Frozen, validated configuration objects built by the CLI and read by the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from llmbench.errors import UserError
from llmbench.levels import batch_suffix, length_suffix
from llmbench.names import label_problem, row_name_problem

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
        if "name" in common:
            problem = label_problem(common["name"])
            if problem:
                raise UserError(f"model spec {text!r}: name= {problem} (as a task name), e.g. name=my-model-v2")
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
        """Short display name: the label, else the last path component of the id; for a served model the
        last path component of its ``model=`` name, else the server's host:port."""
        if self.label:
            return self.label
        if self.backend == "openai":
            from urllib.parse import urlsplit

            model = self.option("model")
            base = (Path(str(model).rstrip("/")).name or str(model)) if model else (
                urlsplit(self.source).netloc or self.source)
        else:
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
    batch_size: int = 1  # the first (smallest) level of a sweep
    seed: int = 0
    do_sample: bool = False
    use_chat_template: bool = True
    # a batch-size sweep (``--batch-size 1,4,16``): two or more levels, ascending, each its own row variant;
    # () for one batch size (then ``batch_size`` is it and the records are those of a run without a sweep)
    batch_sizes: tuple[int, ...] = ()
    # ``--new-tokens``: the generation budget of every task (replacing the task's own); two or more levels are a
    # length sweep, each its own row variant; () for none (each task's budget, capped by ``max_new_tokens``)
    new_tokens: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.batch_size < 1 or any(b < 1 for b in self.batch_sizes):
            raise UserError("--batch-size must be at least 1")
        if self.batch_sizes and (len(self.batch_sizes) < 2 or list(self.batch_sizes) != sorted(set(self.batch_sizes))
                                 or self.batch_size != self.batch_sizes[0]):
            raise ValueError("batch_sizes: two or more ascending levels, the first equal to batch_size")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UserError("--max-new-tokens must be at least 1")
        if self.new_tokens and (list(self.new_tokens) != sorted(set(self.new_tokens)) or self.new_tokens[0] < 1):
            raise ValueError("new_tokens: ascending levels of at least 1, as parse_new_tokens gives them")
        if self.new_tokens and self.max_new_tokens is not None:
            raise UserError("--new-tokens sets every task's generation budget per level and --max-new-tokens caps "
                            "it: give one of them")

    @property
    def batch_levels(self) -> tuple[int, ...]:
        """The batch sizes the in-process models run at, each a row variant: ``(batch_size,)`` without a sweep."""
        return self.batch_sizes or (self.batch_size,)

    @property
    def is_batch_sweep(self) -> bool:
        return bool(self.batch_sizes)

    @property
    def length_levels(self) -> tuple[int | None, ...]:
        """The generation budgets of the in-process rows, each a row variant: ``(None,)`` (each task's own)
        without ``--new-tokens``."""
        return self.new_tokens or (None,)

    @property
    def is_length_sweep(self) -> bool:
        return len(self.new_tokens) > 1

    @property
    def is_sweep(self) -> bool:
        """More than one row per in-process model x task: a batch-size or a length sweep."""
        return self.is_batch_sweep or self.is_length_sweep

    def level_suffix(self, batch_size: int, new_tokens: int | None) -> str:
        """A sweep row's name suffix: ``@b4``, ``@n64``, ``@b4@n64`` (``""`` for the run's only level)."""
        return (batch_suffix(batch_size) if self.is_batch_sweep else "") + (
            length_suffix(new_tokens) if self.is_length_sweep else "")

    def budget(self, task_max_new_tokens: int, level: int | None = None) -> int:
        """A task's generation budget: the length level where a sweep gives one, else the task's own capped by
        ``--max-new-tokens``."""
        if level is not None:
            return level
        return min(self.max_new_tokens, task_max_new_tokens) if self.max_new_tokens else task_max_new_tokens

    @classmethod
    def with_batch_levels(cls, levels: tuple[int, ...], **kwargs) -> "GenerationConfig":
        """The config for ``--batch-size`` levels as parse_batch_sizes gives them (one level: no sweep)."""
        return cls(batch_size=levels[0], batch_sizes=levels if len(levels) > 1 else (), **kwargs)


@dataclass(frozen=True)
class LoadLevel:
    """One load setting of a served model; ``concurrency=1, rate=None`` is the latency setting."""

    concurrency: int | None = 1  # at most this many requests in flight; None: unbounded (a rate level)
    rate: float | None = None  # requests per second, Poisson arrivals (seeded with --seed)

    @property
    def is_latency(self) -> bool:
        return self.concurrency == 1 and self.rate is None

    @property
    def suffix(self) -> str:
        """What a level row's model name gets: ``""`` for the latency setting, else ``@c4``, ``@r2``,
        ``@c4r2.5`` (rows are keyed by model and task name, so each level stays its own row)."""
        if self.is_latency:
            return ""
        c = f"c{self.concurrency}" if self.concurrency is not None else ""
        r = f"r{self.rate:g}" if self.rate is not None else ""
        return f"@{c}{r}"

    def describe(self) -> str:
        parts = [f"concurrency {self.concurrency}" if self.concurrency else "unbounded concurrency"]
        if self.rate is not None:
            parts.append(f"Poisson {self.rate:g} req/s")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"concurrency": self.concurrency, "rate": self.rate,
                "arrivals": "poisson" if self.rate is not None else "closed-loop"}


_SLO_KEYS = {"ttft_ms": "ttft_s", "tpot_ms": "tpot_s", "e2e_ms": "e2e_s"}


def parse_concurrency(text: str | None) -> tuple[int, ...]:
    """``"1,4,16"`` -> (1, 4, 16); UserError for anything but positive integers."""
    if text is None:
        return ()
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"--concurrency {text!r}: give positive integers separated by commas, e.g. 1,4,16")
        out.append(int(part))
    return tuple(dict.fromkeys(out))


def parse_rates(text: str | None) -> tuple[float, ...]:
    """``"0.5,2"`` -> (0.5, 2.0) requests per second; UserError for anything but positive numbers."""
    if text is None:
        return ()
    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            value = -1.0
        if not (value > 0 and value != float("inf")):
            raise UserError(f"--rate {text!r}: give requests per second as positive numbers, e.g. 2 or 0.5,2")
        out.append(value)
    return tuple(dict.fromkeys(out))


def parse_slo(text: str | None) -> tuple[tuple[str, float], ...]:
    """``"ttft_ms=200,tpot_ms=50"`` -> (("ttft_s", 0.2), ("tpot_s", 0.05)); keys ttft_ms, tpot_ms, e2e_ms."""
    if text is None:
        return ()
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = (x.strip() for x in part.partition("="))
        if key not in _SLO_KEYS or not sep:
            raise UserError(f"--slo {text!r}: unknown bound {part!r} (known: {', '.join(_SLO_KEYS)}, e.g. "
                            "ttft_ms=200,tpot_ms=50)")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if not ms > 0:
            raise UserError(f"--slo {text!r}: {key} must be a positive number of milliseconds")
        out[_SLO_KEYS[key]] = ms / 1000.0
    if not out:
        raise UserError(f"--slo {text!r}: give at least one bound, e.g. ttft_ms=200,tpot_ms=50")
    return tuple(out.items())


# query parameters refused in a URL as credentials (plus any name ending _key, _token, _secret)
CREDENTIAL_PARAMS = frozenset({"key", "api_key", "apikey", "token", "access_token", "auth", "password", "pass",
                               "secret", "signature", "sig", "x_api_key", "bearer"})


def url_credentials(url: str) -> str | None:
    """What in ``url`` looks like a credential (``user:pass@``, ``?key=``, ``?api_key=``, ``?token=``...), or
    None: records keep URLs, so none may carry a secret."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "user:password@"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        low = name.lower().replace("-", "_")
        if low in CREDENTIAL_PARAMS or low.endswith(("_key", "_token", "_secret")):
            return f"?{name}="
    return None


@dataclass(frozen=True)
class LoadConfig:
    """How served models are driven: load levels, SLOs, telemetry, timeouts (in-process models run one
    batch at a time, their latency setting, whatever is asked here)."""

    concurrency: tuple[int, ...] = ()  # () : not given
    rates: tuple[float, ...] = ()
    slo: tuple[tuple[str, float], ...] = ()  # (ttft_s | tpot_s | e2e_s, upper bound in seconds)
    gpu_telemetry: tuple[str, ...] = ()  # DCGM exporter /metrics URLs, one per node
    request_timeout_s: float = 600.0
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.request_timeout_s > 0:
            raise UserError("--request-timeout must be a positive number of seconds")
        if not self.connect_timeout_s > 0:
            raise UserError("--connect-timeout must be a positive number of seconds")
        for url in self.gpu_telemetry:
            if not url.startswith(("http://", "https://")):
                raise UserError(f"--gpu-telemetry {url!r}: give the exporter's URL, e.g. http://node1:9400/metrics")
            found = url_credentials(url)
            if found:
                raise UserError(f"--gpu-telemetry: put no credentials in the URL ({found}; records keep it)")

    def levels(self) -> list[LoadLevel]:
        """Every (concurrency, rate) pair asked for; the latency setting when neither was given."""
        if not self.concurrency and not self.rates:
            return [LoadLevel(1, None)]
        if not self.rates:
            return [LoadLevel(c, None) for c in self.concurrency]
        concurrency = self.concurrency or (None,)
        return [LoadLevel(c, r) for c in concurrency for r in self.rates]

    @property
    def is_default(self) -> bool:
        return self == LoadConfig()

    def to_settings(self) -> dict:
        return {"levels": [lv.to_dict() | {"suffix": lv.suffix} for lv in self.levels()],
                "slo": dict(self.slo) or None, "gpu_telemetry": list(self.gpu_telemetry),
                "request_timeout_s": self.request_timeout_s, "connect_timeout_s": self.connect_timeout_s}


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
    load: LoadConfig = field(default_factory=LoadConfig)

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
            problem = row_name_problem(spec.name)
            if problem:  # a name taken from a path or a server: records and exports could not carry it
                raise UserError(f"model {spec.source!r} would be named {spec.name!r}, which {problem}: give it a "
                                f"label with name=LABEL, e.g. -m '{_with_name(spec, 'my-model')}'")
            if spec.name in seen:
                raise UserError(
                    f"two models are named {spec.name!r}; rows and comparisons are keyed by name: give each "
                    f"its own label with name=LABEL, e.g. -m '{_with_name(spec, spec.name + '-2')}'"
                )
            seen.add(spec.name)
        if self.lm_eval_include is not None and not self.lm_eval_tasks:
            raise UserError("--lm-eval-include only applies with --lm-eval TASKS")
        from llmbench.models import is_served

        served = [spec for spec in self.models if is_served(spec.backend)]
        if self.lm_eval_tasks and served:
            raise UserError(
                f"--lm-eval runs on in-process models only, and {served[0].name!r} is served: run lm-eval's own "
                "API model on it (lm_eval --model local-completions --model_args base_url=URL/completions,...; "
                "see docs/served.md), or drop --lm-eval for this run")
        gen = self.generation
        if gen.is_batch_sweep:
            levels = ",".join(map(str, gen.batch_levels))
            if self.lm_eval_tasks:
                raise UserError(f"--batch-size {levels}: a batch-size sweep runs on llmbench's own tasks, and lm-eval "
                                "runs at one batch size: give one --batch-size with --lm-eval, or run them apart")
            if served and len(served) == len(self.models):
                raise UserError(f"--batch-size {levels}: batch-size levels apply to in-process models, and every "
                                "model here is served (the server batches concurrent requests itself): give load "
                                f"levels with --concurrency {levels} instead")
        if gen.new_tokens and self.lm_eval_tasks:
            raise UserError(f"--new-tokens {','.join(map(str, gen.new_tokens))}: it sets the budget of llmbench's own "
                            "tasks, and lm-eval tasks keep their own (--max-new-tokens caps them): run them apart")
        if gen.is_length_sweep and served:
            levels = ",".join(map(str, gen.new_tokens))
            raise UserError(f"--new-tokens {levels}: a length sweep runs in-process models, and {served[0].name!r} "
                            "is served: run it apart, with one --new-tokens value per run")
        if gen.is_sweep:
            names = {spec.name for spec in self.models}
            for spec in self.models:
                for b in gen.batch_levels:
                    for n in gen.length_levels:
                        suffix = gen.level_suffix(b, n)
                        if not is_served(spec.backend) and suffix and spec.name + suffix in names:
                            raise UserError(f"model name {spec.name + suffix!r} is also the name of sweep level "
                                            f"{suffix[1:]} of {spec.name!r}: rename one with name=LABEL")
        if served:
            names = {spec.name for spec in self.models}
            for spec in served:
                for level in self.load.levels():
                    if level.suffix and spec.name + level.suffix in names:
                        raise UserError(f"model name {spec.name + level.suffix!r} is also the name of load level "
                                        f"{level.suffix[1:]} of {spec.name!r}: rename one with name=LABEL")


def _with_name(spec: ModelSpec, name: str) -> str:
    """The spec as the user wrote it, with ``name=`` set to ``name`` (replacing one already given)."""
    parts = [p for p in (spec.raw or spec.source).split(",") if not p.strip().startswith("name=")]
    return ",".join([*parts, f"name={name}"])
