"""Meters: real numbers flow through NVML (fake), RAPL (a temporary powercap tree) and procfs peak RSS;
missing sensors say why and never report 0."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest

from llmbench.meters import (
    EnergyMeter,
    MemoryMeter,
    PeriodicThread,
    cuda_sync,
    gpu_info,
    nvml_handle,
    parameter_count,
    parse_device,
    per_unit,
    weights_bytes,
)
from llmbench.meters.energy import rapl as rapl_mod
from llmbench.meters.memory import read_status_bytes


def _load_fakes():
    # Loaded by path so the tests do not depend on `tests` being importable as a package.
    path = Path(__file__).resolve().parents[1] / "fakes" / "fake_pynvml.py"
    spec = importlib.util.spec_from_file_location("llmbench_test_fake_pynvml", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


fakes = _load_fakes()
FakeNVML = fakes.FakeNVML
MiB = 1024 * 1024


# --------------------------------------------------------------------------------------------------------
# shared shape
# --------------------------------------------------------------------------------------------------------
def test_parse_device():
    assert parse_device("cpu").kind == "cpu" and parse_device("cpu").index is None
    d = parse_device("cuda:1")
    assert (d.kind, d.index, d.is_cuda, d.cuda_index) == ("cuda", 1, True, 1)
    assert parse_device("cuda").cuda_index == 0
    with pytest.raises(ValueError):
        parse_device("cuda:x")


def test_result_before_any_window_is_an_error():
    with pytest.raises(RuntimeError, match="before any measure"):
        EnergyMeter("cpu", powercap_root=Path("/nonexistent")).result()


def test_meter_is_not_reentrant():
    m = EnergyMeter("cpu", powercap_root=Path("/nonexistent"))
    with m.measure("outer"), pytest.raises(RuntimeError, match="already open"), m.measure("inner"):
        pass


def test_window_closed_and_recorded_when_body_raises():
    fake = FakeNVML(energy_supported=False, power_mw=100_000)
    m = EnergyMeter("cuda:0", nvml=fake, sample_period_s=0.01)
    with pytest.raises(KeyError), m.measure("boom"):
        time.sleep(0.05)
        raise KeyError("x")
    assert m.result()["available"] is True
    assert m.last_label == "boom"
    assert not [t for t in threading.enumerate() if t.name == "llmbench-power"]


def test_periodic_thread_sleeps_between_samples():
    calls = []
    t = PeriodicThread(lambda: calls.append(time.perf_counter()), 0.05).start()
    time.sleep(0.3)
    t.stop()
    # about 6 calls in 0.3 s; a busy loop would make thousands
    assert 2 <= len(calls) <= 8, len(calls)


def test_periodic_thread_keeps_error():
    def bad():
        raise OSError("gone")

    t = PeriodicThread(bad, 0.01).start()
    time.sleep(0.1)
    t.stop()
    assert isinstance(t.error, OSError)


# --------------------------------------------------------------------------------------------------------
# Energy: NVML
# --------------------------------------------------------------------------------------------------------
def test_nvml_energy_counter_delta_is_joules():
    fake = FakeNVML(energy_mj=1000)
    m = EnergyMeter("cuda:0", nvml=fake)
    assert m.available and m.method == "nvml-energy-counter"
    with m.measure("gen"):
        fake.energy_mj = 6000
    r = m.result()
    assert r["available"] is True and r["reason"] is None
    assert r["method"] == "nvml-energy-counter"
    assert r["joules"] == pytest.approx(5.0)
    assert r["raw"] == {"start_mj": 1000, "end_mj": 6000}
    assert r["duration_s"] > 0
    # a window with no sleep is far shorter than the counter's ~100 ms update period
    assert "shorter than 0.2 s" in r["warning"] and r["short_window"] is True


def test_nvml_counter_each_window_is_its_own_delta_and_long_window_has_no_warning():
    fake = FakeNVML(energy_mj=0)
    m = EnergyMeter("cuda:0", nvml=fake)
    with m.measure("a"):
        fake.energy_mj = 2500
    with m.measure("b"):
        fake.energy_mj = 2500 + 750
        time.sleep(0.22)
    r = m.result()
    assert r["joules"] == pytest.approx(0.75)
    assert r["warning"] is None and r["short_window"] is False
    assert [label for label, _ in m.history] == ["a", "b"]
    assert m.history[0][1]["joules"] == pytest.approx(2.5)


def test_sync_is_called_before_counter_reads():
    fake = FakeNVML(energy_mj=0)
    order = []
    real_read = fake.nvmlDeviceGetTotalEnergyConsumption

    def read(handle):
        order.append("read")
        return real_read(handle)

    fake.nvmlDeviceGetTotalEnergyConsumption = read
    m = EnergyMeter("cuda:0", nvml=fake, sync=lambda: order.append("sync"))
    order.clear()  # drop the construction-time probe
    with m.measure():
        order.append("body")
    assert order == ["sync", "read", "body", "sync", "read"]


def test_nvml_power_sampling_fallback_integrates_constant_power():
    fake = FakeNVML(energy_supported=False, power_mw=200_000)  # 200 W
    m = EnergyMeter("cuda:0", nvml=fake, sample_period_s=0.02)
    assert m.method == "nvml-power-sampling"
    with m.measure("gen"):
        time.sleep(0.3)
    r = m.result()
    assert r["available"] is True and r["method"] == "nvml-power-sampling"
    dt = r["duration_s"]
    assert 0.25 < dt < 2.0
    assert r["joules"] == pytest.approx(200.0 * dt, rel=1e-6)
    assert r["raw"]["n_samples"] >= 5
    assert r["raw"]["mean_power_w"] == pytest.approx(200.0, rel=1e-6)


def test_nvml_power_sampling_follows_a_power_step():
    fake = FakeNVML(energy_supported=False, power_mw=100_000)
    m = EnergyMeter("cuda:0", nvml=fake, sample_period_s=0.01)
    with m.measure():
        time.sleep(0.2)
        fake.power_mw = 300_000
        time.sleep(0.2)
    r = m.result()
    dt = r["duration_s"]
    assert 100.0 * dt < r["joules"] < 300.0 * dt
    assert r["joules"] == pytest.approx(200.0 * dt, rel=0.25)
    assert r["raw"]["max_power_w"] == pytest.approx(300.0)


def test_nvml_neither_counter_nor_power_supported():
    fake = FakeNVML(energy_supported=False, power_supported=False)
    m = EnergyMeter("cuda:0", nvml=fake)
    with m.measure():
        pass
    r = m.result()
    assert r["available"] is False and r["joules"] is None and r["method"] is None
    assert "not supported" in r["reason"]


def test_nvml_init_failure_is_unavailable_with_reason():
    fake = FakeNVML(init_error=fakes.NVMLError_LibraryNotFound())
    m = EnergyMeter("cuda:0", nvml=fake)
    assert not m.available
    with m.measure():
        pass
    r = m.result()
    assert r == {**r, "available": False, "joules": None, "method": None}
    assert r["reason"] == "NVML unavailable: NVML Shared Library Not Found"


def test_real_pynvml_here_is_unavailable_not_zero():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        pytest.skip("this machine has NVML")
    except pynvml.NVMLError:
        pass
    m = EnergyMeter("cuda:0")
    with m.measure():
        pass
    r = m.result()
    assert r["available"] is False and r["joules"] is None
    assert r["reason"].startswith("NVML unavailable:")


def test_nvml_read_failure_mid_run_is_unavailable():
    fake = FakeNVML(energy_mj=10, fail_energy_after=2)  # probe + start read succeed, end read fails
    m = EnergyMeter("cuda:0", nvml=fake)
    with m.measure():
        fake.energy_mj = 5000
    r = m.result()
    assert r["available"] is False and r["joules"] is None
    assert "read failed" in r["reason"]


def test_nvml_handle_respects_cuda_visible_devices(monkeypatch):
    fake = FakeNVML(n_devices=4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert nvml_handle(fake, "cuda:1") == ("handle", 1)
    assert nvml_handle(fake, "cuda:0") == ("handle", 3)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", fake._uuid(2))
    assert nvml_handle(fake, "cuda") == ("handle", 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert nvml_handle(fake, "cuda:1") == ("handle", 1)


def test_unknown_device_kind_has_no_energy_sensor():
    m = EnergyMeter("mps")
    with m.measure():
        pass
    assert m.result()["available"] is False
    assert "mps" in m.result()["reason"]


def test_per_unit():
    r = {"available": True, "joules": 5.0, "method": "rapl"}
    out = per_unit(r, 10, 200)
    assert out["joules_per_sample"] == pytest.approx(0.5)
    assert out["joules_per_token"] == pytest.approx(0.025)
    assert out["joules"] == 5.0 and "joules_per_sample" not in r
    none = per_unit({"available": False, "joules": None}, 10, 200)
    assert none["joules_per_sample"] is None and none["joules_per_token"] is None
    assert per_unit(r, 0, 0)["joules_per_token"] is None


# --------------------------------------------------------------------------------------------------------
# Energy: RAPL on a temporary powercap tree
# --------------------------------------------------------------------------------------------------------
def _zone(root: Path, zone: str, name: str, energy_uj: int, max_range: int | None = 262143328850) -> Path:
    d = root / zone
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    if max_range is not None:
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def _set(zone_dir: Path, energy_uj: int) -> None:
    # Atomic like sysfs: the polling thread must never see a half-written file.
    tmp = zone_dir / "energy_uj.tmp"
    tmp.write_text(f"{energy_uj}\n")
    os.replace(tmp, zone_dir / "energy_uj")


def _rapl_window(root: Path, *updates: tuple[Path, int]) -> dict:
    """One RAPL window on ``root`` during which each zone's counter is set to its new value."""
    m = EnergyMeter("cpu", powercap_root=root)
    with m.measure():
        for zone, value in updates:
            _set(zone, value)
    return m.result()


