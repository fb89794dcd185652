"""Gate rules: ``<metric path>:<allowed change>`` strings, their parsing, defaults and where they are read from.

A rule names a metric of a row and the largest *worsening* the gate tolerates. The direction comes from the
metric (``higher_is_better``), not from the sign: ``quality.bleu:-2%`` and ``quality.bleu:2%`` mean the
same thing (BLEU may drop by at most 2% of the baseline value), and ``quality.ter:+5%`` lets TER (lower is
better) grow by at most 5%. A trailing ``%`` makes the margin relative to the baseline value; without it
the margin is absolute, in the metric's own unit (points of its scale, seconds, bytes, joules).

``quality.<metric>:noninferior:98%`` (or ``quality.*:noninferior:0.98``) asks for proof instead: the check
passes only when the lower bound of the paired CI of candidate / baseline (direction-adjusted) is at least
98%, fails when its upper bound is below, and is undecided otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from llmbench.errors import UserError, read_user_text
from llmbench.registry import did_you_mean
from llmbench.stats.significance import LATENCY_FIELDS

# Must equal [tool.llmbench.gate] rules in the project's pyproject.toml (a test checks it).
DEFAULT_RULES: tuple[str, ...] = (
    "quality.*:-2%",
    "latency.ttft_s.p50:+15%",
    "latency.tpot_s.p50:+15%",
    "memory.peak_rss_bytes:+10%",
    "energy.joules_per_sample:+15%",
)
DEFAULT_SIGNIFICANCE = 0.05

LATENCY_STATS = ("mean", "p50", "p90", "p99")
MEMORY_KEYS = (
    "weights_bytes",
    "load_peak_rss_bytes",
    "peak_rss_bytes",
    "cuda_peak_allocated_bytes",
    "cuda_peak_reserved_bytes",
    "nvml_used_bytes",
)
ENERGY_KEYS = ("joules", "joules_per_sample", "joules_per_token")

_CHANGE = re.compile(r"^\s*([+-]?)\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(%?)\s*$")
_QUALITY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")


NONINFERIOR = "noninferior"
_NONINFERIOR = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+))\s*(%?)\s*$")


@dataclass(frozen=True)
class Rule:
    """One parsed rule: which metric(s), and the largest worsening allowed (or, for ``noninferior``, the
    share of the baseline the candidate must be proven to reach)."""

    text: str  # as written, normalised (no spaces)
    path: str  # e.g. "quality.*", "latency.ttft_s.p50", "memory.peak_rss_bytes"
    amount: float  # magnitude of the allowed worsening (>= 0); for noninferior, the ratio to clear (0.98)
    relative: bool  # True: amount is a fraction of the baseline value
    kind: str = "change"  # "change" (largest worsening) or "noninferior" (proven within a ratio)

    @property
    def noninferior(self) -> bool:
        """True for ``<path>:noninferior:<share>``: the candidate must be proven within a share of the baseline."""
        return self.kind == NONINFERIOR

    @property
    def section(self) -> str:
        """quality | latency | memory | energy."""
        return self.path.split(".", 1)[0]

    @property
    def wildcard(self) -> bool:
        """True for ``quality.*``, which expands to every quality metric of the baseline row."""
        return self.path == "quality.*"

    def describe_limit(self) -> str:
        """The allowed worsening as written for people: '2%' or '0.01'; '98% of the baseline' (noninferior)."""
        if self.noninferior:
            return f"{self.amount * 100:g}% of the baseline"
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


def _check_path(path: str, text: str) -> None:
    parts = path.split(".")
    section = parts[0]
    ok = False
    if section == "quality":
        name = path[len("quality."):] if path.startswith("quality.") else ""
        ok = name == "*" or bool(_QUALITY_NAME.match(name))
    elif section == "latency":
        ok = (len(parts) == 2 and parts[1] == "tokens_per_s") or (
            len(parts) == 3 and parts[1] in LATENCY_FIELDS and parts[2] in LATENCY_STATS
        )
    elif section == "memory":
        ok = len(parts) == 2 and parts[1] in MEMORY_KEYS
    elif section == "energy":
        ok = len(parts) == 2 and parts[1] in ENERGY_KEYS
    if not ok:
        raise UserError(
            f"unknown metric {path!r} in rule {text!r}; expected quality.<metric|*>, "
            f"latency.{{{','.join(LATENCY_FIELDS)}}}.{{{','.join(LATENCY_STATS)}}}, latency.tokens_per_s, "
            f"memory.{{{','.join(MEMORY_KEYS)}}} or energy.{{{','.join(ENERGY_KEYS)}}}"
        )


def parse_rule(text: str) -> Rule:
    """Parse ``<metric path>:<allowed change>``; a UserError (exit code 2) names what is wrong."""
    if not isinstance(text, str):
        raise UserError(f"a rule must be a string like 'quality.*:-2%', got {text!r}")
    raw = text.strip()
    path, sep, change = raw.rpartition(":")
    path = path.strip()
    if not sep or not path:
        raise UserError(f"bad rule {raw!r}: expected <metric path>:<allowed change>, e.g. 'quality.*:-2%'")
    head, _, word = path.rpartition(":")
    if word.strip() == NONINFERIOR and head.strip():
        return _noninferior_rule(raw, head.strip(), change)
    m = _CHANGE.match(change)
    if not m:
        raise UserError(
            f"bad rule {raw!r}: allowed change {change.strip()!r} is not a number or percentage "
            "(e.g. -0.01, -2%, +10%)"
        )
    _check_path(path, raw)
    sign, number, percent = m.groups()
    amount = float(number) / 100 if percent else float(number)
    if not math.isfinite(amount):  # 1e400 parses as inf: a margin that allows anything is a typo
        raise UserError(f"bad rule {raw!r}: allowed change {change.strip()!r} is too large to be a finite number")
    return Rule(text=f"{path}:{sign}{number}{percent}", path=path, amount=amount, relative=bool(percent))


def _noninferior_rule(raw: str, path: str, share: str) -> Rule:
    """``<quality path>:noninferior:<share>``, the share a percentage (98%) or a fraction (0.98) in (0, 1]."""
    _check_path(path, raw)
    if not path.startswith("quality."):
        raise UserError(f"bad rule {raw!r}: noninferior applies to quality metrics (quality.<metric> or "
                        "quality.*), e.g. 'quality.rougeL:noninferior:98%'")
    m = _NONINFERIOR.match(share)
    value = (float(m.group(1)) / (100 if m.group(2) else 1)) if m else None
    if value is None or not 0 < value <= 1:
        raise UserError(f"bad rule {raw!r}: the share the candidate must reach, {share.strip()!r}, must be a "
                        "percentage or fraction in (0, 1], e.g. 98% or 0.98")
    return Rule(text=f"{path}:{NONINFERIOR}:{share.strip()}", path=path, amount=value, relative=True,
                kind=NONINFERIOR)


def parse_rules(texts) -> list[Rule]:
    """Parse several rules, dropping exact duplicates but keeping order."""
    out: list[Rule] = []
    for t in texts:
        r = parse_rule(t)
        if r not in out:
            out.append(r)
    return out


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise UserError(f"reading {path} needs Python 3.11+ or the 'tomli' package") from None
    text = read_user_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None


GATE_KEYS = ("rules", "significance", "undecided")
UNDECIDED_POLICIES = ("fail", "pass")


def _gate_table(data: dict, where: str) -> dict | None:
    """[tool.llmbench.gate] of a pyproject-style TOML document, or None when absent.

    A ``gate`` that is not a table, or a key llmbench does not know in it (a typo such as ``rulez``), is a
    UserError: a setting that is silently ignored would gate with rules nobody chose.
    """
    tool = data.get("tool")
    ours = tool.get("llmbench") if isinstance(tool, dict) else None
    if ours is None:
        return None
    if not isinstance(ours, dict):
        raise UserError(f"{where}: tool.llmbench must be a table ([tool.llmbench]), got {ours!r}")
    table = ours.get("gate")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UserError(f"{where}: [tool.llmbench] gate must be a table ([tool.llmbench.gate]), got {table!r}")
    unknown = [k for k in table if k not in GATE_KEYS]
    if unknown:
        # names matched quoted, so the hint quotes them as the message does: 'rulez' (did you mean 'rules'?)
        hints = [f"{k!r} ({hint[2:]})" if (hint := did_you_mean(repr(k), [repr(g) for g in GATE_KEYS])) else repr(k)
                 for k in unknown]
        raise UserError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)} in "
                        f"[tool.llmbench.gate]; known keys: {', '.join(GATE_KEYS)}")
    return table


def _rules_from_table(table: dict, where: str) -> list[str]:
    rules = table.get("rules")
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise UserError(f"{where}: 'rules' must be a list of strings like \"quality.*:-2%\"")
    return rules


def load_rules_file(path: str | Path) -> list[str]:
    """Rule strings from a file.

    ``*.toml``: a top-level ``rules = [...]`` or a ``[tool.llmbench.gate]`` table (so a pyproject.toml
    works too). Any other file: one rule per line; blank lines and ``#`` comments are ignored.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"rules file {path} does not exist")
    if p.suffix == ".toml":
        data = _load_toml(p)
        table = _gate_table(data, str(p))
        if table is None and "rules" in data:
            table = data
        if table is None:
            raise UserError(f"{p}: no 'rules' list and no [tool.llmbench.gate] table")
        return _rules_from_table(table, str(p))
    lines = read_user_text(p, "rules file").splitlines()
    out = [line.split("#", 1)[0].strip() for line in lines]
    return [line for line in out if line]


