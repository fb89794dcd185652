"""Energy per window: NVML energy counter (GPU), NVML power sampling (GPU fallback) or RAPL (CPU).

- ``nvml-energy-counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta and newer)
  read at both ends of the window, after synchronising CUDA. The counter updates about every 100 ms, so
  windows shorter than ``min_window_s`` (0.2 s) carry a warning and ``short_window: true``.
- ``nvml-power-sampling``: when the counter is NOT_SUPPORTED, ``nvmlDeviceGetPowerUsage`` (mW) sampled on a
  sleeping thread every ~50 ms and integrated with the trapezoid rule over ``perf_counter`` timestamps.
- ``rapl``: ``energy_uj`` of the top-level ``intel-rapl:N`` package zones under /sys/class/powercap (AMD
  uses the same names on Linux) plus their ``dram`` sub-zones (memory is outside the package, and decoding
  is memory-bound), with wrap-around through ``max_energy_range_uj``. The core and uncore sub-zones are
  inside the package and not summed; ``psys`` (whole platform, includes the packages) is listed, not summed.
  A sleeping thread reads the counters every few seconds so windows longer than one wrap stay exact.

A missing sensor gives ``available: False`` with a ``reason`` and ``joules: None``, never 0.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmbench.meters.base import PeriodicThread, WindowMeter, parse_device
from llmbench.meters.gpu import cuda_sync, is_not_supported, load_nvml, nvml_error, nvml_handle

NVML_COUNTER = "nvml-energy-counter"
NVML_SAMPLING = "nvml-power-sampling"
RAPL = "rapl"

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
# Poll RAPL often enough that even this much power cannot wrap a counter twice between two reads.
_RAPL_WORST_CASE_W = 1000.0


def _read_uj(path: Path) -> int:
    """Read one integer counter file (``energy_uj``, ``max_energy_range_uj``)."""
    with open(path, encoding="ascii") as fh:
        return int(fh.read().strip())


def _noop() -> None:
    return None


@dataclass
class RaplDomain:
    """One powercap zone: a package (or psys) zone, or a package's dram sub-zone."""

    zone: str
    name: str
    energy_path: Path
    max_range_uj: int | None
    counted: bool  # summed into joules (packages and dram); psys is reported but not summed
    subzone: bool = False  # intel-rapl:N:M (dram); a meter needs at least one package zone


def find_rapl_domains(root: Path) -> list[RaplDomain]:
    """Top-level ``intel-rapl:N`` zones and ``intel-rapl:N:M`` sub-zones named ``dram`` under ``root``.

    Sysfs lists sub-zones both at the top of the powercap folder and inside their package's folder; the
    top-level entries are enough. Core and uncore sub-zones are skipped: the package already holds them.
    """
    found: list[tuple[tuple[int, int], RaplDomain]] = []
    for entry in root.iterdir():
        m = _ZONE.match(entry.name)
        if not m:
            continue
        try:
            name = (entry / "name").read_text().strip() or entry.name
        except OSError:
            name = entry.name
        if m.group(2) is not None and name != "dram":
            continue
        try:
            max_range: int | None = _read_uj(entry / "max_energy_range_uj")
        except (OSError, ValueError):
            max_range = None
        found.append(
            (
                (int(m.group(1)), -1 if m.group(2) is None else int(m.group(2))),
                RaplDomain(
                    entry.name, name, entry / "energy_uj", max_range, counted=not name.startswith("psys"),
                    subzone=m.group(2) is not None,
                ),
            )
        )
    return [d for _, d in sorted(found, key=lambda x: x[0])]


def _rapl_read_reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "RAPL energy_uj not readable (permission denied: run as root or chmod)"
    if isinstance(exc, ValueError):
        return f"RAPL energy_uj not readable (unparsable value in {path})"
    detail = getattr(exc, "strerror", None) or str(exc)
    return f"RAPL energy_uj not readable ({path}: {detail})"


class _RaplError(Exception):
    pass