@pytest.fixture
def powercap(tmp_path):
    root = tmp_path / "powercap"
    z0 = _zone(root, "intel-rapl:0", "package-0", 1_000_000)
    z1 = _zone(root, "intel-rapl:1", "package-1", 500)
    sub = _zone(root, "intel-rapl:0:0", "core", 0)  # sub-zone: inside package-0, must not be added
    mmio = _zone(root, "intel-rapl-mmio:0", "package-0", 0)  # same package through MMIO: not added either
    return SimpleNamespace(root=root, z0=z0, z1=z1, sub=sub, mmio=mmio)


def test_rapl_sums_packages_not_core_subzones_or_mmio(powercap):
    m = EnergyMeter("cpu", powercap_root=powercap.root)
    assert m.method == "rapl"
    with m.measure("gen"):
        _set(powercap.z0, 3_500_000)  # +2.5 J
        _set(powercap.z1, 1_000_500)  # +1.0 J
        _set(powercap.sub, 999_000_000)  # ignored
        _set(powercap.mmio, 999_000_000)  # ignored
    r = m.result()
    assert r["available"] is True and r["method"] == "rapl" and r["reason"] is None
    assert r["joules"] == pytest.approx(3.5)
    assert [(d["zone"], d["name"]) for d in r["domains"]] == [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:1", "package-1"),
    ]
    assert [d["joules"] for d in r["domains"]] == pytest.approx([2.5, 1.0])


