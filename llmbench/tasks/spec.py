"""Task and suite definitions, parsed from YAML.

A task is data: a source of records, a Jinja2 prompt template rendered with each record's fields, the
record fields that hold the references, and the metric names to score with. `parse_task_file` validates a
task file completely (including rendering its few-shot examples) so that a bad file fails when the
catalog is loaded, with the file and line in the message. Records are loaded only by `Task.examples`.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from jinja2.sandbox import SandboxedEnvironment

from llmbench.errors import UserError
from llmbench.tasks.sources import SourceConfigError, TaskSource, build_source, display_path, one_line

KINDS = ("translation", "summarization", "extraction")

# The metric names a task may ask for; the metrics package implements them.
KNOWN_METRICS = (
    "bleu",
    "chrf",
    "ter",
    "rouge1",
    "rouge2",
    "rougeL",
    "exact_match",
    "f1",
    "json_precision",
    "json_recall",
    "json_f1",
    "json_parse_failure_rate",
)

# Metrics that read every reference as a JSON object (llmbench.metrics.jsonfields): checked when a task's
# examples are built, so a plain-string reference fails before a model is loaded, not after generating.
JSON_OBJECT_METRICS = tuple(m for m in KNOWN_METRICS if m.startswith("json_"))

DEFAULT_MAX_NEW_TOKENS = 64

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TASK_KEYS = (
    "name",
    "kind",
    "description",
    "source",
    "system",
    "prompt",
    "references",
    "metrics",
    "generation",
    "fewshot",
)
_REQUIRED_KEYS = ("name", "kind", "source", "prompt", "references", "metrics")
_GENERATION_KEYS = ("max_new_tokens", "stop")
_EMPTY = {
    "metrics": "'metrics' must list at least one metric",
    "references": "'references' must name at least one field",
    "source": "'source' must be a mapping with a 'type'",
}

# Sandboxed: task files may come from other people's --tasks-dir folders.
_JINJA = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean: a, b?)`` for close matches, else an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


# ---------------------------------------------------------------------------------------------------------
# YAML with line numbers


class YamlDoc:
    """A parsed YAML file plus the line of every key and item, for `file:line: problem` errors."""

    def __init__(self, path: Path, data: Any, lines: dict[tuple, int]):
        self.path = path
        self.data = data
        self._lines = lines

    @classmethod
    def load(cls, path: Path) -> YamlDoc:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{display_path(path)}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"{display_path(path)}: not UTF-8 text: {exc.reason}") from None
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            lines: dict[tuple, int] = {}
            if node is not None:
                _index_lines(path, node, (), lines, set(), set())
            data = loader.construct_document(node) if node is not None else None
        except RecursionError:  # PyYAML composes nested collections recursively: `[[[[...` thousands deep
            raise UserError(f"{display_path(path)}: malformed YAML: nested too deeply") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{display_path(path)}:{mark.line + 1}" if mark else display_path(path)
            problem = exc.problem or exc.context or "cannot parse"
            raise UserError(f"{where}: malformed YAML: {one_line(problem)}") from None
        except yaml.YAMLError as exc:
            raise UserError(f"{display_path(path)}: malformed YAML: {one_line(exc)}") from None
        finally:
            loader.dispose()
        return cls(path, data, lines)

    def where(self, *key_path: Any) -> str:
        """``file:line`` of the deepest known prefix of `key_path`."""
        for end in range(len(key_path), -1, -1):
            line = self._lines.get(tuple(key_path[:end]))
            if line is not None:
                return f"{display_path(self.path)}:{line}"
        return display_path(self.path)

    def error(self, message: str, *key_path: Any) -> UserError:
        return UserError(f"{self.where(*key_path)}: {message}")


def _index_lines(path: Path, node: yaml.Node, key_path: tuple, out: dict[tuple, int], open_nodes: set[int],
                 done: set[int]) -> None:
    """Record the line of every key and item. An alias reuses its anchor's node: a node inside itself
    (``a: &x [*x]``) is an error, and a node already indexed is not walked again (no blow-up from aliases)."""
    out[key_path] = node.start_mark.line + 1
    if id(node) in open_nodes:
        raise UserError(
            f"{display_path(path)}:{node.start_mark.line + 1}: malformed YAML: an anchor refers to itself "
            "(a self-referencing alias)"
        )
    if id(node) in done:
        return
    open_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise UserError(
                    f"{display_path(path)}:{key_node.start_mark.line + 1}: malformed YAML: duplicate key {key!r}"
                )
            seen.add(key)
            _index_lines(path, value_node, key_path + (key,), out, open_nodes, done)
            out[key_path + (key,)] = key_node.start_mark.line + 1  # errors about a key point at the key
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(path, item, key_path + (i,), out, open_nodes, done)
    open_nodes.discard(id(node))
    done.add(id(node))


# ---------------------------------------------------------------------------------------------------------
# References


class _MissingField(LookupError):
    pass


def lookup(record: dict[str, Any], dotted: str) -> Any:
    """Value at a dotted path (``translation.fr``, ``answers.text``); a key containing dots wins."""
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise _MissingField(dotted)
    return value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def as_references(value: Any) -> list[str]:
    """Reference strings for one field value.

    A string is one reference; a list of scalars is several; a dict, or a list holding dicts or lists,
    is one JSON reference (``json.dumps(sort_keys=True, ensure_ascii=False)``); null gives none.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [_json(value)]
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, (dict, list, tuple)) for v in value):
            return [_json(list(value))]
        return [v if isinstance(v, str) else _json(v) for v in value if v is not None]
    return [_json(value)]  # numbers and booleans, spelled as JSON spells them


