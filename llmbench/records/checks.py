"""What makes a run record or a samples.jsonl line unusable: one message naming the file and the row.

`store.read_run` and `store.read_samples` check everything here before any command uses a value, so that
compare, export, plot and gate never trip over a malformed record (a string where a number belongs, a row
without a model name) and never read a bad value as "missing".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from llmbench.errors import UserError
from llmbench.records.completeness import check_completeness
from llmbench.records.schema import SCHEMA_VERSION

_READABLE = "schema_version 1" if SCHEMA_VERSION == 1 else f"schema_version 1 to {SCHEMA_VERSION}"


def check_version(data: dict, path: Path) -> None:
    if "schema_version" not in data or data["schema_version"] is None:
        raise UserError(f"{path} has no schema_version; every llmbench run record has one "
                        f"(this llmbench reads {_READABLE})")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserError(f"{path} has schema_version {version!r}, not an integer (this llmbench reads {_READABLE})")
    if version < 1:
        raise UserError(f"{path} has unknown schema_version {version}; this llmbench reads {_READABLE}")
    if version > SCHEMA_VERSION:
        raise UserError(f"{path} has schema_version {version}, newer than this llmbench reads (up to "
                        f"{SCHEMA_VERSION}); upgrade llmbench")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_or_null(v) -> bool:
    """null (not measured) or a finite number: NaN and Infinity are no measurement a reader can compare."""
    return v is None or (_is_number(v) and math.isfinite(v))


_SUMMARY_FIELDS = ("ttft_s", "tpot_s", "e2e_s", "new_tokens")
_SUMMARY_STATS = ("mean", "p50", "p90", "p99", "ci_low", "ci_high")
_LATENCY_NUMBERS = ("tokens_per_s", "e2e_tokens_per_s", "total_new_tokens", "generate_s")
_ENERGY_NUMBERS = ("joules", "joules_per_sample", "joules_per_token", "duration_s")
_QUALITY_NUMBERS = ("value", "ci_low", "ci_high", "stderr")
_STATUSES = ("ok", "failed")


def check_record(data: dict, path: Path) -> None:
    """UserError naming the file (and the row) for any value later commands could not use."""
    if not isinstance(data["run_id"], str) or not data["run_id"]:
        raise UserError(f"{path}: run_id must be a non-empty string, got {data['run_id']!r}")
    for key in ("created_at", "command"):
        if not (data.get(key) is None or isinstance(data[key], str)):
            raise UserError(f"{path}: {key} must be a string, got {data[key]!r}")
    for key in ("environment", "settings"):
        if not (data.get(key) is None or isinstance(data[key], dict)):
            raise UserError(f"{path}: {key} must be an object, got {_short(data[key])}")
    for name, value in (data.get("environment") or {}).items():  # compared across runs as plain values
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise UserError(f"{path}: environment.{name} must be a string, number or null, got {_short(value)}")
    rows = data["rows"]
    if not isinstance(rows, list):
        raise UserError(f"{path}: rows must be a list of row objects, got {_short(rows)}")
    for i, row in enumerate(rows, 1):
        problem = _row_problem(row)
        if problem:
            raise UserError(f"{path}: {_row_label(row, i)}: {problem}")
    check_completeness(data, path)  # complete, finished_at, missing, sessions, rows' session (all optional)


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _row_label(row, i: int) -> str:
    """'row 2 (smollm2-135m / extraction-qa)', or 'row 2' when the names are unknown."""
    if not isinstance(row, dict):
        return f"row {i}"
    names = [(row.get(k) or {}).get("name") if isinstance(row.get(k), dict) else None for k in ("model", "task")]
    names = [n if isinstance(n, str) and n else "?" for n in names]
    return f"row {i}" if names == ["?", "?"] else f"row {i} ({names[0]} / {names[1]})"


def _row_problem(row) -> str | None:
    """What makes one row unusable, or None."""
    if not isinstance(row, dict):
        return f"a row must be an object, got {_short(row)}"
    for key in ("model", "task"):
        part = row.get(key)
        if part is None:
            return f"has no {key}"
        if not isinstance(part, dict):
            return f"{key} must be an object with a name, got {_short(part)}"
        name = part.get("name")
        if not (name is None or isinstance(name, str)):
            return f"{key}.name must be a string, got {_short(name)}"
        if not name or not name.strip():
            return f"{key} has no name"
    params = row["model"].get("parameters")
    if not _number_or_null(params) or (params is not None and params <= 0):
        return f"model.parameters must be a positive number or null, got {_short(params)}"
    status = row.get("status", "ok")
    if status not in _STATUSES:
        return f"status must be \"ok\" or \"failed\", got {_short(status)}"
    if not (row.get("error") is None or isinstance(row["error"], str)):
        return f"error must be a string or null, got {_short(row['error'])}"
    for key in ("quality", "latency", "memory", "energy"):
        if not (row.get(key) is None or isinstance(row[key], dict)):
            return f"{key} must be an object, got {_short(row[key])}"
    for name, entry in (row.get("quality") or {}).items():
        if not isinstance(entry, dict):
            return f"quality {name!r} must be an object with a value, got {_short(entry)}"
        for key in _QUALITY_NUMBERS:
            v = entry.get(key)
            if not _number_or_null(v):
                return f"quality {name!r} {key} must be a finite number or null (not measured), got {_short(v)}"
        hib = entry.get("higher_is_better")
        if not (hib is None or isinstance(hib, bool)):
            return f"quality {name!r} higher_is_better must be true or false, got {_short(hib)}"
    latency = row.get("latency") or {}
    for field in _SUMMARY_FIELDS:
        summary = latency.get(field)
        if summary is None:
            continue
        if not isinstance(summary, dict):
            return f"latency.{field} must be an object, got {_short(summary)}"
        for stat in _SUMMARY_STATS:
            if not _number_or_null(summary.get(stat)):
                return f"latency.{field}.{stat} must be a finite number or null, got {_short(summary[stat])}"
    checks = [("latency", latency, _LATENCY_NUMBERS), ("energy", row.get("energy") or {}, _ENERGY_NUMBERS),
              ("memory", row.get("memory") or {}, [k for k in (row.get("memory") or {}) if k.endswith("_bytes")])]
    for section, values, keys in checks:
        for key in keys:
            if not _number_or_null(values.get(key)):
                return f"{section}.{key} must be a finite number or null, got {_short(values[key])}"
    available = (row.get("energy") or {}).get("available")
    if not (available is None or isinstance(available, bool)):
        return f"energy.available must be true or false, got {_short(available)}"
    return None


def sample_problem(sample) -> str | None:
    if not isinstance(sample, dict):
        return f"a sample must be a JSON object, got {_short(sample)}"
    for key in ("model", "task"):
        if not isinstance(sample.get(key), str):
            return f"the sample has no {key} name" if sample.get(key) is None else \
                f"{key} must be a string, got {_short(sample[key])}"
    index = sample.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        return f"index must be an integer, got {_short(index)}"
    if not (sample.get("scores") is None or isinstance(sample["scores"], dict)):
        return f"scores must be an object, got {_short(sample['scores'])}"
    for name, score in (sample.get("scores") or {}).items():
        if not _number_or_null(score):
            return f"score {name!r} must be a finite number or null, got {_short(score)}"
    for key in _SUMMARY_FIELDS:
        if not _number_or_null(sample.get(key)):
            return f"{key} must be a finite number or null, got {_short(sample[key])}"
    batch = sample.get("batch")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)):
        return f"batch must be an integer, got {_short(batch)}"
    return None