def test_rapl_counts_dram_subzones_but_not_core_or_uncore(tmp_path):
    """DRAM is outside the package (and decoding is memory-bound): summed. Core/uncore are inside: not summed."""
    root = tmp_path / "pc"
    pkg = _zone(root, "intel-rapl:0", "package-0", 0)
    core = _zone(root, "intel-rapl:0:0", "core", 0)
    uncore = _zone(root, "intel-rapl:0:1", "uncore", 0)
    dram = _zone(root, "intel-rapl:0:2", "dram", 100, max_range=65_532_610_987)
    r = _rapl_window(root, (pkg, 4_000_000), (core, 3_000_000), (uncore, 500_000), (dram, 1_500_100))
    assert r["joules"] == pytest.approx(5.5)
    assert [(d["zone"], d["name"], d["counted"]) for d in r["domains"]] == [
        ("intel-rapl:0", "package-0", True), ("intel-rapl:0:2", "dram", True)]
    assert [d["joules"] for d in r["domains"]] == pytest.approx([4.0, 1.5])


def test_rapl_two_sockets_with_dram_each_and_a_dram_wrap(tmp_path):
    """Zones sort per socket (package, then its dram); a dram counter wraps on its own, smaller range."""
    root = tmp_path / "pc"
    p1 = _zone(root, "intel-rapl:1", "package-1", 0)
    d1 = _zone(root, "intel-rapl:1:0", "dram", 0)
    p0 = _zone(root, "intel-rapl:0", "package-0", 0)
    d0 = _zone(root, "intel-rapl:0:0", "dram", 9_000_000, max_range=10_000_000)
    r = _rapl_window(root, (p0, 2_000_000), (p1, 3_000_000), (d0, 1_000_000), (d1, 500_000))
    assert [d["zone"] for d in r["domains"]] == ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"]
    assert [d["joules"] for d in r["domains"]] == pytest.approx([2.0, 2.0, 3.0, 0.5])  # 9 -> 10 -> 1 J: 2 J
    assert r["domains"][1]["wraps"] == 1 and r["joules"] == pytest.approx(7.5)


