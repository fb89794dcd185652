"""The backend protocol: everything the runner asks of a way to run a model (in process with transformers,
a served model behind an HTTP API, a native runtime...). A new backend is one file implementing it plus one
line in ``llmbench.models.BACKENDS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, Sequence

from llmbench.meters.timing import time_per_output_token

if TYPE_CHECKING:
    from llmbench.config import ModelSpec

Note = Callable[[str], None]  # a one-line message for the user (the CLI prints it above the progress bar)


@dataclass
class Generation:
    """One generated answer with its own timings (seconds, perf_counter clock)."""

    prompt: str  # the exact text given to the model (chat template applied)
    text: str  # decoded new text, cut at the first stop sequence
    new_tokens: int  # generated tokens, the end-of-sequence token included, padding excluded
    ttft_s: float | None  # start of the request -> first new token on the host
    e2e_s: float  # start -> end (device synchronised); in a batch, the batch's end
    # start -> this answer's last token on the host, for an answer that ended before its batch did
    last_token_s: float | None = None
    prompt_tokens: int | None = None  # the prompt's length in tokens (the roofline's KV-cache reads), if known
    # backend-specific facts for this answer's samples.jsonl line (e.g. a server's request id and usage)
    extra: dict = field(default_factory=dict)
    # why this answer is missing or incomplete (a served request that failed); None: it completed
    error: str | None = None
    # start -> the first token of any kind, where it differs from ``ttft_s`` (a served reasoning model's
    # first reasoning chunk); set by the served backend, whose TPOT spans first -> last token chunk and is
    # undefined (None) when both are the same chunk
    first_token_s: float | None = None

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first, up to this answer's own last token."""
        end = self.last_token_s if self.last_token_s is not None else self.e2e_s
        if self.first_token_s is not None:
            if end is None or end <= self.first_token_s:
                return None  # one token-carrying chunk: no gap between tokens was seen
            return time_per_output_token(self.first_token_s, end, self.new_tokens)
        return time_per_output_token(self.ttft_s, end, self.new_tokens)


@dataclass(frozen=True)
class GenerateParams:
    """How to decode one batch of prompts: greedy, with the task's cap and stop sequences."""

    max_new_tokens: int
    stop: tuple[str, ...] = ()
    batch_size: int = 1
    seed: int = 0
    # load level (served backends only; an in-process backend runs one batch at a time and ignores them):
    # at most ``concurrency`` requests in flight (None: unbounded), Poisson arrivals at ``rate`` per second
    concurrency: int | None = 1
    rate: float | None = None


@dataclass
class PreparedModel:
    """What preflight found, before any weights are read: the spec and what ``load`` will load."""

    spec: ModelSpec
    source: str  # a directory, a hub id, an embedded alias, a URL...
    facts: dict = field(default_factory=dict)  # backend-private findings of preflight (e.g. an embedded alias)


@dataclass
class LoadedModel:
    """What a backend returns from load: the handle plus the facts a record needs."""

    spec: ModelSpec
    name: str
    parameters: int | None  # None: not known (a served model whose size was not declared), never guessed
    weights_bytes: int | None
    dtype: str
    device: str
    source: str  # resolved path, hub id or URL actually loaded
    has_chat_template: bool
    handle: Any = field(repr=False, default=None)
    use_chat_template: bool = False  # set by the runner: the template is applied to every prompt when True
    prepare_s: float = 0.0  # one-time preparation inside load (e.g. converting an embedded GGUF), seconds
    info: dict = field(default_factory=dict)  # backend-specific facts added to the row's model entry


class Backend(Protocol):
    """What the runner calls, in this order: parse_options (while parsing -m), preflight (every model, before
    anything is measured), resolve_device, load (inside a memory window), render, generate (under the meters),
    unload."""

    name: ClassVar[str]

    @classmethod
    def parse_options(cls, text: str, options: Mapping[str, str]) -> dict:
        """This backend's SPEC options (``key=value`` after the id), typed; an unknown or bad one is a
        UserError naming the spec ``text``."""
        ...

    def preflight(self, spec: ModelSpec) -> PreparedModel:
        """Check the model can be found (a directory, a hub id, a server), without loading it; UserError if
        not."""
        ...

    def resolve_device(self, requested: str) -> str:
        """The device the model runs on for ``--device requested`` (``auto``, ``cpu``, ``cuda[:i]``)."""
        ...

    def load(self, prepared: PreparedModel, device: str, note: Note) -> LoadedModel: ...

    def render(self, model: LoadedModel, messages: list[dict], plain: str) -> str:
        """The exact prompt: the chat template when ``model.use_chat_template``, else the plain prompt."""
        ...

    def generate(self, model: LoadedModel, prompts: Sequence[str], params: GenerateParams,
                 sync: Callable[[], None] | None = None) -> list[Generation]:
        """One Generation per prompt, in order, each with its own timings (see llmbench.meters.timing)."""
        ...

    def unload(self, model: LoadedModel) -> None: ...
