"""lm-eval's HF model class on the model llmbench already loaded, measured by llmbench: warm-up, a memory +
energy window per task, per-request TTFT/e2e at batch size 1 (see docs/lm-eval.md for the method)."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

from llmbench.meters.timing import time_per_output_token, token_clock, warmup_prefills

ROW_PREFIX = "lm-eval:"
_GEN_TOKEN_KEYS = ("max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens")


@dataclass
class Timing:
    """One generation request: same fields as llmbench's own samples."""

    ttft_s: float | None
    e2e_s: float
    new_tokens: int

    @property
    def tpot_s(self) -> float | None:
        return time_per_output_token(self.ttft_s, self.e2e_s, self.new_tokens)


@dataclass
class TaskStats:
    """What the wrapper measured for one lm-eval task."""

    request_types: list[str] = field(default_factory=list)
    requests: int = 0
    busy_s: float = 0.0  # wall time of the request calls, warm-up excluded
    per_request: bool = True  # every request timed on its own
    timings: dict[int, list[Timing]] = field(default_factory=lambda: defaultdict(list))  # doc_id -> timings
    memory: list[dict] = field(default_factory=list)
    energy: list[dict] = field(default_factory=list)
    started: bool = False


class Metering:
    """Runs lm-eval's request batches per task: warm-up, meter windows, per-request timing, progress."""

    def __init__(self, device: str, sync, warmup: int, max_new_tokens: int | None, progress, model_name: str):
        self.device = device
        self.sync = sync or (lambda: None)
        self.warmup = warmup
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.model_name = model_name
        self.stats: dict[str, TaskStats] = defaultdict(TaskStats)
        self.last: Timing | None = None  # set by the wrapped _model_generate

    def run(self, lm, request_type: str, requests: list, call, per_request: bool) -> list:
        """Results of ``call`` for ``requests`` in their order, grouped by task under the meters."""
        from llmbench.meters.energy import EnergyMeter
        from llmbench.meters.memory import MemoryMeter

        results: list = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(str(req.task_name), []).append(i)
        for task, indices in groups.items():
            reqs = [requests[i] for i in indices]
            st = self.stats[task]
            if request_type == "generate_until" and self.max_new_tokens:
                for req in reqs:
                    _cap_new_tokens(req, self.max_new_tokens, lm.max_gen_toks)
            self.progress.task_started(self.model_name, ROW_PREFIX + task, len(reqs))
            if not st.started:
                st.started = True
                for _ in range(self.warmup):  # same shapes as the task's first request, not counted
                    call(reqs[:1])
            if request_type == "generate_until":
                # lm-eval keeps max_length - max_gen_toks of a context and batches by generation settings, so
                # a prompt near the context limit is prefilled at its measured length only approximately
                _prefill_warm_up(call, reqs, self.device, self.warmup, per_request, lm.max_gen_toks)
            st.request_types.append(request_type)
            st.per_request = st.per_request and per_request
            mem, energy = MemoryMeter(self.device), EnergyMeter(self.device, sync=self.sync)
            t0 = time.perf_counter()
            with contextlib.ExitStack() as stack:
                stack.enter_context(mem.measure(task))
                stack.enter_context(energy.measure(task))
                if per_request:
                    out = []
                    for req in reqs:
                        self.last = None
                        out.extend(call([req]))
                        if self.last is not None:
                            st.timings[int(req.doc_id)].append(self.last)
                        self.progress.advance(1)
                else:
                    out = list(call(reqs))
                    self.progress.advance(len(reqs))
            st.busy_s += time.perf_counter() - t0
            st.requests += len(reqs)
            st.memory.append(mem.result())
            st.energy.append(energy.result())
            for i, res in zip(indices, out):
                results[i] = res
        return results


def _prefill_warm_up(call, reqs: list, device: str, warmup: int, per_request: bool, default_max: int) -> None:
    """On CUDA, each generation request once with one new token before the window, as llmbench's own tasks
    do (``warmup_prefills``): the first prefill of a new prompt length pays a one-off cost."""
    import copy

    if not warmup_prefills(device, warmup):
        return
    ones = []
    for req in reqs:
        one = copy.copy(req)  # the request itself keeps its own generation length
        _cap_new_tokens(one, 1, default_max)
        ones.append(one)
    if per_request:
        for one in ones:
            call([one])
    else:
        call(ones)


def _cap_new_tokens(req, cap: int, default: int) -> None:
    """Apply llmbench's --max-new-tokens as a cap on a generation request's own max_gen_toks."""
    context, kwargs = req.args[0], dict(req.args[1])
    current = next((kwargs[k] for k in _GEN_TOKEN_KEYS if k in kwargs), default)
    for k in _GEN_TOKEN_KEYS:
        kwargs.pop(k, None)
    kwargs["max_gen_toks"] = min(int(current), int(cap))
    req.arguments = (context, kwargs, *req.args[2:])


@cache
def metered_lm_class():
    """HFLM subclass that adds timing and meters around lm-eval's own request methods (defined lazily so
    that importing this module does not import lm_eval)."""
    from lm_eval.models.huggingface import HFLM

    class MeteredHFLM(HFLM):
        """lm-eval's HF model class on an already-loaded model, measured by llmbench."""

        def __init__(self, metering: Metering, **kwargs) -> None:
            super().__init__(**kwargs)
            self.metering = metering

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            with token_clock(self.metering.sync) as clock:
                out = super()._model_generate(context, max_length, stop, streamer=clock, **generation_kwargs)
            new_tokens = int(out.shape[1] - context.shape[1]) if out.dim() == 2 else clock.steps
            self.metering.last = Timing(clock.ttft_s, clock.e2e_s, new_tokens)
            return out

        def generate_until(self, requests, disable_tqdm: bool = False):
            per_request = self.batch_size == 1
            return self.metering.run(
                self, "generate_until", requests,
                lambda reqs: HFLM.generate_until(self, reqs, disable_tqdm=True), per_request,
            )

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return self.metering.run(
                self, "loglikelihood", requests,
                lambda reqs: HFLM.loglikelihood(self, reqs, disable_tqdm=True), False,
            )

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            return self.metering.run(
                self, "loglikelihood_rolling", requests,
                lambda reqs: HFLM.loglikelihood_rolling(self, reqs, disable_tqdm=True), False,
            )

    return MeteredHFLM
