"""Suites: named lists of tasks (or other suites), each with an optional example limit, from ``suites.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmbench.tasks.spec import NAME_RE
from llmbench.tasks.yamldoc import YamlDoc


@dataclass(frozen=True)
class SuiteEntry:
    task: str  # a task name, or another suite's name
    limit: int | None = None


@dataclass(frozen=True)
class Suite:
    """A named list of tasks (or suites), each with an optional per-task example limit."""

    name: str
    description: str
    entries: tuple[SuiteEntry, ...]
    path: Path

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(e.task for e in self.entries)


def parse_suites_file(path: Path) -> dict[str, Suite]:
    """Parse ``suites.yaml``: ``name: {description: ..., tasks: [name | {task: name, limit: N}, ...]}``."""
    doc = YamlDoc.load(path)
    data = doc.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise doc.error("a suites file must map suite names to {description, tasks}")
    suites: dict[str, Suite] = {}
    for name, body in data.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise doc.error(f"suite name {name!r} must be letters, digits, '.', '_' or '-'", name)
        if not isinstance(body, dict):
            raise doc.error(f"suite {name!r} must be a mapping with 'tasks'", name)
        for key in body:
            if key not in ("description", "tasks"):
                raise doc.error(
                    f"suite {name!r}: unknown key {key!r} (allowed: description, tasks)", name, key
                )
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise doc.error(f"suite {name!r}: 'description' must be a string", name, "description")
        items = body.get("tasks")
        if not isinstance(items, list) or not items:
            raise doc.error(f"suite {name!r}: 'tasks' must be a non-empty list", name, "tasks")
        entries = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                entries.append(SuiteEntry(item))
                continue
            if not isinstance(item, dict) or not isinstance(item.get("task"), str):
                raise doc.error(
                    f"suite {name!r}: each entry is a task name or {{task: NAME, limit: N}}", name, "tasks", i
                )
            extra = set(item) - {"task", "limit"}
            if extra:
                raise doc.error(
                    f"suite {name!r}: unknown key {min(extra)!r} in an entry (allowed: task, limit)",
                    name,
                    "tasks",
                    i,
                )
            limit = item.get("limit")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise doc.error(
                    f"suite {name!r}: 'limit' must be a positive integer", name, "tasks", i, "limit"
                )
            entries.append(SuiteEntry(item["task"], limit))
        suites[name] = Suite(name=name, description=description, entries=tuple(entries), path=path)
    return suites
