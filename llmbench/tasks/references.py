"""References of a record: the value at a dotted field path, as reference strings."""

from __future__ import annotations

import json
from typing import Any


class MissingField(LookupError):
    """A record has no value at that dotted path."""


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
            raise MissingField(dotted)
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

