"""Meters: same shape for all: ``with meter.measure(label): ...`` then ``meter.result()``.

Compose them with :class:`contextlib.ExitStack`. Importing this package never imports torch or NVML; the
meters load them lazily, and only for CUDA devices. See docs/meters.md for each meter's method and limits.
"""

from llmbench.meters.base import Device, Meter, PeriodicThread, WindowMeter, parse_device
from llmbench.meters.energy import EnergyMeter, EnergySensor, find_rapl_domains, per_unit, register_sensor
from llmbench.meters.gpu import cuda_sync, gpu_info, load_nvml, nvml_handle
from llmbench.meters.memory import MemoryMeter, parameter_count, weights_bytes

__all__ = [
    "Device",
    "EnergyMeter",
    "EnergySensor",
    "MemoryMeter",
    "Meter",
    "PeriodicThread",
    "WindowMeter",
    "cuda_sync",
    "find_rapl_domains",
    "gpu_info",
    "load_nvml",
    "nvml_handle",
    "parameter_count",
    "parse_device",
    "per_unit",
    "register_sensor",
    "weights_bytes",
]
