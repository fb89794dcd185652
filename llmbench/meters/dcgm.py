"""GPU energy and memory of remote servers from NVIDIA DCGM exporter (Prometheus text) endpoints.

``--gpu-telemetry URL`` (one per node, e.g. ``http://node1:9400/metrics``) is read at both edges of a
window: the energy is the sum, over every GPU of every node, of the growth of
``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (mJ since boot, a counter); memory is ``DCGM_FI_DEV_FB_USED`` (MiB
of framebuffer in use) summed over the GPUs. Both are device-wide: every process on those GPUs is
included, not only the server being measured.

The exporter refreshes its values every collect interval (``dcgm-exporter -c``, 30 s by default), so a
window shorter than two intervals is ``short_window`` (coarse, with a warning); a counter that did not move
at all over the window gives ``available: false`` (a stale reading, not 0 J), and so does a GPU missing at
one edge or a counter standing still beside moving ones (a partial sum is not the total).
The Prometheus text is parsed by ``prometheus_client``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from llmbench.errors import UserError
from llmbench.meters.base import WindowMeter
from llmbench.meters.energy.base import unavailable_energy

METHOD = "dcgm-exporter"
ENERGY_METRIC = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"  # mJ, counter
FB_USED_METRIC = "DCGM_FI_DEV_FB_USED"  # MiB, gauge
MIB = 1024 * 1024
SCOPE = "device-wide (every process on the exporters' GPUs)"
COLLECT_INTERVAL_S = 30.0  # dcgm-exporter's default collect interval (-c 30000)
# a window shorter than two collect intervals may hold a single refresh (or none): short_window
INTERVAL_WARNING = ("window of {duration:.1f} s is shorter than two DCGM exporter collect intervals (2 x 30 s by "
                    "default): its energy is coarse")

Fetch = Callable[[str, float], str]  # (url, timeout_s) -> Prometheus text; raises on failure


@dataclass
class GpuReading:
    node: str  # the telemetry URL
    gpu: str  # the exporter's UUID label, else its gpu index
    energy_mj: float | None
    fb_used_mib: float | None
    name: str | None = None


def http_fetch(url: str, timeout_s: float) -> str:
    import httpx

    response = httpx.get(url, timeout=timeout_s)
    response.raise_for_status()
    return response.text


def parse_metrics(text: str, node: str) -> list[GpuReading]:
    """The per-GPU energy counter and framebuffer use in one exporter's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    gpus: dict[str, GpuReading] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (ENERGY_METRIC, FB_USED_METRIC):
            continue
        for sample in family.samples:
            labels = sample.labels
            key = labels.get("UUID") or labels.get("gpu") or labels.get("device") or "?"
            reading = gpus.setdefault(key, GpuReading(node, key, None, None, labels.get("modelName")))
            if family.name == ENERGY_METRIC:
                reading.energy_mj = float(sample.value)
            else:
                reading.fb_used_mib = float(sample.value)
    return list(gpus.values())


def check_endpoints(urls: tuple[str, ...], fetch: Fetch = http_fetch, timeout_s: float = 10.0) -> None:
    """UserError (one line) for a telemetry URL that cannot be read or exports no GPU energy counter."""
    for url in urls:
        try:
            readings = parse_metrics(fetch(url, timeout_s), url)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to read it is the user's URL to fix
            raise UserError(f"--gpu-telemetry {url}: cannot read it ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]})") from None
        if not any(r.energy_mj is not None for r in readings):
            raise UserError(f"--gpu-telemetry {url}: no {ENERGY_METRIC} in its metrics (is it a DCGM exporter, "
                            "with that counter enabled?)")


