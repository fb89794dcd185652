"""Where a task's records come from.

Three source types, one shape (`TaskSource`): a JSONL file next to the task's YAML file, a JSONL file
shipped inside an installed Python package, and a Hugging Face Hub dataset. Sources are configured from
the task file's ``source:`` mapping by `build_source`; nothing is read until `load` is called.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from llmbench.errors import UserError

SOURCE_TYPES = ("jsonl", "hf", "package")

# Task files are shared: unless this is set, their data must lie inside the task file's folder (or the package).
ALLOW_OUTSIDE_ENV = "LLMBENCH_ALLOW_OUTSIDE_DATA"


def outside_data_allowed() -> bool:
    """True when LLMBENCH_ALLOW_OUTSIDE_DATA is set to 1 (or true / yes)."""
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() in ("1", "true", "yes")


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None


def confinement_problem(file: Path, root: Path, path: str, root_name: str) -> str | None:
    """Why `file` may not be read: it lies outside `root` once both are resolved (``..``, an absolute path,
    a symbolic link pointing out), and outside data is not allowed. None when it may be read."""
    if outside_data_allowed():
        return None
    real, real_root = _resolved(file), _resolved(root)
    if real is None or real_root is None:
        return f"data path {path} cannot be resolved (a symbolic link loop?)"
    if real.is_relative_to(real_root):
        return None
    shown = "" if str(real) == path else f" (it resolves to {real})"
    return f"data path {path} leaves {root_name}{shown}; set {ALLOW_OUTSIDE_ENV}=1 to allow data outside it"


def display_path(path: Path) -> str:
    """Path as a user wants to read it in an error: relative to the working directory when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def one_line(text: object) -> str:
    """Collapse whitespace so an error message stays on one line."""
    return " ".join(str(text).split())


