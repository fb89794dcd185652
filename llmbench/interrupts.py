"""SIGTERM and SIGHUP handled like Ctrl-C while a run measures: each raises ``Interrupted`` (a
KeyboardInterrupt), so the one path that keeps the finished rows runs for all three. A signal that arrives
while a row is being written waits until the write is done (``Signals.hold``), so a row and its samples are
written whole or not at all. A signal the parent set to be ignored (``nohup``) stays ignored."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; ``exit_code`` is the shell's 128 + the signal's number (130 for Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Signals:
    """What ``handled()`` yields: ``hold()`` around a write delays a signal until the write is done."""

    def __init__(self) -> None:
        self._holding = 0
        self._pending: int | None = None

    def handler(self, signum, frame) -> None:
        if self._holding:
            self._pending = self._pending or signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def hold(self, deliver: bool = True) -> Iterator[None]:
        """Signals wait until the block is done; then the first one is raised (with ``deliver``) or dropped
        (the last write of a run that is stopping anyway)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding and self._pending is not None:
            signum, self._pending = self._pending, None
            if deliver:
                raise Interrupted(signum)


@contextlib.contextmanager
def handled(signals: tuple[int, ...] = HANDLED) -> Iterator[Signals]:
    """Install the handlers for the block and restore the previous ones after it. Outside the main thread
    (where Python cannot set handlers) nothing is installed and ``hold`` only counts."""
    state = Signals()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            old = signal.getsignal(signum)
            if old is signal.SIG_IGN:  # nohup: the user asked for the run to survive a hang-up
                continue
            previous[signum] = old
            signal.signal(signum, state.handler)
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
