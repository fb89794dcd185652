"""``nvml-power-sampling``: ``nvmlDeviceGetPowerUsage`` (mW) sampled on a sleeping thread and integrated
with the trapezoid rule over ``perf_counter`` time; the GPU fallback when the energy counter is not
supported. See docs/meters.md."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmbench.meters.base import PeriodicThread
from llmbench.meters.energy.base import NVML_SAMPLING, Reading, SensorError, short_window_warning
from llmbench.meters.energy.nvml_base import NvmlSensor

# recent GPUs average the reading itself, so this caveat holds for every sampled window
_AVERAGED = "power readings may be averaged by the driver over up to 1 s on recent GPUs"


@dataclass
class _PowerIntegrator:
    """Trapezoid integral of NVML power (mW) over perf_counter time: mW * s = mJ."""

    read_mw: Callable[[], float]
    t0: float = 0.0
    t: float = 0.0
    p: float = 0.0
    mj: float = 0.0
    n: int = 0
    p_max: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self) -> None:
        self.p = float(self.read_mw())
        self.t0 = self.t = time.perf_counter()
        self.p_max = self.p
        self.n = 1

    def sample(self) -> None:
        p = float(self.read_mw())
        t = time.perf_counter()
        with self.lock:
            self.mj += (p + self.p) / 2.0 * (t - self.t)
            self.t, self.p = t, p
            self.n += 1
            self.p_max = max(self.p_max, p)


@dataclass
class _Window:
    integrator: _PowerIntegrator
    sampler: PeriodicThread


class NvmlPowerSensor(NvmlSensor):
    """GPU board power, sampled every ``sample_period_s`` (50 ms) and at both ends of the window."""

    method = NVML_SAMPLING

    probe_call = "nvmlDeviceGetPowerUsage"
    what = "NVML power usage"

    def start(self) -> _Window:
        integ = _PowerIntegrator(lambda: self._nvml.nvmlDeviceGetPowerUsage(self._handle))
        try:
            integ.first()
        except self._err as exc:
            raise SensorError(f"NVML power read failed: {exc}") from None
        sampler = PeriodicThread(integ.sample, self.options.sample_period_s, name="llmbench-power").start()
        return _Window(integ, sampler)

    def stop(self, state: _Window) -> Reading:
        state.sampler.stop()
        if state.sampler.error is not None:
            raise SensorError(f"NVML power read failed: {state.sampler.error}")
        integ = state.integrator
        try:
            integ.sample()  # the closing sample, after the meter's sync
        except self._err as exc:
            raise SensorError(f"NVML power read failed: {exc}") from None
        duration = integ.t - integ.t0
        joules = integ.mj / 1000.0
        min_s = self.options.min_window_s
        warnings = [w for w in [short_window_warning(duration, min_s, "NVML power readings update")] if w]
        return Reading(
            joules=joules,
            duration_s=duration,
            warning="; ".join([*warnings, _AVERAGED]),
            raw={
                "n_samples": integ.n,
                "mean_power_w": (joules / duration) if duration > 0 else None,
                "max_power_w": integ.p_max / 1000.0,
                "period_s": self.options.sample_period_s,
            },
            short_window=duration < min_s,
        )
