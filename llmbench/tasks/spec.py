"""Task files: ``parse_task_file`` validates one completely, including rendering its few-shot examples, so
a bad file fails when the catalog is loaded, with the file and line in the message. Records are loaded
only by ``Task.examples``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

from llmbench.errors import UserError
from llmbench.metrics.names import METRIC_NAMES
from llmbench.registry import close_matches
from llmbench.tasks.sources import SourceConfigError, build_source, one_line
from llmbench.tasks.task import TaskSpec
from llmbench.tasks.template import compile_template
from llmbench.tasks.yamldoc import YamlDoc

KINDS = ("translation", "summarization", "extraction")

# The metric names a task may ask for: llmbench.metrics owns the list.
KNOWN_METRICS = METRIC_NAMES

DEFAULT_MAX_NEW_TOKENS = 64

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
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


def close_hint(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean: a, b?)`` for up to three close matches, else an empty string."""
    close = close_matches(name, candidates, n=3)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


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
            raise doc.error(f"unknown key {key!r}{close_hint(str(key), _TASK_KEYS)}", key)
    for key in _REQUIRED_KEYS:
        if data.get(key) is None:
            raise doc.error(f"missing required key {key!r}")
        if data[key] in ("", [], {}):
            raise doc.error(_EMPTY.get(key, f"{key!r} must not be empty"), key)

    name = data["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
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
        source = build_source(data["source"], path.parent, path)
    except SourceConfigError as exc:
        raise doc.error(str(exc), "source", *([exc.key] if exc.key else [])) from None

    prompt = data["prompt"]
    if not isinstance(prompt, str):
        raise doc.error("'prompt' must be a string (a Jinja2 template)", "prompt")
    try:
        template = compile_template(prompt)
    except jinja2.TemplateSyntaxError as exc:
        raise doc.error(f"prompt template error on its line {exc.lineno}: {one_line(exc.message)}", "prompt") from None

    references_from = _str_list(doc, "references", data["references"], allow_single=True)
    metrics = _str_list(doc, "metrics", data["metrics"], allow_single=False)
    for i, metric in enumerate(metrics):
        if metric not in KNOWN_METRICS:
            raise doc.error(
                f"unknown metric {metric!r}{close_hint(metric, KNOWN_METRICS)}; "
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