def test_rapl_dram_alone_is_not_a_package(tmp_path):
    root = tmp_path / "pc"
    _zone(root, "intel-rapl:0:0", "dram", 0)
    _zone(root, "intel-rapl:1", "psys", 0)
    r = _rapl_window(root)
    assert r["available"] is False and r["reason"].startswith("no RAPL package domains")


def test_rapl_unreadable_dram_is_left_out_with_a_warning(tmp_path):
    root = tmp_path / "pc"
    pkg = _zone(root, "intel-rapl:0", "package-0", 0)
    dram = _zone(root, "intel-rapl:0:2", "dram", 0)
    (dram / "energy_uj").write_text("not a number\n")
    r = _rapl_window(root, (pkg, 1_000_000))
    assert r["available"] is True and r["joules"] == pytest.approx(1.0)
    assert [d["zone"] for d in r["domains"]] == ["intel-rapl:0"]
    assert "intel-rapl:0:2 (dram) left out" in r["warning"]


def test_rapl_wrap_around(tmp_path):
    root = tmp_path / "pc"
    z0 = _zone(root, "intel-rapl:0", "package-0", 9_000_000, max_range=10_000_000)
    m = EnergyMeter("cpu", powercap_root=root)
    with m.measure():
        _set(z0, 500_000)  # wrapped: 1.0 J up to the top, 0.5 J after
    r = m.result()
    assert r["joules"] == pytest.approx(1.5)
    assert r["domains"][0]["wraps"] == 1


def test_rapl_polling_survives_several_wraps(tmp_path):
    root = tmp_path / "pc"
    z0 = _zone(root, "intel-rapl:0", "package-0", 0, max_range=10_000_000)
    m = EnergyMeter("cpu", powercap_root=root, rapl_poll_s=0.01)
    with m.measure():
        for value in (8_000_000, 2_000_000, 9_000_000):  # +8 J, +4 J (wrap), +7 J
            _set(z0, value)
            time.sleep(0.15)
    r = m.result()
    # without polling only 9 J (or 19 - 10) would be visible
    assert r["joules"] == pytest.approx(19.0)
    assert r["domains"][0]["wraps"] == 1


def test_rapl_psys_is_reported_but_not_summed(tmp_path):
    root = tmp_path / "pc"
    z0 = _zone(root, "intel-rapl:0", "package-0", 0)
    psys = _zone(root, "intel-rapl:1", "psys", 0)
    r = _rapl_window(root, (z0, 2_000_000), (psys, 5_000_000))
    assert r["joules"] == pytest.approx(2.0)
    assert {d["name"]: d["counted"] for d in r["domains"]} == {"package-0": True, "psys": False}


