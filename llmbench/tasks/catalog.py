"""The catalog of known tasks and suites: built-in ones plus those of any ``--tasks-dir`` folders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llmbench
from llmbench.errors import UserError
from llmbench.tasks.sources import display_path
from llmbench.tasks.spec import close_hint, parse_task_file
from llmbench.tasks.suites import Suite, parse_suites_file
from llmbench.tasks.task import Task, TaskSpec

SUITES_FILE_NAMES = ("suites.yaml", "suites.yml")


def builtin_tasks_dir() -> Path:
    """Folder of the tasks shipped with the package."""
    return Path(llmbench.__file__).parent / "builtin_tasks"


def _min_limit(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _merge_limits(a: int | None, b: int | None) -> int | None:
    # A task asked for twice runs once, with every example either request wanted.
    return None if a is None or b is None else max(a, b)


@dataclass
class Catalog:
    """Tasks and suites by name. Names are unique across both: a later definition replaces an earlier."""

    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    suites: dict[str, Suite] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [*self.tasks, *self.suites]

    def _unknown(self, name: str, context: str = "") -> UserError:
        hint = close_hint(name, self.names())
        if not hint:
            hint = f"; known: {', '.join(sorted(self.names()))}"
        return UserError(f"{context}unknown task or suite {name!r}{hint}")

    def _expand(
        self, name: str, limit: int | None, chain: tuple[str, ...]
    ) -> Iterator[tuple[str, int | None]]:
        if name in self.tasks:
            yield name, limit
            return
        suite = self.suites[name]
        if name in chain:
            raise UserError(f"suite {chain[0]} includes itself: {' -> '.join((*chain, name))}")
        for entry in suite.entries:
            if entry.task not in self.tasks and entry.task not in self.suites:
                raise self._unknown(entry.task, f"suite {name} ({display_path(suite.path)}): ")
            yield from self._expand(entry.task, _min_limit(limit, entry.limit), (*chain, name))

    def expand(self, names: Sequence[str], limit: int | None = None) -> dict[str, int | None]:
        """Task name -> example limit, suites expanded, first-seen order, duplicates merged."""
        if isinstance(names, str):
            names = [names]
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise UserError(f"--limit must be a positive integer, got {limit!r}")
        if not names:
            raise UserError("no task given; run `llmbench tasks` to list tasks and suites")
        for name in names:
            if name not in self.tasks and name not in self.suites:
                raise self._unknown(name)
        wanted: dict[str, int | None] = {}
        for name in names:
            for task, task_limit in self._expand(name, limit, ()):
                wanted[task] = _merge_limits(wanted[task], task_limit) if task in wanted else task_limit
        return wanted

    def resolve(self, names: Sequence[str], limit: int | None = None) -> list[Task]:
        """Runnable tasks for names of tasks and suites.

        A suite's per-task limit applies, then the smaller of it and `limit`. A task named more than once
        keeps its first position and the larger limit. Data files and packages are checked here so that a
        missing one fails before any model is loaded; the data itself is read by `Task.examples`.
        """
        tasks = []
        for name, task_limit in self.expand(names, limit).items():
            spec = self.tasks[name]
            problem = spec.problem()
            if problem is not None:
                raise UserError(f"task {name}: {problem}")
            tasks.append(spec.task(task_limit))
        return tasks

    def describe(self) -> list[dict[str, Any]]:
        """Rows for ``llmbench tasks``: tasks first, then suites.

        Task rows: type="task", name, kind, n (None when not countable without loading), source,
        metrics, description, problem (why it cannot run here, or None). Suite rows: type="suite", name,
        tasks (expanded task names), n (total examples, None when a size is unknown), description.
        """
        rows: list[dict[str, Any]] = []
        sizes: dict[str, int | None] = {}
        for spec in self.tasks.values():
            problem = spec.problem()
            try:
                sizes[spec.name] = spec.size()
            except UserError as exc:  # a malformed data file: one task's note, not the end of the listing
                sizes[spec.name], problem = None, str(exc)
            rows.append(
                {
                    "type": "task",
                    "name": spec.name,
                    "kind": spec.kind,
                    "n": sizes[spec.name],
                    "source": spec.source_description,
                    "metrics": list(spec.metrics),
                    "description": spec.description,
                    "problem": problem,
                }
            )
        for suite in self.suites.values():
            expanded = self.expand([suite.name])
            total: int | None = 0
            for name, limit in expanded.items():
                size = sizes[name]
                if size is None or total is None:
                    total = None
                else:
                    total += size if limit is None else min(size, limit)
            rows.append(
                {
                    "type": "suite",
                    "name": suite.name,
                    "tasks": list(expanded),
                    "n": total,
                    "description": suite.description,
                }
            )
        return rows


def _load_dir(directory: Path) -> tuple[dict[str, TaskSpec], dict[str, Suite]]:
    tasks: dict[str, TaskSpec] = {}
    suites: dict[str, Suite] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.name in SUITES_FILE_NAMES:
            for name, suite in parse_suites_file(path).items():
                if name in suites:
                    raise UserError(
                        f"{display_path(path)}: suite {name} is also defined in {suites[name].path.name}"
                    )
                suites[name] = suite
            continue
        spec = parse_task_file(path)
        if spec.name in tasks:
            raise UserError(
                f"{display_path(path)}: task {spec.name} is also defined in {display_path(tasks[spec.name].path)}"
            )
        tasks[spec.name] = spec
    for name in tasks.keys() & suites.keys():
        raise UserError(f"{display_path(directory)}: {name!r} names both a task and a suite")
    return tasks, suites


def load_catalog(extra_dirs: Sequence[Path | str] = ()) -> Catalog:
    """Built-in tasks and suites, then those of each extra folder; a later folder overrides same names.

    In a folder every ``*.yaml`` file is one task, except ``suites.yaml`` which holds suites.
    """
    catalog = Catalog()
    for i, directory in enumerate([builtin_tasks_dir(), *map(Path, extra_dirs)]):
        if not directory.is_dir():
            if i == 0:
                raise RuntimeError(f"built-in tasks folder {directory} is missing: broken installation")
            raise UserError(f"--tasks-dir {directory}: folder not found")
        tasks, suites = _load_dir(directory)
        if i > 0 and not tasks and not suites:  # a wrong folder would otherwise fall back to the built-ins
            raise UserError(f"--tasks-dir {directory}: no task files (*.yaml) in this folder")
        for name in tasks:
            catalog.suites.pop(name, None)
        for name in suites:
            catalog.tasks.pop(name, None)
        catalog.tasks.update(tasks)
        catalog.suites.update(suites)
    return catalog
