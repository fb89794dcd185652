"""Model backends: one protocol (load -> handle; handle.generate -> Generations)."""

from llmbench.models.base import Backend, Generation, LoadedModel

__all__ = ["Backend", "Generation", "LoadedModel"]