def pyproject_settings(directory: str | Path = ".") -> dict | None:
    """``[tool.llmbench.gate]`` of ``directory/pyproject.toml``, or None when either is absent."""
    p = Path(directory) / "pyproject.toml"
    if not p.is_file():
        return None
    return _gate_table(_load_toml(p), str(p))


def resolve_rules(cli_rules=(), rules_file: str | Path | None = None,
                  directory: str | Path = ".") -> tuple[list[Rule], str]:
    """The rules a gate applies and where they came from.

    Rules given with ``--rule`` and ``--rules FILE`` are combined. With neither, ``[tool.llmbench.gate]``
    ``rules`` of ``pyproject.toml`` in ``directory`` apply when present, else :data:`DEFAULT_RULES`.
    """
    texts = list(cli_rules)
    sources = ["--rule"] if texts else []
    if rules_file is not None:
        texts += load_rules_file(rules_file)
        sources.append(str(rules_file))
    if sources:
        if not texts:
            raise UserError(f"no rules in {rules_file}")
        return parse_rules(texts), " + ".join(sources)
    table = pyproject_settings(directory)
    if table is not None and "rules" in table:
        where = "pyproject.toml [tool.llmbench.gate]"
        texts = _rules_from_table(table, where)
        if not texts:  # as for an empty --rules file: gating on nothing would always pass
            raise UserError(f"{where}: 'rules' is empty; list at least one rule, or remove 'rules' to use the "
                            "built-in defaults")
        return parse_rules(texts), where
    return parse_rules(DEFAULT_RULES), "built-in defaults"


