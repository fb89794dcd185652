"""The memory-bandwidth roofline of decoding.

Batch-1 decoding is memory-bound: every generated token reads the weights held plus the KV cache of the
context so far. ``peak_bandwidth`` measures the device's copy bandwidth once per process (CUDA: a
device-to-device copy timed with CUDA events; CPU: a numpy STREAM-style triad on arrays far larger than the
last-level cache); ``roofline`` turns a row's bytes per token and TPOT p50 into achieved bandwidth and the
percentage of that peak: how much of the per-token cost is the runtime rather than the model.
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

CPU_ARRAY_BYTES = 64 * 2**20  # per array; three arrays = 192 MiB, far above any CPU's last-level cache
CPU_REPEATS = 5
CUDA_BYTES = 1 * 2**30
CUDA_REPEATS = 10


def cpu_triad(array_bytes: int = CPU_ARRAY_BYTES, repeats: int = CPU_REPEATS) -> dict:
    """STREAM-style triad ``a = b + s * c`` with numpy, best of ``repeats``. numpy cannot fuse the two
    operations, so each repeat makes two passes, and the bytes counted are what those passes move: read c and
    write a (multiply), then read a, read b and write a (add): 5 arrays' worth (STREAM's fused loop counts 3)."""
    import numpy as np

    n = array_bytes // 8
    b = np.full(n, 1.0)
    c = np.full(n, 2.0)
    a = np.empty(n)
    np.multiply(c, 3.0, out=a)  # touch every page before timing
    moved = 5 * n * 8
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return {"available": True, "bytes_per_s": moved / best, "method": "numpy-triad (a = b + s*c, 2 passes)",
            "bytes_moved": moved, "best_s": best, "repeats": repeats, "array_bytes": n * 8, "reason": None}


def cuda_copy(device: str = "cuda:0", nbytes: int = CUDA_BYTES, repeats: int = CUDA_REPEATS) -> dict:
    """Device-to-device ``dst.copy_(src)`` timed with CUDA events, best of ``repeats``; each copy reads and
    writes ``nbytes``."""
    import torch

    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize(device)
    best = None
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        dt = start.elapsed_time(end) / 1000.0
        best = dt if best is None else min(best, dt)
    del src, dst
    torch.cuda.empty_cache()
    return {"available": True, "bytes_per_s": 2 * nbytes / best, "method": "torch device-to-device copy "
            "(cuda events)", "bytes_moved": 2 * nbytes, "best_s": best, "repeats": repeats, "reason": None}


@functools.lru_cache(maxsize=None)
def peak_bandwidth(device: str) -> dict:
    """The device's measured peak memory bandwidth (bytes/s), once per process and device; ``available:
    false`` with a reason where it cannot be measured (never a guessed figure)."""
    t0 = time.perf_counter()
    try:
        if device.startswith("cuda"):
            out = cuda_copy(device if ":" in device else "cuda:0")
        elif device == "cpu":
            out = cpu_triad()
        else:
            out = unavailable(f"no bandwidth probe for device {device!r}")
    except Exception as exc:  # a probe that fails is a missing figure, not a failed run
        out = unavailable(f"bandwidth probe failed: {type(exc).__name__}: {exc}")
    out["device"] = device
    out["probe_s"] = time.perf_counter() - t0
    return out


def environment_entries(peak: dict) -> dict:
    """The probe as a record's environment keys (plain values: environments are compared value by value)."""
    return {"memory_bandwidth_bytes_per_s": peak.get("bytes_per_s"), "memory_bandwidth_method": peak.get("method"),
            "memory_bandwidth_best_s": peak.get("best_s"), "memory_bandwidth_bytes_moved": peak.get("bytes_moved"),
            "memory_bandwidth_repeats": peak.get("repeats"), "memory_bandwidth_probe_s": peak.get("probe_s"),
            "memory_bandwidth_reason": peak.get("reason")}


def recorded_peak(environment: dict, device: str) -> dict | None:
    """The peak a record's first session measured (``environment_entries`` read back), for a resumed session on
    the same machine: every row of one record is then set against one peak; None where the record holds none
    for ``device`` (an older record, another device)."""
    if environment.get("device") != device or "memory_bandwidth_bytes_per_s" not in environment:
        return None
    peak = {key: environment.get(f"memory_bandwidth_{key}")
            for key in ("bytes_per_s", "method", "best_s", "bytes_moved", "repeats", "probe_s", "reason")}
    return {"available": peak["bytes_per_s"] is not None, **peak, "device": device}


