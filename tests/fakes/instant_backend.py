"""An instant in-process backend for tests that drive the runner or the CLI without torch: subclass it and
override ``generate`` (and whatever else the test is about)."""

from __future__ import annotations

from typing import ClassVar

from llmbench.models.base import LoadedModel, PreparedModel


class InstantBackend:
    """Finds every model, loads nothing (10 parameters, 40 bytes, float32 on the CPU), renders plain prompts."""

    name: ClassVar[str] = "instant"
    option_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def parse_options(cls, text, options):
        return dict(options)

    def preflight(self, spec):
        return PreparedModel(spec, spec.source)

    def resolve_device(self, requested):
        return "cpu"

    def load(self, prepared, device, note):
        spec = prepared.spec
        return LoadedModel(spec=spec, name=spec.name, parameters=10, weights_bytes=40, dtype="float32",
                           device="cpu", source=str(prepared.source), has_chat_template=False)

    def render(self, loaded, messages, plain):
        return plain

    def generate(self, loaded, prompts, params, sync=None):
        raise NotImplementedError("a test's backend says what it answers")

    def unload(self, loaded):
        pass
