"""Energy per window: :class:`EnergyMeter` over pluggable sensors (NVML energy counter, NVML power
sampling, RAPL), each one file behind the :class:`EnergySensor` protocol. See docs/meters.md."""

from llmbench.meters.energy.base import (
    DEFAULT_POWERCAP_ROOT,
    NVML_COUNTER,
    NVML_SAMPLING,
    RAPL,
    EnergySensor,
    Probe,
    Reading,
    SensorError,
    SensorOptions,
)
from llmbench.meters.energy.meter import EnergyMeter, per_unit
from llmbench.meters.energy.rapl import RaplDomain, find_rapl_domains
from llmbench.meters.energy.registry import SENSORS, register_sensor, sensor_order, unregister_sensor

__all__ = [
    "DEFAULT_POWERCAP_ROOT",
    "NVML_COUNTER",
    "NVML_SAMPLING",
    "RAPL",
    "SENSORS",
    "EnergyMeter",
    "EnergySensor",
    "Probe",
    "RaplDomain",
    "Reading",
    "SensorError",
    "SensorOptions",
    "find_rapl_domains",
    "per_unit",
    "register_sensor",
    "sensor_order",
    "unregister_sensor",
]