class TaskSource(Protocol):
    """A source of records (dicts) for one task."""

    def describe(self) -> str:
        """Short text for listings, e.g. ``jsonl: data/translation-en-fr.jsonl``."""

    def problem(self) -> str | None:
        """Cheap check without loading: why `load` would surely fail, or None."""

    def size(self) -> int | None:
        """Number of records when countable without loading them, else None."""

    def load(self, task: str, limit: int | None) -> list[dict[str, Any]]:
        """The first `limit` records (all when None), in source order. Raises UserError."""


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Records of a JSONL file (blank lines skipped), stopping after `limit` records.

    Every problem is a UserError naming the file (and line): unreadable, not UTF-8, malformed JSON, a line
    that is not an object.
    """
    records: list[dict[str, Any]] = []
    where = display_path(path)
    try:
        fh = open(path, "rb")  # bytes, decoded line by line, so a decoding error can name its line
    except OSError as exc:
        raise UserError(f"{where}: cannot read: {exc.strerror or exc}") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if limit is not None and len(records) >= limit:
                break
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{where}:{lineno}: not UTF-8 text ({exc.reason})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}:{lineno}: malformed JSON: {exc.msg}") from None
            except RecursionError:
                raise UserError(f"{where}:{lineno}: malformed JSON: nested too deeply") from None
            if not isinstance(record, dict):
                raise UserError(f"{where}:{lineno}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


def count_jsonl(path: Path) -> int:
    """Number of records; every line is parsed, so a bad line is an error here rather than one more record."""
    return len(read_jsonl(path))


def _file_problem(file: Path, shown: str) -> str | None:
    if file.is_dir():
        return f"data path {shown} is a directory, not a JSONL file"
    if not file.is_file():
        return f"data file {shown} not found"
    return None


@dataclass
class JsonlSource:
    """A JSONL file; a relative `path` is resolved against the task file's directory, and the file must lie
    inside that directory unless LLMBENCH_ALLOW_OUTSIDE_DATA=1."""

    path: str
    base_dir: Path = field(default=Path("."), metadata={"internal": True})
    task_file: Path | None = field(default=None, metadata={"internal": True})
    _size: int | None = field(default=None, init=False, repr=False, metadata={"internal": True})

    @property
    def file(self) -> Path:
        return (self.base_dir / self.path).resolve()

    def describe(self) -> str:
        return f"jsonl: {self.path}"

    def problem(self) -> str | None:
        folder = f"the folder of task file {display_path(self.task_file)}" if self.task_file else (
            f"the task folder {display_path(self.base_dir)}")
        confined = confinement_problem(self.base_dir / self.path, self.base_dir, self.path, folder)
        return confined or _file_problem(self.file, display_path(self.file))

    def size(self) -> int | None:
        if self._size is None and self.problem() is None:
            self._size = count_jsonl(self.file)
        return self._size

    def load(self, task: str, limit: int | None) -> list[dict[str, Any]]:
        if (problem := self.problem()) is not None:
            raise UserError(f"task {task}: {problem}")
        return read_jsonl(self.file, limit)


def package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it; None when not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # a dotted name whose parent is missing, or an empty name
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass
class PackageSource:
    """A JSONL file inside an installed Python package (the package itself is never imported)."""

    package: str
    path: str
    _size: int | None = field(default=None, init=False, repr=False, metadata={"internal": True})

    def describe(self) -> str:
        return f"package {self.package}: {self.path}"

    def _file(self) -> Path | None:
        root = package_dir(self.package)
        return None if root is None else root / self.path

    def problem(self) -> str | None:
        root = package_dir(self.package)
        if root is None:
            return f"package {self.package} is not installed: pip install --no-deps {self.package}"
        file = root / self.path
        confined = confinement_problem(file, root, self.path, f"installed package {self.package} ({root})")
        if confined is not None:
            return confined
        problem = _file_problem(file, self.path)
        return None if problem is None else f"{problem} in installed package {self.package} ({file.parent})"

    def size(self) -> int | None:
        if self._size is None and self.problem() is None:
            self._size = count_jsonl(self._file())
        return self._size

    def load(self, task: str, limit: int | None) -> list[dict[str, Any]]:
        if (problem := self.problem()) is not None:
            raise UserError(f"task {task}: {problem}")
        return read_jsonl(self._file(), limit)


@dataclass
class HFSource:
    """A Hugging Face Hub dataset, loaded with `datasets.load_dataset` on first use.

    `streaming: true` reads rows as they arrive, which avoids downloading every split of a large
    dataset (wmt14 ships a 40M-sentence train split) when only the test split is wanted.
    """

    dataset: str
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    streaming: bool = False

    def describe(self) -> str:
        name = self.dataset if self.config is None else f"{self.dataset}/{self.config}"
        return f"hf: {name} [{self.split}]"

    def problem(self) -> str | None:
        local = self.local_problem()
        if local is not None:
            return local
        if sys.modules.get("datasets") is not None:
            return None
        try:
            found = importlib.util.find_spec("datasets")
        except ValueError:  # a None entry in sys.modules: imports of it are blocked
            found = None
        if found is None:
            return "hub tasks need the `datasets` package: pip install datasets"
        return None

    def local_problem(self) -> str | None:
        """`datasets.load_dataset` reads a local folder or file when ``dataset`` names one (relative to the
        working directory, so a shared task file could read anything there): refused unless outside data is
        allowed, as a `jsonl` path leaving its folder is."""
        name = self.dataset
        looks_local = name.startswith(("/", "./", "../", "~", "\\")) or Path(name).expanduser().exists()
        if not looks_local or outside_data_allowed():
            return None
        return (f"hf dataset {name} is a local path, which `datasets` would read from the working directory; "
                f"use a jsonl source inside the task's folder, or set {ALLOW_OUTSIDE_ENV}=1 to allow it")

    def size(self) -> int | None:
        return None  # not countable without contacting the hub

    def load(self, task: str, limit: int | None) -> list[dict[str, Any]]:
        try:
            import datasets
        except ImportError:
            raise UserError(
                f"task {task}: hub tasks need the `datasets` package: pip install datasets"
            ) from None
        _quiet_hub_logs()
        # Slicing the split lets `datasets` prepare only the rows asked for.
        sliced = limit is not None and not self.streaming and "[" not in self.split
        split = f"{self.split}[:{limit}]" if sliced else self.split
        try:
            ds = datasets.load_dataset(
                self.dataset, self.config, split=split, revision=self.revision, streaming=self.streaming
            )
            rows = ds if limit is None else itertools.islice(ds, limit)
            return [dict(row) for row in rows]
        except Exception as exc:  # unreachable hub, unknown or gated dataset, bad split: all user-fixable
            raise UserError(
                f"task {task}: could not load {self.describe()} from the Hugging Face Hub: "
                f"{type(exc).__name__}: {one_line(exc)[:300]}"
            ) from exc


def _quiet_hub_logs() -> None:
    """Errors only from `datasets` and `huggingface_hub`: an unreachable hub makes them log a "Retrying in
    ..." line per attempt before the error, which llmbench reports itself in one line."""
    import logging

    for name in ("datasets", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


_CLASSES: dict[str, type] = {"jsonl": JsonlSource, "hf": HFSource, "package": PackageSource}


class SourceConfigError(ValueError):
    """A bad ``source:`` mapping; `key` names the offending key (None for the mapping itself)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _config_keys(cls: type) -> tuple[list[str], list[str]]:
    required, optional = [], []
    for f in fields(cls):
        if f.metadata.get("internal") or not f.init:
            continue
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        (optional if has_default else required).append(f.name)
    return required, optional


def build_source(config: dict[str, Any], base_dir: Path, task_file: Path | None = None) -> TaskSource:
    """A source from a task file's ``source:`` mapping (`task_file` names it in errors). Raises
    SourceConfigError."""
    kind = config.get("type")
    if kind is None:
        raise SourceConfigError(f"source needs a 'type' (one of: {', '.join(SOURCE_TYPES)})")
    if kind not in _CLASSES:
        raise SourceConfigError(
            f"unknown source type {kind!r} (expected one of: {', '.join(SOURCE_TYPES)})", "type"
        )
    cls = _CLASSES[kind]
    required, optional = _config_keys(cls)
    values = {k: v for k, v in config.items() if k != "type"}
    for key in values:
        if key not in required and key not in optional:
            allowed = ", ".join(required + optional)
            raise SourceConfigError(f"unknown key {key!r} in a {kind} source (allowed: {allowed})", key)
    for key in required:
        if key not in values:
            raise SourceConfigError(f"a {kind} source needs {key!r}")
    for key, value in values.items():
        expected = bool if key == "streaming" else str
        if value is not None and not isinstance(value, expected):
            raise SourceConfigError(f"source {key!r} must be a {expected.__name__}", key)
        if key in required and (value is None or (isinstance(value, str) and not value.strip())):
            raise SourceConfigError(f"source {key!r} must not be empty", key)
    if kind == "jsonl":
        return JsonlSource(base_dir=base_dir, task_file=task_file, **values)
    return cls(**values)
