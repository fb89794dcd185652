"""One generic registry per plugin kind (backends, exporters, energy sensors): a name maps to a lazy
``"module:attr"`` target, imported on first use, so listing the names never imports torch or matplotlib.
A plugin is one file plus one ``register`` line; tests register their own toys the same way."""

from __future__ import annotations

import difflib
import importlib
from typing import Generic, Iterable, TypeVar

from llmbench.errors import UserError

T = TypeVar("T")


def close_matches(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The choices closest to ``word``, closest first (``[]`` when none is close): the one similarity rule
    behind every "did you mean" of llmbench."""
    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=cutoff)


def did_you_mean(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """``"; did you mean X?"`` (or ``"X or Y"``) for the closest choices, ``""`` when none is close."""
    close = close_matches(word, choices, n=n, cutoff=cutoff)
    if not close:
        return ""
    return f"; did you mean {' or '.join(close)}?"


class Registry(Generic[T]):
    """Names -> plugins. A target is an object or a ``"package.module:attribute"`` string resolved lazily."""

    def __init__(self, kind: str, targets: dict[str, object] | None = None) -> None:
        self.kind = kind
        self._targets: dict[str, object] = dict(targets or {})
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: object) -> None:
        """Add (or replace) ``name``; ``target`` is the plugin or its ``"module:attr"`` path."""
        self._targets[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def names(self) -> list[str]:
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def get(self, name: str) -> T:
        """The plugin named ``name``; an unknown name is a UserError listing the known ones."""
        if name not in self._targets:
            raise UserError(
                f"unknown {self.kind} {name!r} (known: {', '.join(self._targets)}){did_you_mean(name, self._targets)}"
            )
        if name not in self._loaded:
            target = self._targets[name]
            if isinstance(target, str) and ":" in target:
                module, _, attr = target.partition(":")
                target = getattr(importlib.import_module(module), attr)
            self._loaded[name] = target  # type: ignore[assignment]
        return self._loaded[name]