def _toml_rules_table(path: str | Path | None) -> dict:
    """The settings table of a TOML rules file (as ``load_rules_file`` reads it); {} for other files."""
    if path is None or Path(path).suffix != ".toml" or not Path(path).is_file():
        return {}
    data = _load_toml(Path(path))
    table = _gate_table(data, str(path))
    return table if table is not None else data


def resolve_significance(cli_value: float | None, directory: str | Path = ".",
                         rules_file: str | Path | None = None) -> float:
    """--significance, else ``significance`` of a TOML ``--rules`` file, else ``[tool.llmbench.gate]
    significance`` of pyproject.toml, else 0.05; must lie in (0, 1)."""
    value = cli_value
    if value is None:
        table = _toml_rules_table(rules_file)
        if "significance" not in table:
            table = pyproject_settings(directory) or {}
        value = table.get("significance", DEFAULT_SIGNIFICANCE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise UserError(f"significance level must be a number between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def resolve_undecided(cli_value: str | None, directory: str | Path = ".",
                      rules_file: str | Path | None = None) -> str:
    """--undecided, else ``undecided`` of a TOML ``--rules`` file, else ``[tool.llmbench.gate] undecided`` of
    pyproject.toml, else "fail": what an undecided check does to the exit code ("fail": exit 3)."""
    value = cli_value
    if value is None:
        table = _toml_rules_table(rules_file)
        if "undecided" not in table:
            table = pyproject_settings(directory) or {}
        value = table.get("undecided", "fail")
    if value not in UNDECIDED_POLICIES:
        raise UserError(f"undecided must be one of {', '.join(UNDECIDED_POLICIES)} (what an undecided check does "
                        f"to the exit code), got {value!r}{did_you_mean(str(value), UNDECIDED_POLICIES)}")
    return value
