"""A validated task (``TaskSpec``) and its runnable form (``Task``): prompts rendered with Jinja2, the
references of each record, the few-shot turns, and the examples a backend is given."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from llmbench.errors import UserError
from llmbench.metrics.names import JSON_OBJECT_METRICS
from llmbench.tasks import template
from llmbench.tasks.references import MissingField, as_references, lookup
from llmbench.tasks.sources import TaskSource, display_path, one_line

# Sandboxed and bounded (llmbench.tasks.template): task files may come from other people's --tasks-dir folders.
JINJA = template.JINJA


@dataclass(frozen=True)
class Example:
    """One prompt with its references, ready for a backend.

    `prompt` is plain text for base models (few-shot blocks first); `messages` is the same content as
    chat turns for models with a chat template.
    """

    index: int
    record: dict[str, Any]
    prompt: str
    messages: list[dict[str, str]]
    references: list[str]

    @property
    def digest(self) -> str:
        """16 hex digits of SHA-256 over what the model is given and what it is scored against (prompt, chat
        turns, references): two lines with the same ``index`` and different digests ran different examples
        (the task's data, template or few-shot turns changed between them)."""
        text = json.dumps([self.prompt, self.messages, self.references], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class TaskSpec:
    """A validated task file. `task(limit)` makes the runnable `Task`."""

    name: str
    kind: str
    description: str
    source: TaskSource
    prompt_template: str
    references_from: tuple[str, ...]
    metrics: tuple[str, ...]
    max_new_tokens: int
    stop: tuple[str, ...]
    system: str | None
    fewshot: tuple[dict[str, Any], ...]
    path: Path
    _template: jinja2.Template = field(repr=False, compare=False)
    _shots: tuple[tuple[str, str], ...] = field(repr=False, compare=False)

    @property
    def source_description(self) -> str:
        return self.source.describe()

    def size(self) -> int | None:
        """Number of records when countable without loading them (None for hub datasets)."""
        return self.source.size()

    def problem(self) -> str | None:
        """Why loading the data would surely fail (missing file or package), or None."""
        return self.source.problem()

    def task(self, limit: int | None = None) -> Task:
        return Task(self, limit)

    def render(self, record: dict[str, Any], what: str) -> str:
        """The prompt for one record; `what` names the record in errors (``record 3``)."""
        try:
            return template.render(self._template, record).rstrip()
        except template.TemplateBound as exc:
            raise UserError(
                f"task {self.name}: {what}: prompt stopped at a bound: {exc} ({display_path(self.path)})"
            ) from None
        except jinja2.UndefinedError as exc:
            used = jinja2.meta.find_undeclared_variables(JINJA.parse(self.prompt_template))
            missing = sorted(used - set(record))
            if missing:
                have = ", ".join(sorted(record)) or "none"
                raise UserError(
                    f"task {self.name}: {what} has no field {missing[0]!r} used by the prompt "
                    f"(fields: {have})"
                ) from None
            raise UserError(
                f"task {self.name}: {what}: prompt uses a missing field: {one_line(exc)}"
            ) from None
        except jinja2.TemplateError as exc:
            raise UserError(f"task {self.name}: {what}: cannot render the prompt: {one_line(exc)}") from None
        except Exception as exc:  # the template's own expressions failing: {{ q / 0 }}, {{ n + "x" }}, ...
            raise UserError(
                f"task {self.name}: {what}: cannot render the prompt "
                f"({display_path(self.path)}): {type(exc).__name__}: {one_line(exc)}"
            ) from None

    def references(self, record: dict[str, Any], what: str) -> list[str]:
        """Reference strings of one record; an empty result becomes ``[""]`` (SQuAD v2 unanswerable)."""
        refs: list[str] = []
        for dotted in self.references_from:
            try:
                refs.extend(as_references(lookup(record, dotted)))
            except MissingField:
                have = ", ".join(sorted(record)) or "none"
                raise UserError(
                    f"task {self.name}: {what} has no reference field {dotted!r} (fields: {have})"
                ) from None
        return refs or [""]

    def check_references(self, references: list[str], what: str) -> None:
        """Raise UserError (naming the task file) when a metric of this task cannot score `references`."""
        json_metrics = [m for m in self.metrics if m in JSON_OBJECT_METRICS]
        if not json_metrics:
            return
        for ref in references:
            try:
                ok = isinstance(json.loads(ref), dict)
            except (ValueError, RecursionError):
                ok = False
            if not ok:
                shown = ref if len(ref) <= 60 else ref[:57] + "..."
                raise UserError(
                    f"{display_path(self.path)}: task {self.name}: {what}: reference {shown!r} is not a JSON "
                    f"object, which metric {json_metrics[0]} needs (reference field: "
                    f"{', '.join(self.references_from)})"
                )

    def example(self, index: int, record: dict[str, Any]) -> Example:
        what = f"record {index} ({self.source_description})"
        prompt = self.render(record, what)
        references = self.references(record, what)
        self.check_references(references, what)
        messages: list[dict[str, str]] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        for shot_prompt, shot_answer in self._shots:
            messages.append({"role": "user", "content": shot_prompt})
            messages.append({"role": "assistant", "content": shot_answer})
        messages.append({"role": "user", "content": prompt})
        text = "".join(f"{p} {a}\n\n" for p, a in self._shots) + prompt
        return Example(
            index=index,
            record=record,
            prompt=text,
            messages=messages,
            references=references,
        )


class Task:
    """A task with an optional example limit; data is loaded on the first `examples()` call."""

    def __init__(self, spec: TaskSpec, limit: int | None = None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise UserError(f"task {spec.name}: limit must be a positive integer, got {limit!r}")
        self.spec = spec
        self.limit = limit
        self._examples: list[Example] | None = None

    name = property(lambda self: self.spec.name)
    kind = property(lambda self: self.spec.kind)
    description = property(lambda self: self.spec.description)
    metrics = property(lambda self: self.spec.metrics)
    max_new_tokens = property(lambda self: self.spec.max_new_tokens)
    stop = property(lambda self: self.spec.stop)
    system = property(lambda self: self.spec.system)
    source_description = property(lambda self: self.spec.source_description)

    def examples(self) -> list[Example]:
        """The first `limit` records (all when None), in data order, as examples."""
        if self._examples is None:
            records = self.spec.source.load(self.name, self.limit)
            if self.limit is not None:
                records = records[: self.limit]
            if not records:
                raise UserError(f"task {self.name}: {self.source_description} holds no records")
            self._examples = [self.spec.example(i, r) for i, r in enumerate(records)]
        return self._examples

    def __repr__(self) -> str:
        return f"Task({self.name!r}, limit={self.limit!r})"