class _RaplWindow:
    """Accumulates per-domain deltas with wrap-around; fed by the poll thread and the final read."""

    def __init__(self, domains: list[RaplDomain], start: list[int]) -> None:
        self.domains = domains
        self.start = list(start)
        self.last = list(start)
        self.total = [0] * len(domains)
        self.wraps = [0] * len(domains)
        self.lock = threading.Lock()

    def read_all(self) -> list[int]:
        return [_read_uj(d.energy_path) for d in self.domains]

    def advance(self, values: list[int]) -> None:
        with self.lock:
            for i, (dom, v) in enumerate(zip(self.domains, values)):
                prev = self.last[i]
                if v >= prev:
                    self.total[i] += v - prev
                else:
                    if dom.max_range_uj is None:
                        raise _RaplError(
                            f"RAPL counter {dom.zone} wrapped and max_energy_range_uj is unknown"
                        )
                    self.total[i] += v - prev + dom.max_range_uj
                    self.wraps[i] += 1
                self.last[i] = v

    def poll(self) -> None:
        self.advance(self.read_all())


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
class _State:
    t0: float
    error: str | None = None
    e0_mj: int | None = None
    integrator: _PowerIntegrator | None = None
    sampler: PeriodicThread | None = None
    rapl: _RaplWindow | None = None


