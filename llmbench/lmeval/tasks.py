"""lm-eval task names -> a TaskManager, checked before any model is loaded (indexing lm-eval's ~15k built-in
task files takes seconds: done once per process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from llmbench.errors import UserError
from llmbench.lmeval import require_lm_eval
from llmbench.lmeval.silence import quiet_lm_eval
from llmbench.registry import did_you_mean

_MANAGERS: dict[tuple[str | None, bool], Any] = {}


def _manager(include: Path | None, defaults: bool):
    key = (str(include) if include else None, defaults)
    if key not in _MANAGERS:
        from lm_eval.tasks import TaskManager

        with quiet_lm_eval():
            _MANAGERS[key] = TaskManager(include_path=str(include) if include else None,
                                         include_defaults=defaults)
    return _MANAGERS[key]


def task_manager(names: Sequence[str], include: Path | str | None = None):
    """A TaskManager that knows every name in ``names``; unknown names are a UserError.

    When every name is defined under ``include``, lm-eval's built-in task folder is not indexed at all
    (it holds thousands of YAML files and takes seconds to index); otherwise both are, the include folder
    taking precedence. Managers are cached for the process.
    """
    require_lm_eval()
    if include is not None:
        include = Path(include)
        if not include.is_dir():
            raise UserError(f"--lm-eval-include {include}: folder not found")
        manager = _manager(include, defaults=False)
        if all(_known(manager, n) for n in names):
            return manager
    manager = _manager(include, defaults=True)
    for name in names:
        if not _known(manager, name):
            hint = did_you_mean(name, manager.all_tasks, n=3)
            where = f" or under {include}" if include else " (add --lm-eval-include DIR for your own tasks)"
            raise UserError(f"unknown lm-eval task {name!r}: not an lm-eval task, group or tag{where}{hint}")
    return manager


def _known(manager, name: str) -> bool:
    return name in manager.task_index or (name.endswith((".yaml", ".yml")) and Path(name).is_file())


def preflight(config) -> None:
    """Check lm-eval is installed and every ``--lm-eval`` task exists, before any model is loaded."""
    if config.lm_eval_tasks:
        task_manager(config.lm_eval_tasks, config.lm_eval_include)


