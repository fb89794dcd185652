"""One memory or energy result from several windows of the same row (e.g. one window per batch of
requests): peaks are the largest peak, energy and durations add up, any unavailable window makes the
whole unavailable."""

from __future__ import annotations

from typing import Any


def merge_memory(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """One memory result from several windows: the largest peak of each kind, the last end RSS.

    Every other ``*_bytes`` number takes its largest value; the first window's start RSS and text fields
    are kept; ``windows`` counts the windows when there is more than one. ``[]`` gives ``{}``.
    """
    if not windows:
        return {}
    out = dict(windows[0])
    for w in windows[1:]:
        for key, value in w.items():
            if key == "rss_end_bytes":
                out[key] = value
            elif key.endswith("_bytes") and key != "rss_start_bytes" and isinstance(value, (int, float)):
                prev = out.get(key)
                out[key] = max(prev, value) if isinstance(prev, (int, float)) else value
    if len(windows) > 1:
        out["windows"] = len(windows)
    return out


def merge_energy(windows: list[dict[str, Any]], empty_reason: str = "nothing was measured") -> dict[str, Any]:
    """One energy result from several windows: joules and durations summed; unavailable if any window was.

    An unavailable window's result (its reason) stands for the whole, with the summed duration. Warnings
    are kept once each, ``raw`` becomes the list of the windows' raw values, and one short window makes
    the sum ``short_window`` too. ``[]`` is unavailable with ``empty_reason``.
    """
    if not windows:
        return {"available": False, "reason": empty_reason, "method": None, "joules": None, "duration_s": None}
    if len(windows) == 1:
        return dict(windows[0])
    duration = sum(w.get("duration_s") or 0.0 for w in windows)
    bad = next((w for w in windows if not w.get("available")), None)
    if bad is not None:
        return {**bad, "duration_s": duration, "windows": len(windows)}
    out = dict(windows[0])
    out.update(joules=sum(w["joules"] for w in windows), duration_s=duration, windows=len(windows),
               warning="; ".join(sorted({w["warning"] for w in windows if w.get("warning")})) or None,
               raw=[w.get("raw") for w in windows],
               # one window the sensor could not resolve makes the sum as coarse as that window
               short_window=any(bool(w.get("short_window")) for w in windows))
    return out
