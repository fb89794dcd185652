"""Energy sensors by name, and the order they are tried in on each kind of device.

A sensor is one file plus one ``register_sensor`` line. The built-in order:

- ``cuda``: ``nvml-energy-counter``, then ``nvml-power-sampling`` (where the GPU has no energy counter);
- ``cpu``: ``rapl``.

The first sensor whose ``available()`` says yes measures every window of the meter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from llmbench.meters.base import Device
from llmbench.meters.energy.base import NVML_COUNTER, NVML_SAMPLING, RAPL, EnergySensor, SensorOptions
from llmbench.registry import Registry

SensorFactory = Callable[[SensorOptions], EnergySensor]

SENSORS: Registry[SensorFactory] = Registry("energy sensor")
_ORDER: dict[str, list[str]] = {}


def register_sensor(name: str, target: object, devices: Iterable[str], *, first: bool = False) -> None:
    """Add sensor ``name`` (a class or ``"module:Class"`` built as ``Class(SensorOptions)``) for the device
    kinds in ``devices`` (``cuda``, ``cpu``...): tried after the sensors already there, or before them
    when ``first``."""
    SENSORS.register(name, target)
    for kind in devices:
        order = _ORDER.setdefault(kind, [])
        if name in order:
            order.remove(name)
        if first:
            order.insert(0, name)
        else:
            order.append(name)


def unregister_sensor(name: str) -> None:
    """Remove sensor ``name`` from the registry and from every device's order."""
    SENSORS.unregister(name)
    for order in _ORDER.values():
        if name in order:
            order.remove(name)


def sensor_order(device: Device) -> list[str]:
    """Names of the sensors tried on ``device``, first choice first (``[]``: no sensor for that kind)."""
    return list(_ORDER.get(device.kind, []))


register_sensor(NVML_COUNTER, "llmbench.meters.energy.nvml_counter:NvmlCounterSensor", devices=("cuda",))
register_sensor(NVML_SAMPLING, "llmbench.meters.energy.nvml_power:NvmlPowerSensor", devices=("cuda",))
register_sensor(RAPL, "llmbench.meters.energy.rapl:RaplSensor", devices=("cpu",))
