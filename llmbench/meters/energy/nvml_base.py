"""What the two NVML sensors share: opening the device and probing the one NVML call each depends on."""

from __future__ import annotations

from typing import Any, ClassVar

from llmbench.meters.energy.base import Probe, SensorOptions
from llmbench.meters.gpu import is_not_supported, nvml_error, open_nvml_device


class NvmlSensor:
    """Base of an NVML sensor: ``available()`` opens the device and calls ``probe_call`` once; on success
    ``_nvml``, ``_handle`` and ``_err`` (NVML's error class) are set for the sensor's own readings."""

    probe_call: ClassVar[str]  # the NVML function the sensor reads, e.g. nvmlDeviceGetPowerUsage
    what: ClassVar[str]  # how messages name it, e.g. "NVML power usage"

    def __init__(self, options: SensorOptions) -> None:
        self.options = options
        self._nvml: Any = None
        self._handle: Any = None
        self._err: type[BaseException] = Exception

    def available(self) -> Probe:
        mod, handle, reason = open_nvml_device(self.options.nvml, self.options.device)
        if mod is None:
            return Probe(False, reason)
        err = nvml_error(mod)
        try:
            getattr(mod, self.probe_call)(handle)
        except err as exc:
            if is_not_supported(mod, exc):
                return Probe(False, f"{self.what} not supported on this GPU")
            return Probe(False, f"{self.what} failed: {exc}", fallback=False)
        self._nvml, self._handle, self._err = mod, handle, err
        return Probe(True)
