"""Latency measurement, in one place: the TTFT / TPOT definitions, the token clock that timestamps
generation steps, the warm-up rule, and the latency summary of a task's generations. Used by the runner,
the HF backend, the lm-eval bridge and any other backend. Why the warm-up rule is what it is: docs/meters.md.

Definitions (every backend): TTFT = start of a request -> its first generated token on the host;
TPOT = (last token time - TTFT) / (new tokens - 1); e2e = start -> end; decode throughput =
tokens after the first / (e2e - TTFT), summed over batches so batched answers are not counted twice.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Protocol, Sequence

CPU_WARMUP_NEW_TOKENS = 8  # decode steps per warm-up generation on the CPU


def time_per_output_token(ttft_s: float | None, last_s: float | None, new_tokens: int) -> float | None:
    """TPOT = (last token time - TTFT) / (new_tokens - 1); None when it is undefined (no TTFT, fewer than 2
    tokens)."""
    if ttft_s is None or last_s is None or new_tokens is None or new_tokens < 2:
        return None
    return (last_s - ttft_s) / (new_tokens - 1)


def warmup_new_tokens(device: str, max_new: int) -> int:
    """Decode steps (at most) per warm-up generation: the full length on CUDA (a short warm-up left the
    first measured sample 2-3.5x slower per token on an H200), a few steps on the CPU, where the first sample
    was within the others' spread (docs/meters.md, "Warm-up")."""
    return max_new if device.startswith("cuda") else min(max_new, CPU_WARMUP_NEW_TOKENS)


def warmup_prefills(device: str, warmup: int) -> bool:
    """Whether every measured batch is also prefilled once (one new token) before the metered window: on
    CUDA, where the first prefill of each new prompt length carries a one-off cost (docs/meters.md)."""
    return warmup > 0 and device.startswith("cuda")


class TokenClock:
    """A transformers ``generate()`` streamer that only timestamps: its first ``put`` is the prompt, then one
    ``put`` per decoding step (called with a CPU tensor, so the device has finished the step)."""

    def __init__(self) -> None:
        self.t0: float | None = None  # set by ``token_clock`` when the request starts
        self.first_token_at: float | None = None
        self.steps = 0
        self.step_times: list[float] = []  # when each step's tokens reached the host
        self.e2e_s: float | None = None
        self._seen_prompt = False

    def put(self, value) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
        self.step_times.append(now)
        self.steps += 1

    def end(self) -> None:
        pass

    @property
    def ttft_s(self) -> float | None:
        """Start -> first generated token, or None when no token came."""
        if self.first_token_at is None or self.t0 is None:
            return None
        return self.first_token_at - self.t0

    def step_s(self, i: int) -> float:
        """Start -> the host receiving step ``i``'s tokens (0-based)."""
        return self.step_times[i] - (self.t0 or 0.0)


@contextlib.contextmanager
def token_clock(sync: Callable[[], None] | None = None) -> Iterator[TokenClock]:
    """``with token_clock(sync) as clock: model.generate(..., streamer=clock)``: the device is synchronised
    before the start and before the end are read; ``clock.ttft_s`` and ``clock.e2e_s`` are set."""
    sync = sync or (lambda: None)
    clock = TokenClock()
    sync()
    clock.t0 = time.perf_counter()
    try:
        yield clock
    finally:
        sync()
        clock.e2e_s = time.perf_counter() - clock.t0


class Timed(Protocol):
    """What the latency summary reads from one answer (a Generation, an lm-eval request's timing...)."""

    ttft_s: float | None
    e2e_s: float
    new_tokens: int

    @property
    def tpot_s(self) -> float | None: ...


def latency_summary(timings: Sequence[Timed], batch_size: int, seed: int, method: str) -> dict:
    """Per-answer summaries (mean/p50/p90/p99 + bootstrap CI) and throughput of one task's generations.

    Throughput is computed per batch (answers of one batch share their TTFT and end time), so batched
    answers are not counted twice; their CIs resample whole batches."""
    from llmbench.stats import Summary

    batches = [timings[i:i + batch_size] for i in range(0, len(timings), batch_size)]
    # decode throughput counts only batches whose answers have a TPOT (or too few tokens to have one): an
    # answer of several tokens whose TPOT is undefined (a served answer in one chunk) would add its tokens
    # with 0 s. In-process answers lack a TPOT only below 2 tokens, so their batches all stay.
    timed = [b for b in batches if not any(g.tpot_s is None and g.new_tokens >= 2 for g in b)]
    decode_tokens = sum(max(0, sum(g.new_tokens for g in b) - len(b)) for b in timed)
    decode_s = sum(b[0].e2e_s - _first_token_s(b[0]) for b in timed if _first_token_s(b[0]) is not None)
    total_tokens = sum(g.new_tokens for g in timings)
    wall = sum(b[0].e2e_s for b in batches)
    groups = [i // batch_size for i in range(len(timings))] if batch_size > 1 else None
    return {
        "setting": "latency" if batch_size == 1 else "throughput",
        "batch_size": batch_size,
        "method": method,
        "ttft_s": Summary.from_values([g.ttft_s for g in timings], seed, groups).to_dict(),
        "tpot_s": Summary.from_values([g.tpot_s for g in timings], seed, groups).to_dict(),
        "e2e_s": Summary.from_values([g.e2e_s for g in timings], seed, groups).to_dict(),
        "new_tokens": Summary.from_values([g.new_tokens for g in timings], seed, groups).to_dict(),
        # no decode step (every answer one token long) is no throughput measured, not a rate of 0
        "tokens_per_s": decode_tokens / decode_s if decode_tokens > 0 and decode_s > 0 else None,
        "e2e_tokens_per_s": total_tokens / wall if wall > 0 else None,
        "total_new_tokens": total_tokens,
        "generate_s": wall,
    }


def _first_token_s(g) -> float | None:
    """Start -> the answer's first token of any kind (a served reasoning chunk may come before TTFT's)."""
    first = getattr(g, "first_token_s", None)
    return first if first is not None else g.ttft_s
