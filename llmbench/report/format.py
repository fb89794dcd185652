"""The one set of formatters every command uses: the run table, `compare`, every export and the gate.

One rule per kind of number, so the same model's size, memory and timings read the same everywhere:

- parameters: three significant digits with K/M/B, a trailing ".0" dropped, and a count that rounds to
  1000 of a unit shown in the next one: 134,515,008 -> "135M", 999,885,952 -> "1B" (never "1000M"),
  7,241,732,096 -> "7.2B";
- bytes: binary units, three significant digits, a value that would read 1000 or more moving to the next
  unit: 1.05e9 -> "0.978 GiB", 1.52e9 -> "1.42 GiB";
- durations: milliseconds below one second, seconds above, three significant digits: "33.7 ms", "2.5 s";
- energy: joules, three significant digits: "0.21 J";
- % of roofline (a percentage already, 0-100): whole percent from 10 up, two significant digits below:
  "57%", "9.4%", "0.42%";
- served throughput: requests per second with three significant digits ("3.21", "12.5", "142"), output
  tokens per second with one decimal as every tokens/s ("412.3"), goodput as the share of requests that met
  the SLO and its rate ("85% (10.2/s)").

Missing values print as "n/a" (parameters as "?"), never as 0. Pure functions, no rich, no click.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmbench.stats.noninferiority import Decision

# the outcomes of llmbench.stats.noninferiority, spelled here so formatting needs no numpy import
_ENOUGH, _NOT_ENOUGH, _UNDECIDED = "enough", "not enough", "undecided"

NA = "n/a"
DASH = "—"
MINUS = "−"  # U+2212: a minus sign that reads as one in a sentence, where "-" could be a dash


def _three_digits(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def fmt_params(n: int | float | None) -> str:
    """134515008 -> '135M', 999885952 -> '1B', 7241732096 -> '7.2B'; '?' when unknown."""
    if n is None:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        # 999.5M and up rounds to 1000M: that is 1B
        if n >= div * 0.9995:
            v = n / div
            return f"{v:.1f}{unit}" if v < 9.95 and round(v, 1) != round(v) else f"{v:.0f}{unit}"
    return str(int(n))


def fmt_bytes(n: float | None) -> str:
    """Binary units with three significant digits ('978 MiB', '1.42 GiB'); 'n/a' for None."""
    if n is None:
        return NA
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if abs(n) < 999.5 or unit == "TiB":
            return f"{_three_digits(n)} {unit}"
    return f"{n:.0f} TiB"  # pragma: no cover (the loop returns at TiB)


def fmt_seconds(s: float | None) -> str:
    """Milliseconds below one second, seconds above, three significant digits; 'n/a' for None."""
    if s is None:
        return NA
    return f"{s * 1000:.3g} ms" if abs(s) < 1 else f"{s:.3g} s"


def fmt_joules(j: float | None) -> str:
    """'0.21 J'; 'n/a' for None (energy not measured is never 0 J)."""
    return NA if j is None else f"{j:.3g} J"


def fmt_rate(tokens_per_s: float | None) -> str:
    """Decode throughput in tokens per second, one decimal: '95.1'."""
    return NA if tokens_per_s is None else f"{tokens_per_s:.1f}"


def fmt_requests_rate(requests_per_s: float | None) -> str:
    """Served request throughput in requests per second, three significant digits: '3.21', '142'."""
    return NA if requests_per_s is None else _three_digits(requests_per_s)


def fmt_goodput(fraction: float | None, requests_per_s: float | None = None) -> str:
    """Goodput: the share of requests that met every SLO, with its rate: '85% (10.2/s)'; 'n/a' for None."""
    if fraction is None:
        return NA
    text = f"{fraction * 100:.0f}%"
    return text if requests_per_s is None else f"{text} ({_three_digits(requests_per_s)}/s)"


def fmt_failed_requests(failed: int, sent: int) -> str:
    """'3 of 20 requests failed'."""
    return f"{failed} of {sent} request{'' if sent == 1 else 's'} failed"


def fmt_roofline(percent: float | None, lower_bound: bool = False) -> str:
    """The decode's achieved bandwidth as a percentage of the device's measured peak (``latency.roofline.
    percent_of_peak``, already 0-100): '57%', '9.4%', '0.42%'; '≥9.4%' when it is a lower bound (KV-cache bytes
    unknown: weights only); 'n/a' for None (no figure, never 0%)."""
    if percent is None:
        return NA
    text = f"{percent:.0f}%" if abs(percent) >= 9.95 else f"{percent:.2g}%"
    return f"≥{text}" if lower_bound else text


def roofline_percent(latency: dict | None) -> float | None:
    """``latency.roofline.percent_of_peak`` of a row, or None where the row has none (older records, a
    device without a peak, a decode too short)."""
    roof = (latency or {}).get("roofline")
    value = roof.get("percent_of_peak") if isinstance(roof, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def roofline_is_lower_bound(latency: dict | None) -> bool:
    """Whether the row's % of roofline counts the weights only (its KV-cache bytes unknown): a lower bound."""
    roof = (latency or {}).get("roofline")
    return isinstance(roof, dict) and "lower bound" in str(roof.get("reason") or "")


