"""Energy sensors behind one EnergySensor protocol: the registry, the order per device, fallbacks, and a fake
sensor added from the tests by one registration that measures a `llmbench run` through the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

# `llmbench run` in-process with the fake backend of the runner's tests (no torch)
from test_runner import _cli, _model_dir, _tasks_dir, no_torch_device  # noqa: F401

from llmbench.errors import UserError
from llmbench.meters import EnergyMeter, parse_device
from llmbench.meters.energy import (
    NVML_COUNTER,
    NVML_SAMPLING,
    RAPL,
    EnergySensor,
    Probe,
    Reading,
    SensorError,
    SensorOptions,
    register_sensor,
    sensor_order,
    unregister_sensor,
)
from llmbench.meters.energy.nvml_counter import NvmlCounterSensor
from llmbench.meters.energy.nvml_power import NvmlPowerSensor
from llmbench.meters.energy.rapl import RaplSensor


class FakeJoules:
    """A whole energy sensor: 2 J per window, whatever the hardware."""

    method = "fake-joules"
    windows = 0

    def __init__(self, options: SensorOptions) -> None:
        self.options = options

    def available(self):
        return True, None

    def start(self):
        return time.perf_counter()

    def stop(self, t0):
        FakeJoules.windows += 1
        return Reading(joules=2.0, duration_s=time.perf_counter() - t0, raw={"windows": FakeJoules.windows})


class Absent:
    method = "absent"
    fallback = True

    def __init__(self, options):
        pass

    def available(self):
        return Probe(False, "absent here", fallback=Absent.fallback)


@pytest.fixture()
def fake_sensor():
    FakeJoules.windows = 0
    register_sensor("fake-joules", FakeJoules, devices=("cpu",), first=True)  # the one registration
    yield FakeJoules
    unregister_sensor("fake-joules")


def test_builtin_order_per_device():
    assert sensor_order(parse_device("cuda:1")) == [NVML_COUNTER, NVML_SAMPLING]
    assert sensor_order(parse_device("cpu")) == [RAPL]
    assert sensor_order(parse_device("mps")) == []


def test_builtin_sensors_follow_the_protocol(tmp_path):
    options = SensorOptions(parse_device("cuda:0"), powercap_root=tmp_path)
    for cls in (NvmlCounterSensor, NvmlPowerSensor, RaplSensor):
        assert isinstance(cls(options), EnergySensor), cls


def test_a_registered_sensor_comes_first_and_its_record_has_the_usual_shape(fake_sensor):
    m = EnergyMeter("cpu", powercap_root=Path("/nonexistent"))
    assert m.available and m.method == "fake-joules"
    with m.measure("w"):
        pass
    r = m.result()
    assert r == {"available": True, "reason": None, "method": "fake-joules", "joules": 2.0, "unit": "J",
                 "duration_s": r["duration_s"], "warning": None, "short_window": False, "domains": [],
                 "raw": {"windows": 1}}
    unregister_sensor("fake-joules")
    assert sensor_order(parse_device("cpu")) == [RAPL]
    assert EnergyMeter("cpu", powercap_root=Path("/nonexistent")).method is None


def test_an_absent_sensor_falls_back_to_the_next_one(fake_sensor, monkeypatch):
    register_sensor("absent", Absent, devices=("cpu",), first=True)
    try:
        assert EnergyMeter("cpu").method == "fake-joules"
        monkeypatch.setattr(Absent, "fallback", False)  # there but failing: its reason is the answer
        m = EnergyMeter("cpu")
        assert m.method is None and m.reason == "absent here"
        with m.measure():
            pass
        assert m.result()["available"] is False and m.result()["reason"] == "absent here"
    finally:
        unregister_sensor("absent")


def test_reasons_of_every_sensor_tried_are_kept(tmp_path):
    m = EnergyMeter("cpu", powercap_root=tmp_path / "none", sensors=[RAPL])
    assert m.reason == f"no RAPL powercap interface at {tmp_path / 'none'}"
    register_sensor("absent", Absent, devices=())
    try:
        m = EnergyMeter("cpu", powercap_root=tmp_path / "none", sensors=["absent", RAPL])
        assert m.reason == f"absent here; no RAPL powercap interface at {tmp_path / 'none'}"
    finally:
        unregister_sensor("absent")


def test_an_unknown_sensor_name_is_a_user_error_with_a_hint():
    with pytest.raises(UserError, match=r"unknown energy sensor 'rapll'.*did you mean rapl\?"):
        EnergyMeter("cpu", sensors=["rapll"])


def test_sensor_errors_in_a_window_become_unavailable_with_the_reason():
    class Broken(FakeJoules):
        fail_at = "start"

        def start(self):
            if Broken.fail_at == "start":
                raise SensorError("could not read at start")
            return super().start()

        def stop(self, t0):
            raise SensorError("could not read at stop")

    register_sensor("broken", Broken, devices=())
    try:
        for where in ("start", "stop"):
            Broken.fail_at = where
            m = EnergyMeter("cpu", sensors=["broken"])
            with m.measure():
                pass
            r = m.result()
            assert (r["available"], r["joules"], r["method"]) == (False, None, None)
            assert r["reason"] == f"could not read at {where}" and r["duration_s"] >= 0
    finally:
        unregister_sensor("broken")


@pytest.mark.usefixtures("no_torch_device")
def test_a_fake_sensor_measures_a_run_through_the_cli(fake_sensor, tmp_path, monkeypatch):
    args = ["run", "-m", str(_model_dir(tmp_path)), "-t", "t-a", "-t", "t-b", "--tasks-dir", str(_tasks_dir(tmp_path)),
            "--warmup", "0", "--out", str(tmp_path / "out")]
    assert _cli(args, monkeypatch) == 0
    [run_dir] = (tmp_path / "out").iterdir()
    rows = json.loads((run_dir / "run.json").read_text())["rows"]
    assert [r["task"]["name"] for r in rows] == ["t-a", "t-b"]
    for row in rows:
        energy = row["energy"]
        assert energy["available"] is True and energy["method"] == "fake-joules"
        assert energy["joules"] == 2.0 and energy["joules_per_sample"] == 1.0  # two examples per task
    assert fake_sensor.windows == 2