def unavailable(reason: str) -> dict:
    return {"available": False, "bytes_per_s": None, "method": None, "reason": reason}


def kv_bytes_per_context_token(config, dtype_bytes: int | None) -> int | None:
    """KV-cache bytes one token of context holds (and a decode step reads): layers x kv heads x head dim x 2
    (K and V) x dtype bytes, from a transformers config; None where the config does not say."""
    if dtype_bytes is None or config is None:
        return None
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(cfg, "num_hidden_layers", None)
    heads = getattr(cfg, "num_attention_heads", None)
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or (cfg.hidden_size // heads if heads and getattr(
        cfg, "hidden_size", None) else None)
    if not (layers and kv_heads and head_dim):
        return None
    return kv_bytes(layers, kv_heads, head_dim, dtype_bytes)


def kv_bytes(layers: int, kv_heads: int, head_dim: int, dtype_bytes: int) -> int:
    return int(layers) * int(kv_heads) * int(head_dim) * 2 * int(dtype_bytes)


def mean_decode_context(generations: Sequence) -> float | None:
    """Mean context length (prompt + tokens so far) over every decode step: step k (1..n-1) of an answer
    whose prompt has p tokens reads p + k tokens of KV cache. None without prompt lengths."""
    steps = total = 0
    for g in generations:
        p, n = getattr(g, "prompt_tokens", None), g.new_tokens
        if p is None:
            return None
        if n and n > 1:
            steps += n - 1
            total += (n - 1) * p + (n - 1) * n / 2  # sum of p + k for k = 1..n-1
    return total / steps if steps else None


def roofline(weights_bytes: int | None, kv_per_token: int | None, mean_context: float | None,
             tpot_p50_s: float | None, peak: dict | None, batch_size: int = 1) -> dict:
    """Bytes one decode step must move (weights held, read once per step, plus each answer's KV cache at the
    mean context length) / TPOT p50 = achieved bandwidth, and its share of the measured peak."""
    out: dict = {
        "weights_bytes": weights_bytes, "kv_bytes_per_context_token": kv_per_token,
        "mean_context_tokens": mean_context, "batch_size": batch_size, "tpot_s_p50": tpot_p50_s,
        "bytes_per_step": None, "achieved_bytes_per_s": None,
        "peak_bytes_per_s": (peak or {}).get("bytes_per_s"), "peak_method": (peak or {}).get("method"),
        "percent_of_peak": None, "reason": None,
    }
    if weights_bytes is None:
        out["reason"] = "weights bytes unknown"
        return out
    if tpot_p50_s is None or tpot_p50_s <= 0:
        out["reason"] = "no TPOT (answers shorter than 2 tokens)"
        return out
    kv = 0.0
    if kv_per_token is not None and mean_context is not None:
        kv = kv_per_token * mean_context * batch_size
    else:
        out["reason"] = "KV-cache bytes unknown: weights only (a lower bound)"
    out["bytes_per_step"] = weights_bytes + kv
    out["achieved_bytes_per_s"] = out["bytes_per_step"] / tpot_p50_s
    if out["peak_bytes_per_s"]:
        out["percent_of_peak"] = 100.0 * out["achieved_bytes_per_s"] / out["peak_bytes_per_s"]
    else:
        out["reason"] = (peak or {}).get("reason") or "peak bandwidth not measured"
    return out


def row_roofline(loaded, generations: Sequence, latency: dict, device: str, peak: dict | None = None) -> dict:
    """The ``latency.roofline`` entry of one row (see ``roofline``), from the loaded model's facts, the
    row's generations and its latency summary; ``peak`` is the run's (a resumed run: its record's) where it was
    measured on ``device``, else the device is probed."""
    tpot = (latency.get("tpot_s") or {}).get("p50")
    if peak is None or peak.get("device") != device:
        peak = peak_bandwidth(device)
    return roofline(loaded.weights_bytes, (loaded.info or {}).get("kv_bytes_per_context_token"),
                    mean_decode_context(generations), tpot, peak, latency.get("batch_size", 1))
