"""Runner decisions that need no model."""

from __future__ import annotations


def test_warmup_is_full_length_on_cuda_and_short_on_cpu():
    from llmbench.runner import warmup_new_tokens

    # an 8-step warm-up left the first measured CUDA sample ~3x slower per token (docs/gpu.md)
    assert warmup_new_tokens("cuda:0", 64) == 64
    assert warmup_new_tokens("cpu", 64) == 8
    assert warmup_new_tokens("cpu", 4) == 4


def test_transformers_streams_each_token_without_delay_on_cuda_and_cpu():
    """TTFT comes from the streamer's first put. transformers' DeferredStopCheck streams one step late and is
    enabled on `mps` only; if a release enables it for CUDA or the CPU, TTFT would include an extra step, so
    this canary fails and the TTFT clock must be revisited."""
    import pytest

    torch = pytest.importorskip("torch")
    utils = pytest.importorskip("transformers.generation.utils")
    deferred = getattr(utils, "DeferredStopCheck", None)
    if deferred is None:  # older transformers: every token is streamed as soon as it is sampled
        return
    for device in ("cuda", "cpu"):
        assert deferred.is_supported(torch.device(device), None, False, False) is False, device