def test_rapl_permission_denied(powercap, monkeypatch):
    # Tests may run as root, where chmod 000 does not stop reads: make the read itself fail.
    real = rapl_mod._read_uj

    def denied(path):
        if Path(path).name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl_mod, "_read_uj", denied)
    m = EnergyMeter("cpu", powercap_root=powercap.root)
    with m.measure():
        pass
    r = m.result()
    assert r["available"] is False and r["joules"] is None and r["method"] is None
    assert r["reason"] == "RAPL energy_uj not readable (permission denied: run as root or chmod)"


def test_rapl_read_failure_during_window(powercap, monkeypatch):
    m = EnergyMeter("cpu", powercap_root=powercap.root)
    assert m.available
    with m.measure():
        monkeypatch.setattr(rapl_mod, "_read_uj", lambda p: (_ for _ in ()).throw(PermissionError(13, "x")))
    r = m.result()
    assert r["available"] is False and r["joules"] is None
    assert "permission denied" in r["reason"]


def test_rapl_energy_file_not_a_file(tmp_path):
    root = tmp_path / "pc"
    z0 = _zone(root, "intel-rapl:0", "package-0", 0)
    (z0 / "energy_uj").unlink()
    (z0 / "energy_uj").mkdir()  # unreadable without any monkeypatching, even for root
    m = EnergyMeter("cpu", powercap_root=root)
    with m.measure():
        pass
    r = m.result()
    assert r["available"] is False and r["joules"] is None
    assert r["reason"].startswith("RAPL energy_uj not readable")


def test_rapl_absent_root(tmp_path):
    m = EnergyMeter("cpu", powercap_root=tmp_path / "nope")
    with m.measure():
        pass
    r = m.result()
    assert r["available"] is False and r["joules"] is None and r["method"] is None
    assert r["reason"] == f"no RAPL powercap interface at {tmp_path / 'nope'}"
    assert per_unit(r, 5, 50)["joules_per_token"] is None


def test_rapl_root_without_packages(tmp_path):
    _zone(tmp_path / "pc", "intel-rapl:0:0", "core", 0)
    m = EnergyMeter("cpu", powercap_root=tmp_path / "pc")
    assert not m.available and "no RAPL package domains" in m.reason


def test_default_cpu_energy_here_is_unavailable_or_real():
    m = EnergyMeter("cpu")
    with m.measure():
        sum(range(10000))
    r = m.result()
    if r["available"]:
        assert r["joules"] is not None and r["joules"] >= 0
    else:
        assert r["joules"] is None and r["reason"]


# --------------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------------
def _touch(nbytes: int) -> bytes:
    return b"\x01" * nbytes  # filled, so every page is resident


def _kernel_resets_vmhwm() -> bool:
    """Whether writing 5 to /proc/self/clear_refs really resets VmHWM in this environment."""
    proc = Path("/proc/self")
    try:
        buf = _touch(64 * MiB)
        del buf
        before = read_status_bytes(proc)
        (proc / "clear_refs").write_text("5")
        after = read_status_bytes(proc)
    except OSError:
        return False
    return after["VmHWM"] < before["VmHWM"] - 32 * MiB


def test_peak_rss_grows_in_window_and_reset_forgets_earlier_peak():
    procfs_works = _kernel_resets_vmhwm()  # checked first: it resets VmHWM itself
    m = MemoryMeter("cpu")
    with m.measure("alloc"):
        buf = _touch(200 * MiB)
        del buf
    first = m.result()
    if not procfs_works:
        assert first["rss_method"] == "psutil-sampling"
        pytest.skip("procfs peak RSS not usable here")
    assert first["rss_method"] == "procfs-vmhwm"
    assert first["peak_rss_bytes"] >= first["rss_start_bytes"] + 190 * MiB
    with m.measure("idle"):
        pass
    second = m.result()
    assert second["rss_method"] == "procfs-vmhwm"
    assert second["peak_rss_bytes"] < first["peak_rss_bytes"] - 150 * MiB


