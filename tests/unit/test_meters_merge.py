"""llmbench.meters.merge: several windows of one row -> one memory result and one energy result."""

from __future__ import annotations

import pytest

from llmbench.meters.merge import merge_energy, merge_memory


def _energy(joules, duration, warning=None, short=False, raw=None):
    return {"available": True, "reason": None, "method": "rapl", "joules": joules, "unit": "J",
            "duration_s": duration, "warning": warning, "short_window": short, "domains": [], "raw": raw or {}}


def test_memory_takes_the_largest_peaks_and_the_last_end_rss():
    a = {"peak_rss_bytes": 100, "rss_method": "procfs-vmhwm", "rss_start_bytes": 10, "rss_end_bytes": 50,
         "cuda_peak_allocated_bytes": None, "cuda_reason": "device cpu is not a CUDA device", "nvml_used_bytes": 7}
    b = {"peak_rss_bytes": 300, "rss_method": "procfs-vmhwm", "rss_start_bytes": 40, "rss_end_bytes": 45,
         "cuda_peak_allocated_bytes": 5, "cuda_reason": None, "nvml_used_bytes": 3}
    c = {"peak_rss_bytes": 200, "rss_start_bytes": 1, "rss_end_bytes": 60}
    out = merge_memory([a, b, c])
    assert out == {"peak_rss_bytes": 300, "rss_method": "procfs-vmhwm", "rss_start_bytes": 10, "rss_end_bytes": 60,
                   "cuda_peak_allocated_bytes": 5, "cuda_reason": "device cpu is not a CUDA device",
                   "nvml_used_bytes": 7, "windows": 3}
    assert a["peak_rss_bytes"] == 100  # inputs untouched


def test_memory_of_one_window_is_that_window_and_of_none_is_empty():
    one = {"peak_rss_bytes": 1, "rss_end_bytes": 2}
    assert merge_memory([one]) == one and merge_memory([one]) is not one
    assert merge_memory([]) == {}


def test_energy_sums_joules_and_durations():
    out = merge_energy([_energy(1.5, 0.5, "b", raw={"poll_s": 1}), _energy(2.0, 1.0, "a"), _energy(0.5, 0.1, "b")])
    assert out["available"] is True and out["method"] == "rapl"
    assert out["joules"] == pytest.approx(4.0) and out["duration_s"] == pytest.approx(1.6)
    assert out["windows"] == 3 and out["warning"] == "a; b"
    assert out["raw"] == [{"poll_s": 1}, {}, {}] and out["short_window"] is False
    assert merge_energy([_energy(1, 1), _energy(1, 0.05, short=True)])["short_window"] is True
    assert merge_energy([_energy(1, 1), _energy(1, 1)])["warning"] is None


def test_one_unavailable_window_makes_the_whole_unavailable():
    bad = {"available": False, "reason": "RAPL energy_uj not readable", "method": None, "joules": None,
           "duration_s": 0.25}
    out = merge_energy([_energy(1.0, 1.0), bad, _energy(2.0, 0.5)])
    assert out == {**bad, "duration_s": pytest.approx(1.75), "windows": 3}


def test_energy_of_one_window_is_that_window_and_of_none_is_unavailable():
    one = _energy(3.0, 2.0)
    assert merge_energy([one]) == one and merge_energy([one]) is not one
    assert merge_energy([]) == {"available": False, "reason": "nothing was measured", "method": None,
                                "joules": None, "duration_s": None}
    assert merge_energy([], empty_reason="no lm-eval requests were run")["reason"] == "no lm-eval requests were run"