class EnergyMeter(WindowMeter):
    """Energy of each window on ``device`` (``cpu`` -> RAPL; ``cuda[:i]`` -> NVML).

    ``result()`` keys: ``available``, ``reason``, ``method`` (``nvml-energy-counter`` |
    ``nvml-power-sampling`` | ``rapl`` | None), ``joules`` (None when unavailable), ``unit`` ("J"),
    ``duration_s``, ``warning``, ``domains`` (RAPL zones with their joules; ``[]`` otherwise) and ``raw``
    (the counter values or sampling statistics the joules came from).

    ``nvml``: the pynvml module to use (default: ``import pynvml`` lazily). ``sync``: a callable that waits
    for queued GPU work, called before each counter read; by default torch's synchronize when torch is
    already imported and the device is CUDA, else a no-op (this module never imports torch itself).
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
    ) -> None:
        super().__init__()
        self.device = parse_device(device)
        self.powercap_root = Path(powercap_root)
        self.sample_period_s = sample_period_s
        self.min_window_s = min_window_s
        self.method: str | None = None
        self.reason: str | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self._nvml_err: type[BaseException] = Exception
        self._domains: list[RaplDomain] = []
        self._rapl_poll_s: float | None = None
        self._rapl_note: str | None = None
        if sync is None:
            sync = cuda_sync(self.device.text) if self.device.is_cuda and "torch" in sys.modules else _noop
        self._sync = sync

        if self.device.is_cuda:
            self._setup_nvml(nvml)
        elif self.device.kind == "cpu":
            self._setup_rapl(rapl_poll_s)
        else:
            self.reason = f"no energy sensor for device {self.device.text}"

    @property
    def available(self) -> bool:
        """Whether a sensor was found at construction (a window can still fail and say why)."""
        return self.method is not None

    # --- setup -----------------------------------------------------------------------------------------
    def _setup_nvml(self, nvml: Any) -> None:
        mod, reason = load_nvml(nvml)
        if mod is None:
            self.reason = reason
            return
        try:
            self._handle = nvml_handle(mod, self.device)
        except nvml_error(mod) as exc:
            self.reason = f"NVML handle for {self.device.text} failed: {exc}"
            return
        self._nvml = mod
        self._nvml_err = nvml_error(mod)
        try:
            mod.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.method = NVML_COUNTER
            return
        except self._nvml_err as exc:
            if not is_not_supported(mod, exc):
                self.reason = f"NVML energy counter failed: {exc}"
                return
        try:
            mod.nvmlDeviceGetPowerUsage(self._handle)
            self.method = NVML_SAMPLING
        except self._nvml_err as exc:
            if is_not_supported(mod, exc):
                self.reason = "NVML energy counter and power usage are not supported on this GPU"
            else:
                self.reason = f"NVML power usage failed: {exc}"

    def _setup_rapl(self, poll_s: float | None) -> None:
        root = self.powercap_root
        if not root.is_dir():
            self.reason = f"no RAPL powercap interface at {root}"
            return
        domains = find_rapl_domains(root)
        if not any(d.counted and not d.subzone for d in domains):
            self.reason = f"no RAPL package domains (intel-rapl:N) under {root}"
            return
        readable, notes = [], []
        for d in domains:
            try:
                _read_uj(d.energy_path)
            except (OSError, ValueError) as exc:
                if not d.subzone:
                    self.reason = _rapl_read_reason(d.energy_path, exc)
                    return
                # an unreadable dram zone must not cost the package energy: left out, and said so
                notes.append(f"{d.zone} ({d.name}) left out: {_rapl_read_reason(d.energy_path, exc)}")
                continue
            readable.append(d)
        self._domains = readable
        self._rapl_note = "; ".join(notes) or None
        self.method = RAPL
        if poll_s is not None:
            ranges = [d.max_range_uj for d in readable if d.max_range_uj]
            if ranges:
                wrap_s = min(ranges) / 1e6 / _RAPL_WORST_CASE_W
                # a quarter of the fastest possible wrap, but never busier than twice a second
                poll_s = min(poll_s, max(0.5, wrap_s / 4))
            self._rapl_poll_s = poll_s

    # --- window ----------------------------------------------------------------------------------------
    def _start(self) -> _State:
        if self.method is None:
            return _State(t0=time.perf_counter())
        self._sync()
        if self.method == NVML_COUNTER:
            try:
                e0 = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
            except self._nvml_err as exc:
                return _State(t0=time.perf_counter(), error=f"NVML energy counter read failed: {exc}")
            return _State(t0=time.perf_counter(), e0_mj=e0)
        if self.method == NVML_SAMPLING:
            integ = _PowerIntegrator(lambda: self._nvml.nvmlDeviceGetPowerUsage(self._handle))
            try:
                integ.first()
            except self._nvml_err as exc:
                return _State(t0=time.perf_counter(), error=f"NVML power read failed: {exc}")
            sampler = PeriodicThread(integ.sample, self.sample_period_s, name="llmbench-power").start()
            return _State(t0=integ.t0, integrator=integ, sampler=sampler)
        # RAPL
        try:
            start = [_read_uj(d.energy_path) for d in self._domains]
        except (OSError, ValueError) as exc:
            return _State(t0=time.perf_counter(), error=_rapl_read_reason(self._domains[0].energy_path, exc))
        win = _RaplWindow(self._domains, start)
        state = _State(t0=time.perf_counter(), rapl=win)
        if self._rapl_poll_s is not None:
            state.sampler = PeriodicThread(win.poll, self._rapl_poll_s, name="llmbench-rapl").start()
        return state

    def _stop(self, state: _State) -> dict[str, Any]:
        if self.method is None:
            return self._unavailable(self.reason, time.perf_counter() - state.t0)
        self._sync()  # queued GPU work belongs to this window; keep sampling while waiting for it
        if state.sampler is not None:
            state.sampler.stop()
        if state.error is not None:
            return self._unavailable(state.error, time.perf_counter() - state.t0)
        if self.method == NVML_COUNTER:
            return self._stop_counter(state)
        if self.method == NVML_SAMPLING:
            return self._stop_sampling(state)
        return self._stop_rapl(state)

    def _stop_counter(self, state: _State) -> dict[str, Any]:
        try:
            e1 = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml_err as exc:
            return self._unavailable(
                f"NVML energy counter read failed: {exc}", time.perf_counter() - state.t0
            )
        duration = time.perf_counter() - state.t0
        assert state.e0_mj is not None
        if e1 < state.e0_mj:
            return self._unavailable("NVML energy counter went backwards (driver reloaded?)", duration)
        return self._available(
            NVML_COUNTER,
            (e1 - state.e0_mj) / 1000.0,
            duration,
            self._short_window_warning(duration),
            raw={"start_mj": state.e0_mj, "end_mj": e1},
            short_window=duration < self.min_window_s,
        )

    def _stop_sampling(self, state: _State) -> dict[str, Any]:
        integ = state.integrator
        assert integ is not None and state.sampler is not None
        if state.sampler.error is not None:
            return self._unavailable(
                f"NVML power read failed: {state.sampler.error}", time.perf_counter() - state.t0
            )
        try:
            integ.sample()  # closing sample, after the sync
        except self._nvml_err as exc:
            return self._unavailable(f"NVML power read failed: {exc}", time.perf_counter() - state.t0)
        duration = integ.t - integ.t0
        joules = integ.mj / 1000.0
        warnings = [w for w in [self._short_window_warning(duration, "NVML power readings update")] if w]
        warnings.append("power readings may be averaged by the driver over up to 1 s on recent GPUs")
        return self._available(
            NVML_SAMPLING,
            joules,
            duration,
            "; ".join(warnings),
            raw={
                "n_samples": integ.n,
                "mean_power_w": (joules / duration) if duration > 0 else None,
                "max_power_w": integ.p_max / 1000.0,
                "period_s": self.sample_period_s,
            },
            short_window=duration < self.min_window_s,
        )

    def _stop_rapl(self, state: _State) -> dict[str, Any]:
        win = state.rapl
        assert win is not None
        if state.sampler is not None and state.sampler.error is not None:
            err = state.sampler.error
            reason = (
                str(err)
                if isinstance(err, _RaplError)
                else _rapl_read_reason(win.domains[0].energy_path, err)
            )
            return self._unavailable(reason, time.perf_counter() - state.t0)
        try:
            win.poll()
        except _RaplError as exc:
            return self._unavailable(str(exc), time.perf_counter() - state.t0)
        except (OSError, ValueError) as exc:
            return self._unavailable(
                _rapl_read_reason(win.domains[0].energy_path, exc), time.perf_counter() - state.t0
            )
        duration = time.perf_counter() - state.t0
        domains = [
            {
                "zone": d.zone,
                "name": d.name,
                "joules": win.total[i] / 1e6,
                "counted": d.counted,
                "start_uj": win.start[i],
                "end_uj": win.last[i],
                "wraps": win.wraps[i],
                "max_energy_range_uj": d.max_range_uj,
            }
            for i, d in enumerate(win.domains)
        ]
        joules = sum(win.total[i] for i, d in enumerate(win.domains) if d.counted) / 1e6
        warnings = [self._rapl_note] if self._rapl_note else []
        ranges = [d.max_range_uj for d in win.domains if d.max_range_uj]
        if self._rapl_poll_s is None and ranges and duration > min(ranges) / 1e6 / _RAPL_WORST_CASE_W:
            warnings.append("window long enough for a RAPL counter to wrap more than once (polling disabled)")
        warning = "; ".join(warnings) or None
        return self._available(
            RAPL, joules, duration, warning, domains=domains, raw={"poll_s": self._rapl_poll_s}
        )

    # --- results ---------------------------------------------------------------------------------------
    def _short_window_warning(self, duration: float, sensor: str = "the NVML counter updates") -> str | None:
        if duration < self.min_window_s:
            return (
                f"window of {duration:.3f} s is shorter than {self.min_window_s} s; {sensor} "
                "about every 100 ms, so this value is coarse"
            )
        return None

    def _available(
        self,
        method: str,
        joules: float,
        duration: float,
        warning: str | None,
        domains: list[dict[str, Any]] | None = None,
        raw: dict[str, Any] | None = None,
        short_window: bool = False,
    ) -> dict[str, Any]:
        return {
            "available": True,
            "reason": None,
            "method": method,
            "joules": float(joules),
            "unit": "J",
            "duration_s": duration,
            "warning": warning or None,
            # True when the window is shorter than the NVML sensor resolves (min_window_s): the value is
            # kept, but compare and gate do not use it (one ~100 ms counter step can be 0 or the whole value)
            "short_window": short_window,
            "domains": domains or [],
            "raw": raw or {},
        }

    def _unavailable(self, reason: str | None, duration: float) -> dict[str, Any]:
        return {
            "available": False,
            "reason": reason or "energy unavailable",
            "method": None,
            "joules": None,
            "unit": "J",
            "duration_s": duration,
            "warning": None,
            "domains": [],
            "raw": {},
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
