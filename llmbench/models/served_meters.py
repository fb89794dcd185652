"""Energy and memory of a served model over one load level's window, honestly scoped.

- ``--gpu-telemetry URL`` given: DCGM exporters (llmbench.meters.dcgm), summed over nodes;
- else a server on this machine with NVML readable: NVML's energy counter and memory use of every GPU of
  this machine, summed — device-wide, other processes included, and labelled so;
- else ``available: false`` with the reason (a remote server's GPUs cannot be read from here).

The client's own memory is not the model's: a served row has no ``peak_rss_bytes``.
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from llmbench.meters.base import WindowMeter
from llmbench.meters.dcgm import DcgmTelemetry
from llmbench.meters.energy.base import short_window_warning, unavailable_energy

LOCAL_NVML = "nvml-energy-counter"
LOCAL_SCOPE = "device-wide: every GPU of this machine, other processes included"
MIN_WINDOW_S = 0.2  # NVML's counter steps about every 100 ms


def is_local(url: str) -> bool:
    """Whether the server behind ``url`` runs on this machine (loopback or one of this host's names)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.startswith("127."):
        return True
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    if host in names:
        return True
    try:
        return host in set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        return False


class LocalGpus(WindowMeter):
    """NVML energy counter and memory used of every GPU on this machine, read at the window's edges."""

    def __init__(self, nvml: Any, count: int) -> None:
        super().__init__()
        self._nvml = nvml
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def _read(self) -> tuple[list[int], list[int]]:
        nv = self._nvml
        return ([int(nv.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles],
                [int(nv.nvmlDeviceGetMemoryInfo(h).used) for h in self._handles])

    def _start(self) -> dict:
        t0 = time.perf_counter()
        try:
            energy, used = self._read()
        except Exception as exc:  # noqa: BLE001 - NVMLError: recorded as the reason
            return {"t0": t0, "error": f"NVML read failed: {exc}"}
        return {"t0": t0, "error": None, "energy": energy, "used": used}

    def _stop(self, state: dict) -> dict:
        out = self._stop_window(state)
        out["duration_s"] = out["energy"]["duration_s"]  # the window's length (the row's latency.window_s)
        return out

    def _stop_window(self, state: dict) -> dict:
        duration = time.perf_counter() - state["t0"]
        if state["error"]:
            return {"energy": unavailable_energy(state["error"], duration), "memory": _no_memory(state["error"])}
        try:
            energy, used = self._read()
        except Exception as exc:  # noqa: BLE001
            reason = f"NVML read failed: {exc}"
            return {"energy": unavailable_energy(reason, duration), "memory": _no_memory(reason)}
        deltas = [b - a for a, b in zip(state["energy"], energy)]
        memory = {"method": "nvml", "server_used_bytes": sum(used),
                  "server_used_max_edge_bytes": sum(max(a, b) for a, b in zip(state["used"], used)),
                  "reason": None, "scope": LOCAL_SCOPE, "gpus": len(used)}
        if any(d < 0 for d in deltas):
            return {"energy": unavailable_energy("NVML energy counter went backwards (driver reloaded?)", duration),
                    "memory": memory}
        short = duration < MIN_WINDOW_S
        warning = short_window_warning(duration, MIN_WINDOW_S)
        return {"energy": {
            "available": True, "reason": None, "method": LOCAL_NVML, "joules": sum(deltas) / 1000.0, "unit": "J",
            "duration_s": duration, "warning": warning, "short_window": short, "scope": LOCAL_SCOPE,
            "domains": [{"gpu": i, "joules": d / 1000.0} for i, d in enumerate(deltas)],
            "raw": {"start_mj": state["energy"], "end_mj": energy}}, "memory": memory}

    def energy(self) -> dict:
        return self.result()["energy"]

    def memory(self) -> dict:
        return self.result()["memory"]


class NoSensor(WindowMeter):
    """Measures nothing and says why."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def _start(self) -> float:
        return time.perf_counter()

    def _stop(self, t0: float) -> dict:
        return {"duration_s": time.perf_counter() - t0}

    def energy(self) -> dict:
        return unavailable_energy(self.reason, self.result()["duration_s"])

    def memory(self) -> dict:
        return _no_memory(self.reason)


def _no_memory(reason: str) -> dict:
    return {"method": None, "server_used_bytes": None, "reason": reason}


def served_meter(urls: list[str], telemetry: tuple[str, ...], nvml: Any = None,
                 timeout_s: float = 10.0) -> WindowMeter:
    """The meter for a served model whose replicas are ``urls`` (see the module docstring); ``timeout_s``
    (--connect-timeout) bounds each telemetry read."""
    if telemetry:
        return DcgmTelemetry(telemetry, timeout_s=timeout_s)
    remote = [u for u in urls if not is_local(u)]
    if remote:
        return NoSensor(f"the server ({remote[0]}) is not on this machine: give --gpu-telemetry URL of its "
                        "nodes' DCGM exporters to measure its GPUs")
    from llmbench.meters.gpu import load_nvml

    mod, reason = load_nvml(nvml)
    if mod is None:
        return NoSensor(f"local server, but no GPU to read: {reason}")
    try:
        count = int(mod.nvmlDeviceGetCount())
        if count < 1:
            return NoSensor("local server, but NVML sees no GPU")
        meter = LocalGpus(mod, count)
        mod.nvmlDeviceGetTotalEnergyConsumption(meter._handles[0])
    except Exception as exc:  # noqa: BLE001 - NOT_SUPPORTED (pre-Volta) or a failing driver
        return NoSensor(f"local server, but NVML's energy counter cannot be read: {exc}")
    return meter