def fmt_number(v: float | None, digits: int = 3) -> str:
    """Significant-digit formatting ('0.337', '24.9'); 'n/a' for None."""
    return NA if v is None else f"{v:.{digits}g}"


def fmt_quality(value: float | None, scale: str | None = None) -> str:
    """A metric value on its own scale: 3 decimals on 0-1, 1 decimal on 0-100; 'n/a' for None."""
    if value is None:
        return NA
    return f"{value:.1f}" if scale == "0-100" else f"{value:.3f}"


def fmt_signed_quality(value: float, scale: str | None = None) -> str:
    """A gain with its sign, on the metric's scale: '+0.013', '−2.2'."""
    return ("+" if value >= 0 else MINUS) + fmt_quality(abs(value), scale)


def fmt_speed(ratio: float | None) -> str:
    """Reference TPOT / this TPOT -> '3.1× faster' or '1.4× slower'."""
    if ratio is None:
        return NA
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def fmt_ratio(x: float | None) -> str:
    """A cost ratio: '0.69×'."""
    return NA if x is None else f"{x:.2f}×"


def fmt_pct(frac: float | None) -> str:
    """A fraction as a whole percentage: 0.976 -> '98%'; an unbounded CI end as '∞'."""
    if frac is None:
        return NA
    return "∞" if frac == float("inf") else f"{frac * 100:.0f}%"


def fmt_p(p: float | None) -> str:
    """A p-value: '0.032', '<0.001' or 'n/a'."""
    if p is None:
        return NA
    return "<0.001" if p < 0.001 else f"{p:.2g}"


@lru_cache(maxsize=4096)  # a gate of 100,000 rows asks it a million times about a few paths
def field_kind(path: str) -> str:
    """What a record field path holds: 'bytes', 'seconds', 'joules', 'rate', 'percent' or 'number'.

    ``memory.*`` are bytes, ``latency.<field>_s.<stat>`` seconds, ``energy.joules*`` joules,
    ``latency.tokens_per_s`` and every other ``*_per_s`` (served requests and output tokens per second) a
    rate, ``latency.roofline.percent_of_peak`` a percentage; anything else (quality metrics) a plain number.
    """
    section, _, rest = path.partition(".")
    if section == "memory":
        return "bytes"
    if section == "energy" and rest.startswith("joules"):
        return "joules"
    if path == "latency.tokens_per_s" or path.endswith("_per_s"):  # tokens or requests per second, not seconds
        return "rate"
    if path == "latency.roofline.percent_of_peak":
        return "percent"
    if section == "latency" and rest.partition(".")[0].endswith("_s"):
        return "seconds"
    return "number"


_BY_KIND = {"bytes": fmt_bytes, "seconds": fmt_seconds, "joules": fmt_joules, "rate": fmt_rate,
            "percent": fmt_roofline}


def fmt_field(path: str, value: float | None) -> str:
    """A value of the record field ``path`` with its unit ('1.42 GiB', '33.7 ms', '0.21 J'); quality metrics
    and other plain numbers to 4 significant digits."""
    if value is None:
        return NA
    fmt = _BY_KIND.get(field_kind(path))
    return fmt(value) if fmt else f"{value:.4g}"


