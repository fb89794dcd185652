"""The figures only served rows (backend openai, one row per load level) have, read from a row for the
comparison: request and output-token throughput over the level's wall time, goodput against ``--slo``, the
request counts and the energy's scope (``device-wide ...``: the whole device, not the model's own)."""

from __future__ import annotations

#: the ModelResult fields only served rows have (absent from an in-process row's dict)
SERVED_FIELDS = ("requests_per_s", "output_tokens_per_s", "goodput_fraction", "goodput_requests_per_s",
                 "requests_sent", "requests_failed", "energy_scope")


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def served_figures(res, row) -> None:
    """The served row's throughput, goodput, request counts and energy scope onto ``res`` (none for in-process
    rows, whose latency has no ``requests``)."""
    latency = row.latency or {}
    requests = latency.get("requests")
    if isinstance(requests, dict):
        sent, failed = requests.get("sent"), requests.get("failed")
        res.requests_sent = sent if isinstance(sent, int) and not isinstance(sent, bool) else None
        res.requests_failed = failed if isinstance(failed, int) and not isinstance(failed, bool) else None
    res.requests_per_s = _number(latency.get("requests_per_s"))
    res.output_tokens_per_s = _number(latency.get("output_tokens_per_s"))
    goodput = latency.get("goodput")
    if isinstance(goodput, dict):
        res.goodput_fraction = _number(goodput.get("fraction"))
        res.goodput_requests_per_s = _number(goodput.get("requests_per_s"))
    scope = (row.energy or {}).get("scope")
    res.energy_scope = str(scope) if scope else None