class DcgmTelemetry(WindowMeter):
    """``with meter.measure(label): ...`` then ``energy()`` and ``memory()``: the records of that window."""

    def __init__(self, urls: tuple[str, ...], fetch: Fetch = http_fetch, timeout_s: float = 10.0) -> None:
        super().__init__()
        self.urls = tuple(urls)
        self._fetch = fetch
        self._timeout = timeout_s

    def _read(self) -> dict[tuple[str, str], GpuReading]:
        out: dict[tuple[str, str], GpuReading] = {}
        for url in self.urls:
            for r in parse_metrics(self._fetch(url, self._timeout), url):
                out[(url, r.gpu)] = r
        return out

    def _start(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return {"t0": t0, "start": self._read(), "error": None}
        except Exception as exc:  # noqa: BLE001 - the window goes on; its record says why energy is missing
            return {"t0": t0, "start": None, "error": f"telemetry read failed at the window's start: {exc}"}

    def _stop(self, state: dict[str, Any]) -> dict[str, Any]:
        duration = time.perf_counter() - state["t0"]
        if state["error"]:
            return {"duration_s": duration, "error": state["error"], "gpus": []}
        try:
            end = self._read()
        except Exception as exc:  # noqa: BLE001
            return {"duration_s": duration, "error": f"telemetry read failed at the window's end: {exc}", "gpus": []}
        gpus = []
        for key in list(state["start"]) + [k for k in end if k not in state["start"]]:
            first, last = state["start"].get(key), end.get(key)
            gpus.append({
                "node": key[0], "gpu": key[1], "name": (first or last).name,
                "start_mj": first.energy_mj if first else None, "end_mj": last.energy_mj if last else None,
                "fb_used_start_mib": first.fb_used_mib if first else None,
                "fb_used_end_mib": last.fb_used_mib if last else None,
            })
        return {"duration_s": duration, "error": None, "gpus": gpus}

    def energy(self) -> dict[str, Any]:
        """The window's energy record (the shape of EnergyMeter's, plus ``scope``)."""
        res = self.result()
        duration = res["duration_s"]
        if res["error"]:
            return unavailable_energy(res["error"], duration)
        deltas = []
        missing = [g for g in res["gpus"] if (g["start_mj"] is None) != (g["end_mj"] is None)]
        if missing:
            g = missing[0]
            edge = "start" if g["start_mj"] is None else "end"
            return unavailable_energy(f"{ENERGY_METRIC} of {g['node']} GPU {g['gpu']} missing at the window's {edge}: "
                                      "a sum without it would be partial", duration)
        for g in res["gpus"]:
            if g["start_mj"] is None or g["end_mj"] is None:
                continue
            if g["end_mj"] < g["start_mj"]:
                return unavailable_energy(f"{ENERGY_METRIC} went backwards on {g['node']} GPU {g['gpu']} "
                                          "(exporter or driver restarted?)", duration)
            deltas.append(g["end_mj"] - g["start_mj"])
        if not deltas:
            return unavailable_energy(f"no {ENERGY_METRIC} read at both edges of the window", duration)
        if not any(deltas):
            return unavailable_energy(f"{ENERGY_METRIC} did not move over this {duration:.1f} s window (the "
                                      "exporter's collect interval is longer than the window?)", duration)
        if not all(deltas):
            stale = next(g for g in res["gpus"] if g["start_mj"] is not None and g["end_mj"] == g["start_mj"])
            return unavailable_energy(f"{ENERGY_METRIC} of {stale['node']} GPU {stale['gpu']} did not move while "
                                      "others did (a stale exporter?): a sum without it would be partial", duration)
        short = duration < 2 * COLLECT_INTERVAL_S
        return {
            "available": True, "reason": None, "method": METHOD, "joules": sum(deltas) / 1000.0, "unit": "J",
            "duration_s": duration, "warning": INTERVAL_WARNING.format(duration=duration) if short else None,
            "short_window": short, "scope": SCOPE,
            "domains": [{"node": g["node"], "gpu": g["gpu"], "name": g["name"],
                         "joules": (g["end_mj"] - g["start_mj"]) / 1000.0 if g["end_mj"] is not None
                         and g["start_mj"] is not None else None} for g in res["gpus"]],
            "raw": {"nodes": list(self.urls), "gpus": res["gpus"]},
        }

    def memory(self) -> dict[str, Any]:
        """Framebuffer in use on the exporters' GPUs, summed: at the window's end and the larger edge."""
        res = self.result()
        if res["error"]:
            return {"method": METHOD, "server_used_bytes": None, "reason": res["error"], "scope": SCOPE}
        ends = [g["fb_used_end_mib"] for g in res["gpus"] if g["fb_used_end_mib"] is not None]
        highs = [max(x for x in (g["fb_used_start_mib"], g["fb_used_end_mib"]) if x is not None)
                 for g in res["gpus"] if g["fb_used_start_mib"] is not None or g["fb_used_end_mib"] is not None]
        if not ends:
            return {"method": METHOD, "server_used_bytes": None, "scope": SCOPE,
                    "reason": f"no {FB_USED_METRIC} in the exporters' metrics"}
        return {"method": METHOD, "server_used_bytes": int(sum(ends) * MIB),
                "server_used_max_edge_bytes": int(sum(highs) * MIB), "reason": None, "scope": SCOPE,
                "gpus": len(ends)}
