"""The one shape of an energy sensor, and what a sensor hands back to :class:`EnergyMeter`.

A sensor is one file with one class: built from :class:`SensorOptions`, it says whether it can measure
here (``available()``) and measures one window (``start()`` then ``stop(state)``). The meter owns
everything the sensors share: the order they are tried in, CUDA synchronisation before each read, and
the record. See docs/meters.md ("Adding an energy sensor").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from llmbench.meters.base import Device

# Method names as records spell them; each is also the sensor's name in the registry.
NVML_COUNTER = "nvml-energy-counter"
NVML_SAMPLING = "nvml-power-sampling"
RAPL = "rapl"

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class SensorOptions:
    """Everything a sensor may be configured with; each sensor reads the fields it needs."""

    device: Device
    nvml: Any = None  # the pynvml module to use (None: import it lazily)
    powercap_root: Path = DEFAULT_POWERCAP_ROOT
    sample_period_s: float = 0.05  # power sampling period
    rapl_poll_s: float | None = 10.0  # RAPL wrap-guard polling (None: off)
    min_window_s: float = 0.2  # shorter windows are flagged short_window (NVML resolves ~100 ms)


class Probe(NamedTuple):
    """The answer of ``available()``.

    ``fallback`` (when not ``ok``): whether the next sensor in the device's order may stand in. True when
    this sensor does not exist here (no library, not supported by this GPU); False when it exists but
    fails, so its ``reason`` is the answer. A plain ``(ok, reason)`` tuple means ``fallback=True``.
    """

    ok: bool
    reason: str | None = None
    fallback: bool = True


class SensorError(Exception):
    """A reading failed inside a window; its message becomes the record's ``reason``."""


@dataclass
class Reading:
    """One window's energy as a sensor measured it; :class:`EnergyMeter` turns it into the record."""

    joules: float
    duration_s: float
    warning: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the values the joules came from
    domains: list[dict[str, Any]] = field(default_factory=list)  # RAPL zones; [] for other sensors
    short_window: bool = False  # shorter than the sensor resolves: kept, but compare and gate skip it


@runtime_checkable
class EnergySensor(Protocol):
    """One way of measuring energy (``method``: the record's ``method``, e.g. ``rapl``)."""

    method: str

    def available(self) -> Probe | tuple[bool, str | None]:
        """Whether this sensor can measure here; called once, when the meter is built."""

    def start(self) -> Any:
        """Open a window (first reading, sampling threads); returns the window's state. Raises SensorError."""

    def stop(self, state: Any) -> Reading:
        """Close the window opened by ``start``; always stops its threads. Raises SensorError."""


def short_window_warning(duration: float, min_window_s: float,
                         sensor: str = "the NVML counter updates") -> str | None:
    """The caveat of a window shorter than an NVML sensor resolves, else None."""
    if duration < min_window_s:
        return (
            f"window of {duration:.3f} s is shorter than {min_window_s} s; {sensor} "
            "about every 100 ms, so this value is coarse"
        )
    return None


def unavailable_energy(reason: str | None, duration: float | None) -> dict:
    """An energy result with nothing measured, and why (the keys of a measured one, ``joules`` None): every
    meter's way of saying "unavailable", in process (EnergyMeter) and served (DCGM, NVML of a local server)."""
    return {"available": False, "reason": reason or "energy unavailable", "method": None, "joules": None,
            "unit": "J", "duration_s": duration, "warning": None, "domains": [], "raw": {}}
