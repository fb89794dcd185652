"""Model backends: one protocol (llmbench.models.base.Backend) and one registry of them.

A new backend is one file with a class implementing the protocol plus one ``BACKENDS`` line below (or
``BACKENDS.register(name, "module:Class")`` from a plugin or a test). Targets are imported lazily, so
parsing ``-m`` or ``llmbench --help`` never imports torch.
"""

from llmbench.models.base import Backend, GenerateParams, Generation, LoadedModel, PreparedModel
from llmbench.registry import Registry

BACKENDS: Registry[type] = Registry("backend", {
    "hf": "llmbench.models.hf:HFBackend",
    "openai": "llmbench.models.openai_http:OpenAIBackend",
    "llamacpp": "llmbench.models.llamacpp:LlamaCppBackend",
})

#: the backends whose models are served over the network: each gives one row per load level (--concurrency /
#: --rate) and takes no batch or length levels. The one rule for "is served" (config checks, the runner, rows).
SERVED_BACKENDS = frozenset({"openai"})


def is_served(backend: str | None) -> bool:
    """True for a backend name of SERVED_BACKENDS (a model behind an OpenAI-compatible server)."""
    return backend in SERVED_BACKENDS


def infer_backend(source: str) -> str:
    """The backend a model id selects when the spec has no ``backend=``: an ``http(s)://`` URL is a served
    model (``openai``), anything else (an embedded alias, a hub id, a directory) is loaded by ``hf``."""
    if source.startswith(("http://", "https://")) and "openai" in BACKENDS:
        return "openai"
    return "hf"


__all__ = ["BACKENDS", "SERVED_BACKENDS", "Backend", "GenerateParams", "Generation", "LoadedModel", "PreparedModel",
           "infer_backend", "is_served"]
