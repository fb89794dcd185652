"""Tasks: a data source, a Jinja2 prompt template, reference fields and metric names, defined in YAML.

    from llmbench.tasks import load_catalog
    catalog = load_catalog([Path("my_tasks")])
    for task in catalog.resolve(["smoke"], limit=None):
        for example in task.examples():
            ...  # example.prompt / example.messages -> model; example.references -> metrics

The task file format is documented in docs/tasks.md.
"""

from llmbench.tasks.catalog import Catalog, builtin_tasks_dir, load_catalog
from llmbench.tasks.spec import KINDS, KNOWN_METRICS, parse_task_file
from llmbench.tasks.suites import Suite, SuiteEntry, parse_suites_file
from llmbench.tasks.task import Example, Task, TaskSpec

__all__ = [
    "KINDS",
    "KNOWN_METRICS",
    "Catalog",
    "Example",
    "Suite",
    "SuiteEntry",
    "Task",
    "TaskSpec",
    "builtin_tasks_dir",
    "load_catalog",
    "parse_suites_file",
    "parse_task_file",
]
