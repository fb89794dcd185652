"""The roofline: bytes per decode step / TPOT against the measured peak, checked by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmbench.meters import bandwidth


def test_roofline_matches_a_hand_computation():
    # 100 MB of weights, 2 layers x 2 kv heads x 64 head dim x K,V x 4 bytes = 2048 bytes per context token,
    # mean context 50 tokens: 100e6 + 102400 bytes per token; TPOT 10 ms -> 10.01024 GB/s; peak 40 GB/s
    kv = bandwidth.kv_bytes(2, 2, 64, 4)
    assert kv == 2048
    peak = {"bytes_per_s": 40e9, "method": "test"}
    out = bandwidth.roofline(100_000_000, kv, 50.0, 0.010, peak)
    assert out["bytes_per_step"] == pytest.approx(100_102_400)
    assert out["achieved_bytes_per_s"] == pytest.approx(10_010_240_000)
    assert out["percent_of_peak"] == pytest.approx(25.0256)
    assert out["reason"] is None and out["peak_method"] == "test"


def test_roofline_at_batch_4_reads_the_weights_once_and_every_answer_s_kv_cache():
    out = bandwidth.roofline(1000, 10, 5.0, 0.001, {"bytes_per_s": 2e6}, batch_size=4)
    assert out["bytes_per_step"] == 1000 + 4 * 10 * 5
    assert out["percent_of_peak"] == pytest.approx(100 * 1.2e6 / 2e6)


def test_unavailable_figures_are_null_with_a_reason():
    assert bandwidth.roofline(1000, 10, 5.0, None, {"bytes_per_s": 1e9})["reason"].startswith("no TPOT")
    no_peak = bandwidth.roofline(1000, 10, 5.0, 0.01, bandwidth.unavailable("no probe"))
    assert no_peak["achieved_bytes_per_s"] == pytest.approx(1050 / 0.01) and no_peak["percent_of_peak"] is None
    assert no_peak["reason"] == "no probe"
    weights_only = bandwidth.roofline(1000, None, None, 0.01, {"bytes_per_s": 1e6})
    assert weights_only["bytes_per_step"] == 1000 and "lower bound" in weights_only["reason"]


def test_mean_decode_context_over_every_step():
    g = [SimpleNamespace(prompt_tokens=10, new_tokens=3), SimpleNamespace(prompt_tokens=20, new_tokens=2)]
    # steps read 11, 12 (first answer) and 21 (second): mean 44 / 3
    assert bandwidth.mean_decode_context(g) == pytest.approx(44 / 3)
    assert bandwidth.mean_decode_context([SimpleNamespace(prompt_tokens=None, new_tokens=3)]) is None


def test_kv_bytes_from_a_config():
    cfg = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576)
    assert bandwidth.kv_bytes_per_context_token(cfg, 4) == 30 * 3 * 64 * 2 * 4  # SmolLM2-135M shapes
    assert bandwidth.kv_bytes_per_context_token(cfg, None) is None


def test_cpu_triad_is_short_and_counts_its_bytes():
    out = bandwidth.cpu_triad(array_bytes=8 * 2**20, repeats=2)
    assert out["available"] and out["bytes_moved"] == 5 * 8 * 2**20
    assert out["bytes_per_s"] == pytest.approx(out["bytes_moved"] / out["best_s"])


def test_unknown_device_has_no_figure():
    out = bandwidth.peak_bandwidth("mps")
    assert out["available"] is False and out["bytes_per_s"] is None and "mps" in out["reason"]


def test_the_probe_goes_into_the_environment_as_plain_values():
    entries = bandwidth.environment_entries(bandwidth.cpu_triad(array_bytes=8 * 2**20, repeats=1))
    assert entries["memory_bandwidth_bytes_per_s"] > 0 and entries["memory_bandwidth_reason"] is None
    assert all(v is None or isinstance(v, (str, int, float)) for v in entries.values())
