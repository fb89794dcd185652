"""What makes a run record or a samples.jsonl line unusable: one message naming the file and the row.

`store.read_run` and `store.read_samples` check everything here before any command uses a value, so that
compare, export, plot and gate never trip over a malformed record (a string where a number belongs, a row
without a model name) and never read a bad value as "missing".
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from llmbench.errors import UserError
from llmbench.names import row_name_problem
from llmbench.records.completeness import check_completeness, is_count
from llmbench.records.completeness import short_json as _short
from llmbench.records.schema import SCHEMA_VERSION

#: deepest nesting of objects and lists a record may have (llmbench writes 5 levels at most)
MAX_DEPTH = 64
# an integer literal longer than this is read as a float (inf when over the float range, which every check
# below refuses), never as an int: Python refuses to read one of 4,300 digits or more, and one over the float
# range breaks any arithmetic with floats
_INT_DIGITS = 300


def _int(text: str):
    return int(text) if len(text) <= _INT_DIGITS else float(text)


# a control character written in JSON text: \uXXXX of C0 (but tab and newline), DEL or C1, or the short escapes
# \b \f \r; an escape only after an even run of backslashes (an odd run ends in an escaped backslash)
_CONTROL_ESCAPE = re.compile(r"\\(?:u00(?:0[0-8b-fB-F]|1[0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])|[bfr])")
_RAW_CONTROL = re.compile("[\x7f-\x9f]")  # written as they are by ensure_ascii=False writers


def _defanged(m: re.Match) -> str:
    text, i = m.string, m.start()
    while i > 0 and text[i - 1] == "\\":
        i -= 1
    return m.group(0) if (m.start() - i) % 2 else "\\ufffd"


def defang_controls(text: str) -> str:
    """JSON text with every control character its strings hold (an escape sequence, a carriage return, BEL...)
    replaced by U+FFFD, tab and newline kept: a shared record's text is shown in terminals and CI logs, where
    such characters could rewrite the screen or the title."""
    text = _CONTROL_ESCAPE.sub(_defanged, text)
    return text if text.isascii() else _RAW_CONTROL.sub("\ufffd", text)


def decode_json(text: str):
    """``text`` as JSON, with one-line ValueErrors (not a traceback) for what ``json.loads`` cannot take:
    malformed text, nesting deeper than MAX_DEPTH (or Python's own limit), integers too long to read."""
    try:
        data = json.loads(text, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if isinstance(data, (dict, list)) and _too_deep(data):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return data


def _too_deep(data) -> bool:
    stack = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        for v in obj.values() if type(obj) is dict else obj:
            if type(v) is dict or type(v) is list:
                if depth >= MAX_DEPTH:
                    return True
                stack.append((v, depth + 1))
    return False

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


_FLOAT_MAX = 1.7976931348623157e308


def _number_or_null(v) -> bool:
    """null (not measured) or a finite number: NaN and Infinity are no measurement a reader can compare, nor
    is an integer beyond the float range (1e400 written out) that no float arithmetic can take."""
    t = type(v)
    if t is float:
        return math.isfinite(v)
    if t is int:
        return -_FLOAT_MAX <= v <= _FLOAT_MAX
    return v is None or (_is_number(v) and math.isfinite(v) and abs(v) <= _FLOAT_MAX)


def _int_or_null(v, low: int = 0) -> bool:
    return v is None or is_count(v, low)


def _text_or_null(v) -> bool:
    return v is None or isinstance(v, str)


_SUMMARY_FIELDS = ("ttft_s", "tpot_s", "e2e_s", "new_tokens")
_SUMMARIES = _SUMMARY_FIELDS + ("itl_s", "first_content_s", "ttft_reasoning_s", "queued_s")
_SUMMARY_STATS = ("mean", "p50", "p90", "p99", "ci_low", "ci_high")
_LATENCY_NUMBERS = ("tokens_per_s", "e2e_tokens_per_s", "total_new_tokens", "generate_s", "window_s",
                    "requests_per_s", "output_tokens_per_s", "duration_s", "max_in_flight")
_ENERGY_NUMBERS = ("joules", "joules_per_sample", "joules_per_token", "duration_s", "joules_per_request")
_QUALITY_NUMBERS = ("value", "ci_low", "ci_high", "stderr")
_STATUSES = ("ok", "failed")
# text (or null) that some command shows or compares, per row section
_TEXTS = {"model": ("spec", "dtype", "device", "source", "backend", "base_name", "setting"),
          "task": ("kind", "source"),
          "latency": ("setting", "method", "token_source", "tokens_unknown"),
          "energy": ("reason", "method", "warning", "scope", "unit")}
_OBJECTS = {"model": ("load", "quantization", "server"), "latency": ("requests", "goodput", "roofline")}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_record(data: dict, path: Path) -> None:
    """UserError naming the file (and the row) for any value later commands could not use."""
    if not isinstance(data["run_id"], str) or not data["run_id"]:
        raise UserError(f"{path}: run_id must be a non-empty string, got {_short(data['run_id'])}")
    problem = row_name_problem(data["run_id"])
    if problem:
        raise UserError(f"{path}: run_id {_short(data['run_id'])} {problem}")
    for key in ("created_at", "command"):
        if not (data.get(key) is None or isinstance(data[key], str)):
            raise UserError(f"{path}: {key} must be a string, got {_short(data[key])}")
    for key in ("environment", "settings"):
        if not (data.get(key) is None or isinstance(data[key], dict)):
            raise UserError(f"{path}: {key} must be an object, got {_short(data[key])}")
    for name, value in (data.get("environment") or {}).items():  # compared across runs as plain values
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise UserError(f"{path}: environment.{name} must be a string, number or null, got {_short(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{path}: environment.{name} must be a finite number, got {_short(value)}")
    rows = data["rows"]
    if not isinstance(rows, list):
        raise UserError(f"{path}: rows must be a list of row objects, got {_short(rows)}")
    for i, row in enumerate(rows, 1):
        problem = _row_problem(row)
        if problem:
            raise UserError(f"{path}: {_row_label(row, i)}: {problem}")
    check_completeness(data, path)  # complete, finished_at, missing, sessions, rows' session (all optional)


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
        problem = row_name_problem(name)
        if problem:
            return f"{key}.name {_short(name)} {problem}"
    for section, keys in _TEXTS.items():
        values = row.get(section)
        for key in keys if isinstance(values, dict) else ():
            if not _text_or_null(values.get(key)):
                return f"{section}.{key} must be a string or null, got {_short(values[key])}"
    for section, keys in _OBJECTS.items():
        values = row.get(section)
        for key in keys if isinstance(values, dict) else ():
            if not (values.get(key) is None or isinstance(values[key], dict)):
                return f"{section}.{key} must be an object or null, got {_short(values[key])}"
    if not _int_or_null(row["model"].get("batch_size"), 1):
        return f"model.batch_size must be a positive integer or null, got {_short(row['model']['batch_size'])}"
    for key in ("n", "available"):
        if not _int_or_null(row["task"].get(key)):
            return f"task.{key} must be a count (an integer from 0) or null, got {_short(row['task'][key])}"
    n, available = row["task"].get("n"), row["task"].get("available")
    if n is not None and available is not None and available < n:  # what --limit chose from cannot be fewer
        return f"task.available ({available}) is below task.n ({n}): the task cannot hold fewer examples than ran"
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
        if not name or len(name) > 200 or _CONTROL.search(name):
            return f"quality metric name {_short(name)} must be one line of 1 to 200 characters"
        if not isinstance(entry, dict):
            return f"quality {name!r} must be an object with a value, got {_short(entry)}"
        for key in ("scale", "library"):
            if not _text_or_null(entry.get(key)):
                return f"quality {name!r} {key} must be a string or null, got {_short(entry[key])}"
        if not _int_or_null(entry.get("n")):
            return f"quality {name!r} n must be a count or null, got {_short(entry['n'])}"
        for key in _QUALITY_NUMBERS:
            v = entry.get(key)
            if not _number_or_null(v):
                return f"quality {name!r} {key} must be a finite number or null (not measured), got {_short(v)}"
        hib = entry.get("higher_is_better")
        if not (hib is None or isinstance(hib, bool)):
            return f"quality {name!r} higher_is_better must be true or false, got {_short(hib)}"
    latency = row.get("latency") or {}
    for field in _SUMMARIES:
        summary = latency.get(field)
        if summary is None:
            continue
        if not isinstance(summary, dict):
            return f"latency.{field} must be an object, got {_short(summary)}"
        for stat in _SUMMARY_STATS:
            if not _number_or_null(summary.get(stat)):
                return f"latency.{field}.{stat} must be a finite number or null, got {_short(summary[stat])}"
        if not _int_or_null(summary.get("n")):
            return f"latency.{field}.n must be a count or null, got {_short(summary['n'])}"
    if not _int_or_null(latency.get("batch_size"), 1):
        return f"latency.batch_size must be a positive integer or null, got {_short(latency['batch_size'])}"
    for key in ("sent", "ok", "failed"):
        if not _int_or_null((latency.get("requests") or {}).get(key)):
            return f"latency.requests.{key} must be a count or null, got {_short(latency['requests'][key])}"
    checks = [("latency", latency, _LATENCY_NUMBERS), ("energy", row.get("energy") or {}, _ENERGY_NUMBERS),
              ("memory", row.get("memory") or {}, [k for k in (row.get("memory") or {}) if k.endswith("_bytes")])]
    for section, values, keys in checks:
        for key in keys:
            if not _number_or_null(values.get(key)):
                return f"{section}.{key} must be a finite number or null, got {_short(values[key])}"
    for key in ("available", "short_window"):
        flag = (row.get("energy") or {}).get(key)
        if not (flag is None or isinstance(flag, bool)):
            return f"energy.{key} must be true or false, got {_short(flag)}"
    where = _non_finite(row)
    if where:
        return f"{where} must be a finite number (NaN, Infinity and numbers beyond 1.8e308 are no measurement)"
    return None


def _non_finite(row: dict) -> str | None:
    """The path of the first number in ``row`` that is not finite (every section is read as floats), or None."""
    stack = [(row, "")]
    while stack:
        obj, where = stack.pop()
        for key, v in obj.items() if type(obj) is dict else enumerate(obj):
            t = type(v)
            if t is float:
                if v - v != 0:  # inf - inf and nan - nan are nan
                    return f"{where}{key}"
            elif t is dict or t is list:
                stack.append((v, f"{where}{key}."))
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
    if not 0 <= index < 2**53:
        return f"index must be an example's position (0 or more), got {_short(index)}"
    for key in ("prompt", "prediction", "example"):
        if not _text_or_null(sample.get(key)):
            return f"{key} must be a string or null, got {_short(sample[key])}"
    refs = sample.get("references")
    if not (refs is None or (isinstance(refs, list) and all(isinstance(r, str) for r in refs))):
        return f"references must be a list of strings, got {_short(refs)}"
    if not (sample.get("scores") is None or isinstance(sample["scores"], dict)):
        return f"scores must be an object, got {_short(sample['scores'])}"
    for name, score in (sample.get("scores") or {}).items():
        if not _number_or_null(score):
            return f"score {name!r} must be a finite number or null, got {_short(score)}"
    for key in _SUMMARY_FIELDS:
        if not _number_or_null(sample.get(key)):
            return f"{key} must be a finite number or null, got {_short(sample[key])}"
    if not _int_or_null(sample.get("batch")):
        return f"batch must be an integer from 0, got {_short(sample['batch'])}"
    return None
