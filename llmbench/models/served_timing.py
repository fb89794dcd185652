"""Served timings: one streamed request -> a Generation (TTFT, TPOT from the server's token count, e2e,
chunk gaps), and one load level's generations -> the row's latency section (percentiles with CIs,
request and output-token throughput over the level's window, goodput against SLOs).

Definitions (docs/served.md, "Timing"), all from the client's ``perf_counter`` clock:
- TTFT = sent -> the first chunk carrying answer text (content); a reasoning model's first reasoning chunk
  is kept apart as ``ttft_reasoning_s``;
- TPOT = (last token chunk - first token chunk) / (completion_tokens - 1), token chunks being answer or
  reasoning chunks since ``completion_tokens`` (the server's ``usage``, else the given tokenizer) counts
  reasoning tokens too; one chunk may carry several tokens, so chunk gaps are not token gaps; undefined
  (None) when the first and last token chunk are the same chunk;
- ITL = the gaps between successive token chunks, a distribution per chunk, reported apart from TPOT;
- e2e = sent -> the last token chunk; the usage-only chunk after it does not move the end
  (``stream_end_s`` is when the response body ended).
"""

from __future__ import annotations

from typing import Callable, Sequence

from llmbench.meters.timing import latency_summary
from llmbench.models.base import Generation
from llmbench.models.openai_load import LevelRun
from llmbench.models.openai_stream import RequestResult

SERVED_METHOD = "perf_counter per SSE chunk (httpx-sse); token counts from the server's usage"
_ROUND = 7  # decimals kept for per-chunk times in samples.jsonl (0.1 µs)


def to_generation(result: RequestResult, prompt: str, stop: Sequence[str],
                  count_tokens: Callable[[str], int] | None, level_start: float,
                  cut: Callable[[str, Sequence[str]], str]) -> Generation:
    """The Generation of one request, with the facts a samples.jsonl line keeps in ``extra``."""
    sent = result.sent_at
    times = result.token_times
    first = times[0] - sent if times else None  # first token chunk of any kind
    ttft = result.content_times[0] - sent if result.content_times else None
    last = times[-1] - sent if times else None
    end = result.closed_at if result.closed_at is not None else sent
    e2e = last if last is not None else end - sent
    server_n = result.completion_tokens
    client_n = count_tokens(result.reasoning + result.text) if count_tokens is not None and result.ok else None
    if server_n is not None:
        n, source = server_n, "server-usage"
    elif client_n is not None:
        n, source = client_n, "client-tokenizer"
    else:
        n, source = None, None
    extra = {
        "request_id": result.request_id,
        "replica": result.replica,
        "status": "ok" if result.ok else "error",
        "http_status": result.http_status,
        "error": result.error,
        "finish_reason": result.finish_reason,
        "new_tokens": n,  # null when neither the server nor a tokenizer counted them
        "token_source": source,
        "prompt_tokens": result.prompt_tokens,
        "server_completion_tokens": server_n,
        "client_completion_tokens": client_n,
        "token_mismatch": None if server_n is None or client_n is None else server_n != client_n,
        "chunks": len(times),
        "chunk_times_s": [round(t - sent, _ROUND) for t in times],  # token chunks' arrivals after sending
        "first_content_s": ttft,  # = ttft_s
        "ttft_reasoning_s": result.reasoning_times[0] - sent if result.reasoning_times else None,
        "stream_end_s": end - sent,
        "started_s": sent - level_start,  # when it was sent, from the level's start
    }
    if result.scheduled_at is not None:
        extra["queued_s"] = max(0.0, sent - result.scheduled_at)
    if result.reasoning or result.reasoning_tokens is not None:
        extra["reasoning"] = result.reasoning  # recorded, never scored
        extra["reasoning_chunks"] = len(result.reasoning_times)
        extra["reasoning_tokens"] = result.reasoning_tokens
    text = cut(result.text, stop)
    return Generation(prompt, text, n or 0, ttft, e2e, last_token_s=last, extra=extra,
                      error=result.error, first_token_s=first)


def itl_values(gens: Sequence[Generation]) -> tuple[list[float], list[int]]:
    """Every gap between successive token chunks, with the request each belongs to (for a clustered CI)."""
    values, groups = [], []
    for i, g in enumerate(gens):
        times = g.extra.get("chunk_times_s") or []
        for a, b in zip(times, times[1:]):
            values.append(b - a)
            groups.append(i)
    return values, groups


def tpot_assessable(g: Generation) -> bool:
    """Whether a TPOT bound can be judged on this answer: False for an answer of several tokens that came in
    one token-carrying chunk (its TPOT is undefined: no gap between its tokens was seen)."""
    return not (g.tpot_s is None and g.new_tokens >= 2)


