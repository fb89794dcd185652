"""Runner decisions that need no model."""

from __future__ import annotations


def test_warmup_is_full_length_on_cuda_and_short_on_cpu():
    from llmbench.runner import warmup_new_tokens

    # an 8-step warm-up left the first measured CUDA sample ~3x slower per token (docs/gpu.md)
    assert warmup_new_tokens("cuda:0", 64) == 64
    assert warmup_new_tokens("cpu", 64) == 8
    assert warmup_new_tokens("cpu", 4) == 4
