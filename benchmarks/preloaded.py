"""A backend whose model is loaded once, for benchmarks that run `runner.run` several times on one model and
must time generation, not loading."""

from __future__ import annotations


class Preloaded:
    """``backend`` (an HFBackend) with ``loaded`` already loaded: load returns it, unload keeps it."""

    def __init__(self, backend, loaded) -> None:
        self._backend, self._loaded = backend, loaded

    def load(self, prepared, device, note):
        return self._loaded

    def unload(self, model) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self._backend, name)
