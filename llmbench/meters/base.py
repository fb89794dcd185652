"""The shape every meter shares: ``with meter.measure(label): ...`` then ``meter.result()``.

Meters compose with :class:`contextlib.ExitStack`. Each one measures *windows*; ``result()`` returns the
last finished window as a JSON-ready dict and ``history`` keeps ``(label, result)`` for every window.
A sensor that is missing never makes construction raise: the result says ``available: false`` (or a
``*_reason`` key) instead, and numbers that could not be measured are ``None``, never 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Meter(Protocol):
    """What the runner needs from a meter."""

    def measure(self, label: str = "") -> Any:
        """Context manager around one measured window."""

    def result(self) -> dict[str, Any]:
        """JSON-ready result of the last finished window."""


@dataclass(frozen=True)
class Device:
    """A parsed torch-style device string: ``cpu``, ``cuda``, ``cuda:1``."""

    text: str
    kind: str
    index: int | None

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def cuda_index(self) -> int:
        """Index for NVML; bare ``cuda`` is taken as device 0."""
        return self.index or 0


def parse_device(device: str) -> Device:
    """Parse ``cpu`` / ``cuda`` / ``cuda:N`` (other kinds pass through with their index)."""
    text = str(device).strip()
    kind, sep, idx = text.partition(":")
    kind = kind.lower()
    if not kind:
        raise ValueError(f"empty device string {device!r}")
    index: int | None = None
    if sep:
        if not idx.isdigit():
            raise ValueError(f"bad device string {device!r}: expected e.g. 'cuda:0'")
        index = int(idx)
    return Device(text=text, kind=kind, index=index)


class WindowMeter:
    """Base class: runs ``_start()`` / ``_stop(state)`` around each window and keeps the results.

    Subclasses implement ``_start() -> state`` and ``_stop(state) -> dict``. ``_stop`` runs even when the
    measured block raises, so sampling threads are always stopped. A meter is not re-entrant: open one
    window at a time per meter instance (use separate instances to nest).
    """

    def __init__(self) -> None:
        self._last: dict[str, Any] | None = None
        self._open = False
        self.last_label: str | None = None
        self.history: list[tuple[str, dict[str, Any]]] = []

    @contextmanager
    def measure(self, label: str = "") -> Iterator[WindowMeter]:
        """Measure the enclosed block as one window named ``label``."""
        if self._open:
            raise RuntimeError(f"{type(self).__name__}: a window is already open (meters are not re-entrant)")
        self._open = True
        try:
            state = self._start()
        except BaseException:
            self._open = False
            raise
        try:
            yield self
        finally:
            try:
                res = self._stop(state)
            finally:
                self._open = False
            self._last = res
            self.last_label = label
            self.history.append((label, res))

    def result(self) -> dict[str, Any]:
        """Result of the last finished window (a copy)."""
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__}.result() called before any measure() window finished")
        return dict(self._last)

    def _start(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stop(self, state: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class PeriodicThread:
    """Calls ``target()`` every ``period_s`` seconds on a daemon thread until :meth:`stop`.

    The thread sleeps on an Event between calls, so it costs nothing between samples. The first exception
    raised by ``target`` stops sampling and is kept in :attr:`error` for the meter to report.
    """

    def __init__(self, target: Callable[[], None], period_s: float, name: str = "llmbench-meter") -> None:
        if period_s <= 0:
            raise ValueError("period_s must be > 0")
        self._target = target
        self._period = period_s
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None
        self.calls = 0

    def start(self) -> PeriodicThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        next_t = time.perf_counter() + self._period
        while not self._stop_event.wait(max(0.0, next_t - time.perf_counter())):
            try:
                self._target()
            except Exception as exc:  # noqa: BLE001 - kept and reported by the owning meter, not lost in a thread
                self.error = exc
                return
            self.calls += 1
            next_t += self._period
            now = time.perf_counter()
            if next_t < now:  # fell behind (e.g. GIL held for long): skip, do not burst
                next_t = now + self._period