def fmt_field_change(path: str, delta: float | None) -> str:
    """A signed change of the field ``path``: '+7.4 MiB', '-3.2 ms', '+0.012', '-3.1 points' (a percentage's
    change, in percentage points: '-3.1%' would read as relative)."""
    if delta is None:
        return NA
    kind = field_kind(path)
    if kind == "number":
        return f"{delta:+.4g}"
    if kind == "percent":
        return f"{delta:+.2g} points"
    return ("+" if delta >= 0 else "-") + fmt_field(path, abs(delta))


def decision_details(d: Decision, best: str, label: str, scale: str | None) -> str:
    """'98% of gemma3-270m's ROUGE-L [71%, 131%], against a 95% margin; about 4,150 examples would decide
    (the rows share 10)'."""
    if d.estimate is None:
        return d.reason or "untested"
    if d.measure == "ratio":
        what = f"{fmt_pct(d.estimate)} of {best}'s {label}"
        ci = "" if d.ci_low is None else f" [{fmt_pct(d.ci_low)}, {fmt_pct(d.ci_high)}]"
        bar = f"a {fmt_pct(d.margin)} margin"
    else:
        what = f"{fmt_signed_quality(d.estimate, scale)} {label} against {best}"
        ci = "" if d.ci_low is None else f" [{fmt_signed_quality(d.ci_low, scale)}, " \
                                         f"{fmt_signed_quality(d.ci_high, scale)}]"
        bar = f"a {fmt_signed_quality(d.margin, scale)} margin"
    where = {_ENOUGH: "above", _NOT_ENOUGH: "below"}.get(d.outcome, "against")
    text = f"{what}{ci}, {where} {bar}"
    if d.outcome == _UNDECIDED:
        if d.reason:
            text += f"; {d.reason}"
        if d.examples_needed is not None:
            text += "; " + examples_needed_text(d.examples_needed, f"the rows share {d.n:,}", d.n, d.available,
                                                confidence=d.confidence, paired="unpaired" not in d.method)
        elif not d.reason:
            why = "the estimate sits on the margin" if d.estimate == d.margin else "its spread is unknown"
            text += f"; no number of examples would decide ({why})"
    return text


def examples_needed_text(needed: int, have: str, n: int, available: int | None, what: str = "examples",
                         confidence: float = 0.95, paired: bool = True) -> str:
    """'about 57 examples would decide (the rows share 10; the task holds 420)'; past what the task holds,
    'about 57 examples would decide, more than the 42 the task holds (the rows share 10): all 42 would decide
    in about 67% of runs', and below 20% '...; only a larger test set is likely to' (``power_at``: if the truth
    is as observed)."""
    from llmbench.stats.noninferiority import min_paired_samples, power_at

    if available is not None and needed > available:
        if paired and what == "examples" and available < min_paired_samples(confidence):
            return (f"about {needed:,} {what} would decide, more than the {available:,} the task holds ({have}): "
                    f"a paired test on {available:,} cannot reach the level at all; only a larger test set would")
        chance = power_at(available, needed, confidence)
        text = (f"about {needed:,} {what} would decide, more than the {available:,} the task holds ({have}): "
                f"all {available:,} would decide in about {chance:.0%} of runs")
        return text + ("; only a larger test set is likely to" if chance < 0.2 else "")
    more = f"; the task holds {available:,}" if available is not None and available > n else ""
    return f"about {needed:,} {what} would decide ({have}{more})"


def decision_text(d: Decision | None, best: str, label: str, scale: str | None) -> str:
    """'undecided: 98% of gemma3-270m's ROUGE-L [71%, 131%], against a 95% margin; about 4,150 examples
    would decide (the rows share 10)'; 'untested' without a decision."""
    return "untested" if d is None else f"{d.outcome}: {decision_details(d, best, label, scale)}"


_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": " ",
                             "\n": " "})


def md_cell(text: str) -> str:
    """Record text safe in Markdown: one line, pipes and backslashes escaped, and ``&``, ``<``, ``>`` as
    entities, so that a name or a prediction cannot become raw HTML (or an entity) where the Markdown is
    rendered."""
    return str(text).translate(_MD_ESCAPES)


_MD_CODE_UNSAFE = re.compile(r"[`|&<>\\\r\n]")


def md_code(text: str) -> str:
    """``text`` as inline code (a run id, a rule) when nothing in it can close the code span or split a table
    cell; else as escaped plain text (``md_cell``)."""
    text = str(text)
    return md_cell(text) if not text or _MD_CODE_UNSAFE.search(text) else f"`{text}`"
