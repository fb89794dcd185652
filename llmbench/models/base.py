"""The backend protocol. A backend loads a model once and generates from prompts with timestamps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from llmbench.config import ModelSpec


def time_per_output_token(ttft_s: float | None, e2e_s: float | None, new_tokens: int) -> float | None:
    """TPOT = (e2e - TTFT) / (new_tokens - 1); None when it is undefined (no TTFT, fewer than 2 tokens)."""
    if ttft_s is None or e2e_s is None or new_tokens < 2:
        return None
    return (e2e_s - ttft_s) / (new_tokens - 1)


@dataclass
class Generation:
    """One generated answer with its own timings (seconds, perf_counter clock)."""

    prompt: str  # the exact text given to the tokenizer (chat template applied)
    text: str  # decoded new text, cut at the first stop sequence
    new_tokens: int  # generated tokens, the end-of-sequence token included, padding excluded
    ttft_s: float | None  # start of generate -> first new token on the host
    e2e_s: float  # start of generate -> end (device synchronised); in a batch, the batch's end
    # start of generate -> this answer's last token on the host, for an answer that ended before its batch did
    last_token_s: float | None = None

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first, up to this answer's own last token."""
        end = self.last_token_s if self.last_token_s is not None else self.e2e_s
        return time_per_output_token(self.ttft_s, end, self.new_tokens)


@dataclass
class LoadedModel:
    """What a backend returns from load: the handle plus the facts a record needs."""

    spec: ModelSpec
    name: str
    parameters: int
    weights_bytes: int
    dtype: str
    device: str
    source: str  # resolved path or hub id actually loaded
    has_chat_template: bool
    handle: Any = field(repr=False, default=None)
    use_chat_template: bool = False  # set by the runner: the template is applied to every prompt when True


class Backend(Protocol):
    """Three methods: load, generate, unload (lm-eval's LM class is similarly small)."""

    def load(self, spec: ModelSpec, device: str) -> LoadedModel: ...

    def generate(
        self,
        model: LoadedModel,
        prompts: Sequence[str],
        max_new_tokens: int,
        stop: Sequence[str],
        batch_size: int,
        seed: int,
    ) -> list[Generation]: ...

    def unload(self, model: LoadedModel) -> None: ...
