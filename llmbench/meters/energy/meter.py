"""``EnergyMeter``: the energy of each window, from the first sensor that can measure on the device.

The sensors (``nvml_counter``, ``nvml_power``, ``rapl``, and any registered by a plugin or test) only read
their hardware; this facade picks one, synchronises CUDA before each read, and writes the record. A
missing sensor gives ``available: False`` with a ``reason`` and ``joules: None``, never 0. See
docs/meters.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbench.meters.base import WindowMeter, parse_device
from llmbench.meters.energy.base import (
    DEFAULT_POWERCAP_ROOT,
    EnergySensor,
    Probe,
    Reading,
    SensorError,
    SensorOptions,
    unavailable_energy,
)
from llmbench.meters.energy.registry import SENSORS, sensor_order
from llmbench.meters.gpu import cuda_sync


def _noop() -> None:
    return None


@dataclass
class _State:
    t0: float
    error: str | None = None
    window: Any = None  # the sensor's own state


class EnergyMeter(WindowMeter):
    """Energy of each window on ``device`` (``cpu`` -> RAPL; ``cuda[:i]`` -> NVML counter, else power sampling).

    ``result()`` keys: ``available``, ``reason``, ``method`` (``nvml-energy-counter`` |
    ``nvml-power-sampling`` | ``rapl`` | None), ``joules`` (None when unavailable), ``unit`` ("J"),
    ``duration_s``, ``warning``, ``short_window`` (when available), ``domains`` (RAPL zones with their
    joules; ``[]`` otherwise) and ``raw`` (the counter values or sampling statistics the joules came from).

    ``nvml``: the pynvml module to use (default: ``import pynvml`` lazily). ``sync``: a callable that waits
    for queued GPU work, called before each reading; by default torch's synchronize when torch is already
    imported and the device is CUDA, else a no-op (this module never imports torch itself). ``sensors``:
    the sensor names to try, in order, instead of the device's registered order.
    """

    def __init__(
        self,
        device: str = "cpu",
        powercap_root: Path = DEFAULT_POWERCAP_ROOT,
        nvml: Any = None,
        *,
        sync: Callable[[], None] | None = None,
        sample_period_s: float = 0.05,
        rapl_poll_s: float | None = 10.0,
        min_window_s: float = 0.2,
        sensors: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.device = parse_device(device)
        self.options = SensorOptions(self.device, nvml, Path(powercap_root), sample_period_s, rapl_poll_s,
                                     min_window_s)
        self.sensor: EnergySensor | None = None
        self.method: str | None = None
        self.reason: str | None = None
        if sync is None:
            sync = cuda_sync(self.device.text) if self.device.is_cuda and "torch" in sys.modules else _noop
        self._sync = sync
        self._choose(sensor_order(self.device) if sensors is None else list(sensors))

    @property
    def available(self) -> bool:
        """Whether a sensor was found at construction (a window can still fail and say why)."""
        return self.sensor is not None

    def _choose(self, names: list[str]) -> None:
        """The first available sensor of ``names``; else ``reason`` lists why each one tried is not."""
        reasons: list[str] = []
        for name in names:
            sensor = SENSORS.get(name)(self.options)
            probe = Probe(*sensor.available())
            if probe.ok:
                self.sensor, self.method = sensor, sensor.method
                return
            reason = probe.reason or f"energy sensor {name} unavailable"
            if reason not in reasons:  # the NVML sensors share their library and handle failures
                reasons.append(reason)
            if not probe.fallback:
                break
        self.reason = "; ".join(reasons) or f"no energy sensor for device {self.device.text}"

    # --- window ----------------------------------------------------------------------------------------
    def _start(self) -> _State:
        if self.sensor is None:
            return _State(t0=time.perf_counter())
        self._sync()
        try:
            window = self.sensor.start()
        except SensorError as exc:
            return _State(t0=time.perf_counter(), error=str(exc))
        return _State(t0=time.perf_counter(), window=window)

    def _stop(self, state: _State) -> dict[str, Any]:
        if self.sensor is None:
            return unavailable_energy(self.reason, time.perf_counter() - state.t0)
        self._sync()  # queued GPU work belongs to this window; sensors keep sampling while waiting for it
        if state.error is not None:
            return unavailable_energy(state.error, time.perf_counter() - state.t0)
        try:
            reading = self.sensor.stop(state.window)
        except SensorError as exc:
            return unavailable_energy(str(exc), time.perf_counter() - state.t0)
        return self._available(self.sensor.method, reading)

    # --- results ---------------------------------------------------------------------------------------
    @staticmethod
    def _available(method: str, reading: Reading) -> dict[str, Any]:
        return {
            "available": True,
            "reason": None,
            "method": method,
            "joules": float(reading.joules),
            "unit": "J",
            "duration_s": reading.duration_s,
            "warning": reading.warning or None,
            # True when the window is shorter than the sensor resolves (min_window_s): the value is kept,
            # but compare and gate do not use it (one ~100 ms counter step can be 0 or the whole value)
            "short_window": bool(reading.short_window),
            "domains": reading.domains or [],
            "raw": reading.raw or {},
        }


def per_unit(result: dict[str, Any], n_samples: int | None, n_tokens: int | None) -> dict[str, Any]:
    """A copy of an energy ``result`` with ``joules_per_sample`` and ``joules_per_token`` added.

    Both stay ``None`` when energy is unavailable or the count is missing or zero.
    """
    out = dict(result)
    joules = result.get("joules") if result.get("available") else None
    out["joules_per_sample"] = joules / n_samples if joules is not None and n_samples else None
    out["joules_per_token"] = joules / n_tokens if joules is not None and n_tokens else None
    return out
