"""``nvml-energy-counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and
newer) read at both ends of the window. See docs/meters.md."""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmbench.meters.energy.base import NVML_COUNTER, Reading, SensorError, short_window_warning
from llmbench.meters.energy.nvml_base import NvmlSensor


@dataclass
class _Window:
    t0: float
    start_mj: int


class NvmlCounterSensor(NvmlSensor):
    """The GPU's own energy counter: exact, updated about every 100 ms."""

    method = NVML_COUNTER

    probe_call = "nvmlDeviceGetTotalEnergyConsumption"
    what = "NVML energy counter"

    def _read(self) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._err as exc:
            raise SensorError(f"NVML energy counter read failed: {exc}") from None

    def start(self) -> _Window:
        start = self._read()
        return _Window(t0=time.perf_counter(), start_mj=start)

    def stop(self, state: _Window) -> Reading:
        end = self._read()
        duration = time.perf_counter() - state.t0
        if end < state.start_mj:
            raise SensorError("NVML energy counter went backwards (driver reloaded?)")
        min_s = self.options.min_window_s
        return Reading(
            joules=(end - state.start_mj) / 1000.0,
            duration_s=duration,
            warning=short_window_warning(duration, min_s),
            raw={"start_mj": state.start_mj, "end_mj": end},
            short_window=duration < min_s,
        )
