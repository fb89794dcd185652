"""Streaming edge cases of the served backend against a local stub server (tests/openai_stub.py):
TPOT and tokens/s follow the server's token counts, not the chunks; the usage-only chunk does not move the
end; keep-alive comments, split JSON, reasoning, HTTP errors and dropped connections."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("httpx")
pytest.importorskip("httpx_sse")

from openai_stub import Stream, StubServer  # noqa: E402

from llmbench.config import LoadLevel  # noqa: E402
from llmbench.models.openai_stream import RequestResult, build_payload, endpoint, handle_event  # noqa: E402


def _one(stub: StubServer, api: str = "chat", max_tokens: int = 64, timeout: float | None = 30.0):
    """One request through the load runner, on the backend's stamping transport; its RequestResult and
    Generation."""
    import httpx

    from llmbench.models.hf import cut_at_stop
    from llmbench.models.openai_load import run_level
    from llmbench.models.openai_stream import stamping_transport
    from llmbench.models.served_timing import to_generation

    content = [{"role": "user", "content": "hi"}] if api == "chat" else "hi"
    body = build_payload(api, "stub-model", content, max_tokens, (), 0)

    async def go():
        async with httpx.AsyncClient(timeout=30, transport=stamping_transport()) as client:
            return await run_level(client, [(stub.url, endpoint(stub.url, api), body)], LoadLevel(1), 0, timeout)

    run = asyncio.run(go())
    result = run.results[0]
    return result, to_generation(result, "hi", (), None, run.started_at, cut_at_stop)


def test_tpot_follows_the_servers_token_count_when_chunks_carry_several_tokens():
    # 4 chunks of 3 tokens each, 50 ms apart: 12 tokens; chunk-counting would say 4 tokens and 3x the TPOT
    with StubServer(answer=lambda body: Stream(pieces=["aaa", "bbb", "ccc", "ddd"], tokens=[3, 3, 3, 3],
                                               gap_s=0.05)) as stub:
        result, g = _one(stub)
    assert result.ok and g.new_tokens == 12 and g.extra["token_source"] == "server-usage"
    assert g.extra["chunks"] == 4
    span = g.last_token_s - g.ttft_s
    assert g.tpot_s == pytest.approx(span / 11)
    assert 0.14 < span < 0.5  # three 50 ms gaps
    assert g.text == "aaabbbcccddd"


def test_the_usage_only_last_chunk_does_not_move_the_end_time():
    raw = [b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"ab"}}]}\n\n',
           b'data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n', 0.3,
           b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n',
           b"data: [DONE]\n\n"]
    with StubServer(answer=lambda body: Stream(raw=raw)) as stub:
        result, g = _one(stub)
    assert result.ok and result.usage["completion_tokens"] == 2 and g.new_tokens == 2
    assert g.extra["stream_end_s"] - g.e2e_s >= 0.25  # e2e ends at the last token, the stream 0.3 s later
    assert g.e2e_s == g.last_token_s == g.ttft_s  # one content chunk: first and last token arrive together
    assert g.tpot_s is None  # undefined, not 0: no gap between its two tokens was seen


def test_keep_alive_comments_and_json_split_across_reads():
    with StubServer(answer=lambda body: Stream(pieces=["he", "llo"], comments=True, split_json=True)) as stub:
        result, g = _one(stub, api="completions")
    assert result.ok, result.error
    assert g.text == "hello" and g.new_tokens == 2 and g.extra["chunks"] == 2
    assert g.extra["request_id"] == "req-1"  # the x-request-id header wins over the chunk id


def test_reasoning_is_timed_and_kept_apart_from_the_answer():
    with StubServer(answer=lambda body: Stream(reasoning=["think", "ing"], pieces=["42"], gap_s=0.02)) as stub:
        result, g = _one(stub)
    assert g.text == "42" and g.extra["reasoning"] == "thinking" and g.extra["reasoning_chunks"] == 2
    assert g.new_tokens == 3  # usage counts the reasoning tokens too
    assert g.ttft_s == g.extra["first_content_s"] > g.extra["ttft_reasoning_s"] > 0  # TTFT: first answer text
    span = g.last_token_s - g.extra["ttft_reasoning_s"]  # TPOT spans reasoning too: usage counts it
    assert g.tpot_s == pytest.approx(span / 2)


def test_http_errors_are_recorded_with_their_status():
    with StubServer(answer=lambda body: Stream(status=503, error_body={"error": {"message": "overloaded"}})) as stub:
        result, g = _one(stub)
    assert not result.ok and result.http_status == 503 and result.error == "HTTP 503: overloaded"
    assert g.error == result.error and g.extra["status"] == "error" and g.extra["http_status"] == 503


def test_an_error_inside_the_stream_fails_the_request_and_keeps_what_came():
    with StubServer(answer=lambda body: Stream(pieces=["a", "b", "c"], error_after=2)) as stub:
        result, g = _one(stub)
    assert result.error == "server error in stream: engine died"
    assert result.text == "ab" and g.error is not None


def test_a_connection_dropped_mid_stream_is_a_failed_request_not_a_crash():
    with StubServer(answer=lambda body: Stream(pieces=["a", "b", "c"], drop_after=1)) as stub:
        result, g = _one(stub)
    assert not result.ok and "RemoteProtocolError" in result.error
    assert result.text == "a"


def test_a_request_over_its_timeout_is_recorded_as_timed_out():
    with StubServer(answer=lambda body: Stream(pieces=["a"], first_s=1.0)) as stub:
        result, _ = _one(stub, timeout=0.2)
    assert result.error == "timed out after 0.2 s (--request-timeout)"


def test_no_usage_and_no_tokenizer_leaves_tokens_unknown_never_counted_from_chunks():
    with StubServer(answer=lambda body: Stream(pieces=["a", "b"], usage=False)) as stub:
        result, g = _one(stub)
    assert result.ok and g.extra["new_tokens"] is None and g.extra["token_source"] is None and g.tpot_s is None


def test_a_client_side_count_is_kept_beside_the_servers_with_a_mismatch_flag():
    from llmbench.models.hf import cut_at_stop
    from llmbench.models.served_timing import to_generation

    r = RequestResult(index=0, replica="u", sent_at=1.0, content_times=[1.1, 1.2], text="ab",
                      usage={"completion_tokens": 3}, closed_at=1.3)
    g = to_generation(r, "p", (), len, 0.0, cut_at_stop)  # a "tokenizer" that counts characters
    assert (g.new_tokens, g.extra["client_completion_tokens"], g.extra["token_mismatch"]) == (3, 2, True)
    r.usage = None
    g = to_generation(r, "p", (), len, 0.0, cut_at_stop)
    assert g.new_tokens == 2 and g.extra["token_source"] == "client-tokenizer" and g.extra["token_mismatch"] is None


def test_handle_event_ignores_role_and_finish_chunks_for_timing():
    r = RequestResult(index=0, replica="u")
    assert handle_event(r, '{"id":"a","choices":[{"delta":{"role":"assistant"}}]}', 1.0)
    assert handle_event(r, '{"id":"a","choices":[{"delta":{"content":""}}]}', 1.5)
    assert handle_event(r, '{"id":"a","choices":[{"delta":{"content":"x"}}]}', 2.0)
    assert handle_event(r, '{"id":"a","choices":[{"delta":{"reasoning":"y"}}]}', 2.5)  # vLLM's newer name
    assert handle_event(r, '{"id":"a","choices":[{"delta":{},"finish_reason":"stop"}]}', 3.0)
    assert not handle_event(r, "[DONE]", 4.0)
    assert r.content_times == [2.0] and r.reasoning_times == [2.5] and r.finish_reason == "stop"
    assert r.request_id == "a" and r.reasoning == "y"
    assert not handle_event(r, "{not json", 5.0) and r.error.startswith("unreadable stream chunk")


def test_payload_is_greedy_with_the_tasks_stops_and_cap():
    body = build_payload("chat", "m", [{"role": "user", "content": "q"}], 32, ("\n", "###"), 7)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["seed"], body["max_tokens"], body["stop"]) == (0, 7, 32, ["\n", "###"])
    assert "messages" in body and "prompt" not in body
    assert "stop" not in build_payload("completions", "m", "q", 8, (), 0)


def test_events_are_stamped_at_the_read_that_brought_them_not_after_the_clients_own_work(monkeypatch):
    """Two events in one network read: the second is stamped with that read's time even though handling
    the first took 50 ms (JSON, bookkeeping, a slow machine must not make later chunks late)."""
    import time

    from llmbench.models import openai_stream

    both = (b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
            b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"b"}}]}\n\n')
    raw = [both, b'data: {"id":"x","choices":[],"usage":{"completion_tokens":2}}\n\n', b"data: [DONE]\n\n"]
    handle = openai_stream.handle_event

    def slow(result, data, now):
        if not result.content_times:
            time.sleep(0.05)
        return handle(result, data, now)

    monkeypatch.setattr(openai_stream, "handle_event", slow)
    with StubServer(answer=lambda body: Stream(raw=raw)) as stub:
        result, g = _one(stub)
    assert result.ok and len(result.content_times) == 2
    assert result.content_times[0] == result.content_times[1]  # one read, one time
    assert g.tpot_s is None  # two events from one read: one chunk time, TPOT undefined


def _gen(ttft, last, n, first=None, error=None):
    from llmbench.models.base import Generation

    return Generation("p", "t", n, ttft, last, last_token_s=last, error=error,
                      first_token_s=ttft if first is None else first)


def _level(gens, duration=1.0):
    from llmbench.models.openai_load import LevelRun

    return LevelRun([], 0.0, duration, 1, LoadLevel(1))


def test_a_single_chunk_answer_has_no_tpot_and_adds_nothing_to_decode_throughput():
    from llmbench.models.served_timing import level_latency

    single = _gen(0.1, 0.1, 8)  # 8 tokens in one chunk
    normal = _gen(0.1, 0.5, 5)  # 4 tokens after the first in 0.4 s
    for g in (single, normal):
        g.extra.update(new_tokens=g.new_tokens, chunks=2)
    assert single.tpot_s is None
    latency = level_latency([single, normal], _level(2), 0, {"tpot_s": 1.0})
    assert latency["tokens_per_s"] == pytest.approx(4 / 0.4)  # not (7 + 4) / 0.4
    goodput = latency["goodput"]
    assert goodput["met"] == 1 and goodput["not_assessable"] == 1 and goodput["fraction"] == 1.0


def test_in_process_decode_throughput_is_unchanged():
    from llmbench.meters.timing import latency_summary
    from llmbench.models.base import Generation

    gens = [Generation("p", "t", 1, 0.1, 0.2), Generation("p", "t", 5, 0.1, 0.5)]
    out = latency_summary(gens, 1, 0, "m")
    assert out["tokens_per_s"] == pytest.approx(4 / (0.1 + 0.4))


def test_goodput_with_a_tpot_bound_and_unknown_token_counts_is_not_measured_rather_than_zero():
    from llmbench.models.served_timing import level_latency

    g = _gen(0.1, 0.5, 0)
    g.extra.update(new_tokens=None, chunks=3)
    goodput = level_latency([g], _level(1), 0, {"tpot_s": 1.0})["goodput"]
    assert goodput["met"] is None and goodput["fraction"] is None and goodput["requests_per_s"] is None
    assert "usage" in goodput["reason"]
    assert level_latency([g], _level(1), 0, {"e2e_s": 1.0})["goodput"]["met"] == 1  # no tpot bound: judged


def test_a_fully_failed_level_has_no_throughput_rather_than_zero():
    from llmbench.models.served_timing import level_latency

    g = _gen(None, 0.5, 0, error="HTTP 500")
    g.extra.update(new_tokens=None)
    latency = level_latency([g], _level(1), 0, None)
    assert latency["requests_per_s"] is None and latency["output_tokens_per_s"] is None


def test_a_stream_that_ends_without_done_is_a_failed_request_keeping_its_text():
    raw = [b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
           b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"b"}}]}\n\n']
    with StubServer(answer=lambda body: Stream(raw=raw)) as stub:  # cut: no finish_reason, no [DONE]
        result, g = _one(stub)
    assert result.error == "stream ended before [DONE]" and not result.ok
    assert result.text == "ab" and g.text == "ab" and g.extra["status"] == "error"


def test_a_malformed_delta_fails_that_request_only():
    raw = [b'data: {"id":"x","choices":[{"index":0,"delta":"x"}]}\n\n', b"data: [DONE]\n\n"]
    with StubServer(answer=lambda body: Stream(raw=raw)) as stub:
        result, _ = _one(stub)
    assert not result.ok and result.error.startswith("unexpected stream chunk (delta is a str")


def test_a_stream_error_is_recorded_on_the_request_not_raised(monkeypatch):
    import httpx

    from llmbench.models import openai_stream

    def broken(result, data, now):
        raise httpx.StreamConsumed()

    monkeypatch.setattr(openai_stream, "handle_event", broken)
    with StubServer(answer=lambda body: Stream(pieces=["a"])) as stub:
        result, _ = _one(stub)
    assert result.error.startswith("client error: StreamConsumed: ")


def test_a_request_task_that_raises_never_leaks_and_its_siblings_are_kept(monkeypatch):
    import httpx

    from llmbench.models import openai_load

    real = openai_load.stream_request

    async def flaky(client, url, body, result):
        if result.index == 0:
            raise RuntimeError("boom")
        await real(client, url, body, result)

    monkeypatch.setattr(openai_load, "stream_request", flaky)
    with StubServer() as stub:
        body = build_payload("completions", "stub-model", "hi", 8, (), 0)
        reqs = [(stub.url, endpoint(stub.url, "completions"), body)] * 3

        async def go():
            async with httpx.AsyncClient(timeout=30) as client:
                run = await openai_load.run_level(client, reqs, LoadLevel(3), 0, 30.0)
                return run, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        run, left = asyncio.run(go())
    assert run.results[0].error == "client error: RuntimeError: boom"
    assert [r.ok for r in run.results[1:]] == [True, True]
    assert not [t for t in left if "run_level" in repr(t.get_coro())]  # none of the level's tasks is left running


def test_a_chunk_with_reasoning_and_content_is_one_token_chunk():
    r = RequestResult(index=0, replica="u")
    handle_event(r, '{"choices":[{"delta":{"reasoning_content":"hm","content":"a"}}]}', 1.0)
    handle_event(r, '{"choices":[{"delta":{"content":"b"}}]}', 2.0)
    assert r.token_times == [1.0, 2.0]


def test_an_error_field_of_null_is_a_normal_chunk():
    r = RequestResult(index=0, replica="u")
    assert handle_event(r, '{"error":null,"choices":[{"delta":{"content":"a"}}]}', 1.0)
    assert r.ok and r.text == "a"
    assert not handle_event(r, '{"object":"error","message":"bad"}', 2.0) and r.error == "server error in stream: bad"


def test_more_than_four_stops_are_cut_with_a_note():
    from llmbench.models.openai_stream import stop_note

    stops = ("a", "b", "c", "d", "e")
    assert build_payload("completions", "m", "p", 4, stops, 0)["stop"] == ["a", "b", "c", "d"]
    assert "5 stop sequences" in stop_note("m / t", stops) and stop_note("m / t", stops[:4]) is None


def test_a_stream_with_a_finish_reason_but_no_done_is_complete():  # transformers serve sends no [DONE]
    with StubServer(answer=lambda body: Stream(pieces=["a", "b"], done=False)) as stub:
        result, _ = _one(stub)
    assert result.ok and result.finish_reason == "stop"