def test_clear_refs_resets_vmhwm_on_this_kernel():
    proc = Path("/proc/self")
    if not (proc / "clear_refs").exists():
        pytest.skip("no /proc/self/clear_refs")
    buf = _touch(200 * MiB)
    del buf
    before = read_status_bytes(proc)
    assert before["VmHWM"] >= before["VmRSS"] + 150 * MiB
    (proc / "clear_refs").write_text("5")
    after = read_status_bytes(proc)
    assert after["VmHWM"] < before["VmHWM"] - 150 * MiB


def test_nested_memory_windows_keep_the_outer_peak():
    outer, inner = MemoryMeter("cpu"), MemoryMeter("cpu")
    with outer.measure("outer"):
        buf = _touch(200 * MiB)
        del buf
        with inner.measure("inner"):  # resets VmHWM for the whole process
            pass
    o = outer.result()
    if o["rss_method"] != "procfs-vmhwm":
        pytest.skip("procfs peak RSS not usable here")
    assert o["peak_rss_bytes"] >= o["rss_start_bytes"] + 190 * MiB
    assert inner.result()["peak_rss_bytes"] < o["peak_rss_bytes"] - 150 * MiB


def test_falls_back_to_sampling_when_clear_refs_is_not_writable(monkeypatch):
    from llmbench.meters import memory

    def denied(proc_dir):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(memory, "reset_peak_rss", denied)
    m = MemoryMeter("cpu", sample_period_s=0.01)
    with m.measure():
        buf = _touch(100 * MiB)
        time.sleep(0.1)
        del buf
    r = m.result()
    assert r["rss_method"] == "psutil-sampling" and "Permission denied" in r["rss_note"]
    assert r["peak_rss_bytes"] >= r["rss_start_bytes"] + 90 * MiB


def test_falls_back_to_sampling_when_reset_has_no_effect(monkeypatch):
    from llmbench.meters import memory

    if not (Path("/proc/self/status").exists() and Path("/proc/self/clear_refs").exists()):
        pytest.skip("no procfs")
    monkeypatch.setattr(memory, "reset_peak_rss", lambda proc_dir: None)  # a kernel that ignores "5"
    buf = _touch(200 * MiB)
    del buf  # VmHWM now far above VmRSS and nothing resets it
    m = MemoryMeter("cpu")
    with m.measure():
        pass
    r = m.result()
    assert r["rss_method"] == "psutil-sampling"
    assert "did not reset" in r["rss_note"]


def test_psutil_sampling_fallback_sees_the_peak():
    m = MemoryMeter("cpu", force_sampling=True, sample_period_s=0.01)
    with m.measure():
        buf = _touch(200 * MiB)
        time.sleep(0.1)
        del buf
    r = m.result()
    assert r["rss_method"] == "psutil-sampling"
    assert r["peak_rss_bytes"] >= r["rss_start_bytes"] + 150 * MiB
    assert r["rss_note"]


def test_memory_cpu_has_no_cuda_or_nvml_numbers_but_says_why():
    m = MemoryMeter("cpu")
    with m.measure():
        pass
    r = m.result()
    assert r["cuda_peak_allocated_bytes"] is None and r["cuda_peak_reserved_bytes"] is None
    assert r["nvml_used_bytes"] is None and r["nvml_reason"] and r["cuda_reason"]
    assert r["peak_rss_bytes"] > 0


def test_memory_nvml_used_is_max_of_start_and_end():
    fake = FakeNVML(used_bytes=1_000)
    m = MemoryMeter("cuda:0", nvml=fake)
    with m.measure():
        fake.used_bytes = 3_000
    assert m.result()["nvml_used_bytes"] == 3_000 and m.result()["nvml_reason"] is None
    with m.measure():
        fake.used_bytes = 2_000
    assert m.result()["nvml_used_bytes"] == 3_000


def test_memory_nvml_init_failure():
    m = MemoryMeter("cuda:0", nvml=FakeNVML(init_error=fakes.NVMLError_LibraryNotFound()))
    with m.measure():
        pass
    r = m.result()
    assert r["nvml_used_bytes"] is None
    assert r["nvml_reason"] == "NVML unavailable: NVML Shared Library Not Found"


