"""``rapl``: ``energy_uj`` of the CPU package zones (and their ``dram`` sub-zones) under
/sys/class/powercap, with wrap-around. See docs/meters.md for which zones are summed and why."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from llmbench.meters.base import PeriodicThread
from llmbench.meters.energy.base import RAPL, Probe, Reading, SensorError, SensorOptions

_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
# Poll RAPL often enough that even this much power cannot wrap a counter twice between two reads.
_RAPL_WORST_CASE_W = 1000.0


def _read_uj(path: Path) -> int:
    """Read one integer counter file (``energy_uj``, ``max_energy_range_uj``)."""
    with open(path, encoding="ascii") as fh:
        return int(fh.read().strip())


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


def _read_reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "RAPL energy_uj not readable (permission denied: run as root or chmod)"
    if isinstance(exc, ValueError):
        return f"RAPL energy_uj not readable (unparsable value in {path})"
    detail = getattr(exc, "strerror", None) or str(exc)
    return f"RAPL energy_uj not readable ({path}: {detail})"


class _WrapError(Exception):
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
        self.t0 = time.perf_counter()
        self.sampler: PeriodicThread | None = None

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
                        raise _WrapError(f"RAPL counter {dom.zone} wrapped and max_energy_range_uj is unknown")
                    self.total[i] += v - prev + dom.max_range_uj
                    self.wraps[i] += 1
                self.last[i] = v

    def poll(self) -> None:
        self.advance(self.read_all())


class RaplSensor:
    """CPU package (+ DRAM) energy from the Linux powercap interface; a thread guards against wraps."""

    method = RAPL

    def __init__(self, options: SensorOptions) -> None:
        self.options = options
        self.root = Path(options.powercap_root)
        self.domains: list[RaplDomain] = []
        self.poll_s: float | None = None
        self._note: str | None = None

    def available(self) -> Probe:
        root = self.root
        if not root.is_dir():
            return Probe(False, f"no RAPL powercap interface at {root}")
        domains = find_rapl_domains(root)
        if not any(d.counted and not d.subzone for d in domains):
            return Probe(False, f"no RAPL package domains (intel-rapl:N) under {root}")
        readable, notes = [], []
        for d in domains:
            try:
                _read_uj(d.energy_path)
            except (OSError, ValueError) as exc:
                if not d.subzone:
                    return Probe(False, _read_reason(d.energy_path, exc))
                # an unreadable dram zone must not cost the package energy: left out, and said so
                notes.append(f"{d.zone} ({d.name}) left out: {_read_reason(d.energy_path, exc)}")
                continue
            readable.append(d)
        self.domains = readable
        self._note = "; ".join(notes) or None
        poll_s = self.options.rapl_poll_s
        if poll_s is not None:
            ranges = [d.max_range_uj for d in readable if d.max_range_uj]
            if ranges:
                wrap_s = min(ranges) / 1e6 / _RAPL_WORST_CASE_W
                # a quarter of the fastest possible wrap, but never busier than twice a second
                poll_s = min(poll_s, max(0.5, wrap_s / 4))
        self.poll_s = poll_s
        return Probe(True)

    def start(self) -> _RaplWindow:
        try:
            start = [_read_uj(d.energy_path) for d in self.domains]
        except (OSError, ValueError) as exc:
            raise SensorError(_read_reason(self.domains[0].energy_path, exc)) from None
        win = _RaplWindow(self.domains, start)
        if self.poll_s is not None:
            win.sampler = PeriodicThread(win.poll, self.poll_s, name="llmbench-rapl").start()
        return win

    def stop(self, win: _RaplWindow) -> Reading:
        if win.sampler is not None:
            win.sampler.stop()
            err = win.sampler.error
            if err is not None:
                raise SensorError(str(err) if isinstance(err, _WrapError)
                                  else _read_reason(win.domains[0].energy_path, err))
        try:
            win.poll()
        except _WrapError as exc:
            raise SensorError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise SensorError(_read_reason(win.domains[0].energy_path, exc)) from None
        duration = time.perf_counter() - win.t0
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
        warnings = [self._note] if self._note else []
        ranges = [d.max_range_uj for d in win.domains if d.max_range_uj]
        if self.poll_s is None and ranges and duration > min(ranges) / 1e6 / _RAPL_WORST_CASE_W:
            warnings.append("window long enough for a RAPL counter to wrap more than once (polling disabled)")
        return Reading(joules=joules, duration_s=duration, warning="; ".join(warnings) or None,
                       raw={"poll_s": self.poll_s}, domains=domains)