def meets_slo(g: Generation, slo: dict) -> bool:
    """Whether one answer met every SLO given (``ttft_s``, ``tpot_s``, ``e2e_s`` upper bounds); an answer a
    tpot bound cannot judge (``tpot_assessable``) is left out of goodput by ``level_latency``."""
    for key, bound in slo.items():
        value = {"ttft_s": g.ttft_s, "tpot_s": g.tpot_s, "e2e_s": g.e2e_s}[key]
        if key == "tpot_s" and value is None and g.new_tokens == 1:
            continue  # a one-token answer has no TPOT to miss
        if value is None or value > bound:
            return False
    return True


def served_roofline(latency: dict) -> dict:
    """A served row's ``latency.roofline``: the entry's shape with no percentage, and why (the client cannot
    see the weights, cache and batch the server reads per step; docs/gpu.md sets a served TPOT against the
    in-process row of the same model)."""
    from llmbench.meters.bandwidth import roofline

    entry = roofline(None, None, None, (latency.get("tpot_s") or {}).get("p50"), None)
    entry["reason"] = "served model: the bytes the server reads per decode step are not visible to the client"
    return entry


def level_latency(gens: Sequence[Generation], run: LevelRun, seed: int, slo: dict | None) -> dict:
    """The row's latency section for one level: summaries of the answered requests, throughput over the
    level's window (first request sent -> last one closed), goodput, and what went wrong."""
    from llmbench.stats import Summary

    ok = [g for g in gens if g.error is None]
    tokens_known = all(g.extra.get("new_tokens") is not None for g in ok)
    latency = latency_summary(ok, 1, seed, SERVED_METHOD)
    latency["setting"] = "latency" if run.level.is_latency else "load"
    duration = run.duration_s
    values, groups = itl_values(ok)
    latency["itl_s"] = Summary.from_values(values, seed, groups).to_dict()
    latency["first_content_s"] = Summary.from_values([g.extra.get("first_content_s") for g in ok], seed).to_dict()
    latency["ttft_reasoning_s"] = Summary.from_values([g.extra.get("ttft_reasoning_s") for g in ok],
                                                      seed).to_dict()
    chunks = sum(g.extra.get("chunks") or 0 for g in ok)
    total_tokens = sum(g.new_tokens for g in ok)
    latency["tokens_per_chunk"] = total_tokens / chunks if chunks and tokens_known else None
    latency["requests"] = {"sent": len(gens), "ok": len(ok), "failed": len(gens) - len(ok)}
    latency["duration_s"] = duration
    # a level with no answered request measured no throughput (null, not 0)
    latency["requests_per_s"] = len(ok) / duration if duration > 0 and ok else None
    latency["output_tokens_per_s"] = total_tokens / duration if duration > 0 and tokens_known and ok else None
    # requests overlap above concurrency 1: the level's wall time, not the sum of e2e times, is its generation
    # time, and end-to-end throughput is output tokens over that wall. tokens_per_s stays the decode rate of a
    # request (decode tokens / decode seconds summed over requests): at concurrency 1 the server's decode rate.
    latency["generate_s"] = duration
    latency["e2e_tokens_per_s"] = latency["output_tokens_per_s"]
    latency["max_in_flight"] = run.max_in_flight
    sources = sorted({g.extra.get("token_source") or "unknown" for g in ok})
    latency["token_source"] = sources[0] if len(sources) == 1 else "mixed: " + ", ".join(sources)
    mismatches = [g for g in ok if g.extra.get("token_mismatch")]
    compared = [g for g in ok if g.extra.get("token_mismatch") is not None]
    latency["token_mismatch"] = {"compared": len(compared), "mismatched": len(mismatches)}
    latency["roofline"] = served_roofline(latency)
    if not tokens_known:
        latency["tokens_unknown"] = ("the server sent no usage and no tokenizer= was given: token counts, TPOT "
                                     "and tokens/s are not measured")
        for key in ("tokens_per_s", "e2e_tokens_per_s", "total_new_tokens"):
            latency[key] = None
        latency["tpot_s"] = Summary.from_values([], seed).to_dict()
        latency["new_tokens"] = Summary.from_values([], seed).to_dict()
    if run.queued_s:
        latency["queued_s"] = Summary.from_values(run.queued_s, seed).to_dict()
    if slo:
        # a tpot bound cannot judge an answer that came in one token-carrying chunk: neither met nor missed
        unjudged = [g for g in ok if "tpot_s" in slo and not tpot_assessable(g)]
        good = [g for g in ok if meets_slo(g, slo) and ("tpot_s" not in slo or tpot_assessable(g))]
        judged = len(gens) - len(unjudged)
        latency["goodput"] = {
            "slo": dict(slo),
            "met": len(good),
            "of": len(gens),  # a failed request missed its SLO
            "not_assessable": len(unjudged),  # left out of the fraction
            "fraction": len(good) / judged if judged else None,
            "requests_per_s": len(good) / duration if duration > 0 else None,
            "reason": None,
        }
        if "tpot_s" in slo and not tokens_known:
            latency["goodput"].update(met=None, fraction=None, requests_per_s=None, not_assessable=None,
                                      reason="a tpot bound needs token counts: the server sent no usage and no "
                                             "tokenizer= was given")
    return latency