def test_memory_and_energy_compose_with_exitstack(powercap):
    meters = [MemoryMeter("cpu"), EnergyMeter("cpu", powercap_root=powercap.root)]
    with ExitStack() as stack:
        for meter in meters:
            stack.enter_context(meter.measure("model x task"))
        _set(powercap.z0, 2_000_000)
    assert meters[0].result()["peak_rss_bytes"] > 0
    assert meters[1].result()["joules"] == pytest.approx(1.0)


class _T:
    """Tensor-like object for weights_bytes/parameter_count without torch."""

    def __init__(self, numel, element_size, ptr):
        self._n, self._e, self._p = numel, element_size, ptr

    def numel(self):
        return self._n

    def element_size(self):
        return self._e

    def data_ptr(self):
        return self._p


def test_weights_bytes_and_parameter_count_without_torch():
    emb = _T(1000, 2, 0x1000)
    tied_head = _T(1000, 2, 0x1000)  # a second object on the same storage
    other = _T(10, 4, 0x9000)
    buf = _T(5, 8, 0xA000)
    model = SimpleNamespace(parameters=lambda: [emb, tied_head, other], buffers=lambda: [buf])
    assert parameter_count(model) == 1010
    assert weights_bytes(model) == 1000 * 2 + 10 * 4 + 5 * 8


def test_parameter_count_dedupes_tied_torch_weights():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 8)
            self.proj = nn.Linear(8, 8)
            self.head = nn.Linear(8, 50, bias=False)
            self.head.weight = self.emb.weight  # tied like most LMs
            self.register_buffer("pos", torch.zeros(4, dtype=torch.float64))

    m = Tiny()
    assert parameter_count(m) == 50 * 8 + 8 * 8 + 8
    assert weights_bytes(m) == (50 * 8 + 8 * 8 + 8) * 4 + 4 * 8
    # a distinct Parameter object sharing the same storage is still one tensor
    m.head.weight = nn.Parameter(m.emb.weight.data)
    assert parameter_count(m) == 50 * 8 + 8 * 8 + 8
    # untied: counted twice
    m.head.weight = nn.Parameter(torch.randn(50, 8))
    assert parameter_count(m) == 2 * 50 * 8 + 8 * 8 + 8


def test_parameter_count_on_meta_tensors_does_not_collapse():
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        lin = torch.nn.Linear(4, 3)
    assert parameter_count(lin) == 4 * 3 + 3


# --------------------------------------------------------------------------------------------------------
# gpu.py
# --------------------------------------------------------------------------------------------------------
def test_gpu_info_from_nvml():
    info = gpu_info("cuda:0", nvml=FakeNVML(name=b"Fake GPU H100", total_bytes=80 * 1024**3))
    assert info["name"] == "Fake GPU H100"
    assert info["driver"] == "550.54.15"
    assert info["cuda_driver"] == "12.4"
    assert info["memory_total_bytes"] == 80 * 1024**3
    assert info["source"] == "nvml"
    assert info["cuda"] in (info["cuda_runtime"], "12.4")
    assert gpu_info("cpu") is None


def test_gpu_info_without_nvml_says_why():
    info = gpu_info("cuda:0", nvml=FakeNVML(init_error=fakes.NVMLError_LibraryNotFound()))
    if info["source"] == "torch":
        pytest.skip("torch sees a CUDA device here")
    assert info["name"] is None and "NVML unavailable" in info["reason"]


def test_cpu_paths_never_import_torch():
    code = (
        "import sys\n"
        "from llmbench.meters import EnergyMeter, MemoryMeter, cuda_sync, gpu_info\n"
        "cuda_sync('cpu')(); gpu_info('cpu')\n"
        "for m in (EnergyMeter('cpu'), MemoryMeter('cpu')):\n"
        "    with m.measure(): pass\n"
        "    m.result()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'pynvml' not in sys.modules, 'pynvml imported'\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr


def test_cuda_sync_on_cpu_is_noop():
    assert cuda_sync("cpu")() is None