# ---------------------------------------------------------------------------------------------------------
# Tasks


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
            return self._template.render(record).rstrip()
        except jinja2.UndefinedError as exc:
            used = jinja2.meta.find_undeclared_variables(_JINJA.parse(self.prompt_template))
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
            except _MissingField:
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


def _str_list(doc: YamlDoc, key: str, value: Any, *, allow_single: bool) -> tuple[str, ...]:
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise doc.error(f"{key!r} must be a non-empty list of strings", key)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise doc.error(f"{key!r} items must be non-empty strings", key, i)
    return tuple(value)


def parse_task_file(path: Path) -> TaskSpec:
    """Parse and validate one task file. Raises UserError naming the file (and line) on any problem."""
    doc = YamlDoc.load(path)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("a task file must be a YAML mapping (name, kind, source, prompt, ...)")
    for key in data:
        if key not in _TASK_KEYS:
            raise doc.error(f"unknown key {key!r}{did_you_mean(str(key), _TASK_KEYS)}", key)
    for key in _REQUIRED_KEYS:
        if data.get(key) is None:
            raise doc.error(f"missing required key {key!r}")
        if data[key] in ("", [], {}):
            raise doc.error(_EMPTY.get(key, f"{key!r} must not be empty"), key)

    name = data["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise doc.error("'name' must be letters, digits, '.', '_' or '-'", "name")
    kind = data["kind"]
    if kind not in KINDS:
        raise doc.error(f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})", "kind")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise doc.error("'description' must be a string", "description")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise doc.error("'system' must be a string", "system")

    if not isinstance(data["source"], dict):
        raise doc.error("'source' must be a mapping with a 'type'", "source")
    try:
        source = build_source(data["source"], path.parent)
    except SourceConfigError as exc:
        raise doc.error(str(exc), "source", *([exc.key] if exc.key else [])) from None

    prompt = data["prompt"]
    if not isinstance(prompt, str):
        raise doc.error("'prompt' must be a string (a Jinja2 template)", "prompt")
    try:
        template = _JINJA.from_string(prompt)
    except jinja2.TemplateSyntaxError as exc:
        raise doc.error(f"prompt template error on its line {exc.lineno}: {one_line(exc.message)}", "prompt") from None

    references_from = _str_list(doc, "references", data["references"], allow_single=True)
    metrics = _str_list(doc, "metrics", data["metrics"], allow_single=False)
    for i, metric in enumerate(metrics):
        if metric not in KNOWN_METRICS:
            raise doc.error(
                f"unknown metric {metric!r}{did_you_mean(metric, KNOWN_METRICS)}; "
                f"known: {', '.join(KNOWN_METRICS)}",
                "metrics",
                i,
            )
        if metric in metrics[:i]:
            raise doc.error(f"metric {metric!r} is listed twice", "metrics", i)

    generation = data.get("generation") or {}
    if not isinstance(generation, dict):
        raise doc.error("'generation' must be a mapping (max_new_tokens, stop)", "generation")
    for key in generation:
        if key not in _GENERATION_KEYS:
            raise doc.error(
                f"unknown generation key {key!r} (allowed: {', '.join(_GENERATION_KEYS)})", "generation", key
            )
    max_new_tokens = generation.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise doc.error("'max_new_tokens' must be a positive integer", "generation", "max_new_tokens")
    stop = generation.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop):
        raise doc.error("'stop' must be a string or a list of non-empty strings", "generation", "stop")

    fewshot = data.get("fewshot") or []
    if not isinstance(fewshot, list) or not all(isinstance(ex, dict) for ex in fewshot):
        raise doc.error("'fewshot' must be a list of mappings shaped like the data records", "fewshot")

    spec = TaskSpec(
        name=name,
        kind=kind,
        description=description,
        source=source,
        prompt_template=prompt,
        references_from=references_from,
        metrics=metrics,
        max_new_tokens=max_new_tokens,
        stop=tuple(stop),
        system=system,
        fewshot=tuple(fewshot),
        path=path,
        _template=template,
        _shots=(),
    )
    shots = []
    for i, shot in enumerate(fewshot):
        try:
            what = f"few-shot example {i + 1}"
            shots.append((spec.render(shot, what), spec.references(shot, what)[0]))
        except UserError as exc:
            raise doc.error(str(exc), "fewshot", i) from None
    object.__setattr__(spec, "_shots", tuple(shots))
    return spec


# ---------------------------------------------------------------------------------------------------------
# Suites


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
        if not isinstance(name, str) or not _NAME_RE.match(name):
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
