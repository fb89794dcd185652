"""One streamed request to an OpenAI-compatible server, timestamped chunk by chunk.

The request asks for ``stream: true`` with ``stream_options.include_usage`` so that the server's own token
counts (``usage.completion_tokens``) come back in a last, usage-only chunk. Server-sent events are parsed
by httpx-sse (it buffers to the blank line, skips ``:`` keep-alive comments and joins JSON split across
reads). Each event gets the ``perf_counter`` time of the network read that completed it: the transport
(``StampingTransport``) stamps every raw read of a response body as httpcore hands it over, so the time
spent above it — httpx's decoders, the SSE parser, JSON, our bookkeeping — does not make chunks late
(benchmarks/bench_served.py measures what is left).

Which chunks count (docs/served.md, "Timing"):
- a chunk carrying answer text (``choices[0].text`` or ``choices[0].delta.content``) is a content chunk;
- a chunk carrying ``delta.reasoning_content`` (or ``delta.reasoning``, vLLM's newer name) is a reasoning
  chunk: counted separately, never scored;
- role-only, finish-reason-only and usage-only chunks carry no token: they move neither the first-token
  nor the last-token time, so a trailing usage chunk cannot stretch e2e or TPOT.

httpx is imported by the caller (openai_load); this module only needs it for exception types, imported
where they are used, so that ``llmbench --help`` never imports an HTTP client.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

ERROR_BODY_CHARS = 300  # how much of an error response body a record keeps


@dataclass
class RequestResult:
    """Everything observed about one request; times are absolute ``perf_counter`` seconds."""

    index: int  # the prompt's position in the level's list
    replica: str  # base URL the request went to
    sent_at: float = 0.0  # just before the request was written
    scheduled_at: float | None = None  # its Poisson arrival time (rate levels), else None
    content_times: list[float] = field(default_factory=list)  # arrival of each chunk carrying answer text
    reasoning_times: list[float] = field(default_factory=list)  # arrival of each reasoning chunk
    text: str = ""
    reasoning: str = ""
    usage: dict | None = None  # the server's last usage object
    request_id: str | None = None  # x-request-id header, else the chunks' id
    finish_reason: str | None = None
    http_status: int | None = None
    error: str | None = None  # None: the request completed
    closed_at: float | None = None  # the response body ended (or the error was seen)
    events: int = 0  # SSE data events received, [DONE] excluded
    done: bool = False  # the stream's closing ``data: [DONE]`` arrived
    chunk_times: list[float] = field(default_factory=list)  # arrival of each chunk carrying any token

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def token_times(self) -> list[float]:
        """Arrival times of every chunk that carried generated tokens (answer or reasoning), in order: one
        time per chunk, even when a chunk carries both reasoning and answer text."""
        if self.chunk_times:
            return self.chunk_times
        if not self.reasoning_times:
            return self.content_times
        return sorted(self.content_times + self.reasoning_times)

    @property
    def completion_tokens(self) -> int | None:
        value = (self.usage or {}).get("completion_tokens")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def prompt_tokens(self) -> int | None:
        value = (self.usage or {}).get("prompt_tokens")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def reasoning_tokens(self) -> int | None:
        details = (self.usage or {}).get("completion_tokens_details") or {}
        value = details.get("reasoning_tokens") if isinstance(details, dict) else None
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ReadClock:
    """The time of the latest raw read of one response body (None before the first)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: float | None = None


def stamping_transport(**kwargs):
    """An httpx AsyncHTTPTransport whose responses stamp each raw body read into a ReadClock, found in
    ``response.extensions["llmbench_read_clock"]``."""
    import httpx

    class StampedStream(httpx.AsyncByteStream):
        def __init__(self, inner, clock: ReadClock) -> None:
            self._inner, self._clock = inner, clock

        async def __aiter__(self):
            clock, now = self._clock, time.perf_counter
            async for part in self._inner:
                clock.last = now()
                yield part

        async def aclose(self) -> None:
            await self._inner.aclose()

    class StampingTransport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.AsyncHTTPTransport(**kwargs)

        async def handle_async_request(self, request):
            response = await self._inner.handle_async_request(request)
            clock = ReadClock()
            response.stream = StampedStream(response.stream, clock)
            response.extensions = {**response.extensions, "llmbench_read_clock": clock}
            return response

        async def aclose(self) -> None:
            await self._inner.aclose()

    return StampingTransport()


def build_payload(api: str, model: str, prompt: str | list[dict], max_tokens: int, stop: tuple[str, ...],
                  seed: int) -> dict:
    """The request body: greedy (temperature 0, a seed), the task's stop sequences and length cap, streamed
    with usage. ``prompt`` is the text for ``completions`` and the message list for ``chat``."""
    body: dict[str, Any] = {"model": model, "stream": True, "stream_options": {"include_usage": True},
                            "max_tokens": max_tokens, "temperature": 0, "seed": seed}
    if stop:
        body["stop"] = list(stop)[:MAX_STOPS]  # the rest: stop_note tells the user
    if api == "chat":
        body["messages"] = prompt
    else:
        body["prompt"] = prompt
    return body


MAX_STOPS = 4  # OpenAI's API takes at most four stop sequences


def stop_note(what: str, stop) -> str | None:
    """The note to print when a task has more stop sequences than the API takes, else None."""
    stop = list(stop)
    if len(stop) <= MAX_STOPS:
        return None
    return (f"{what}: the task has {len(stop)} stop sequences, the API takes {MAX_STOPS}: the server is sent the "
            f"first {MAX_STOPS}; the answers are still cut at all of them here")


def endpoint(base_url: str, api: str) -> str:
    return base_url.rstrip("/") + ("/chat/completions" if api == "chat" else "/completions")


class MalformedChunk(ValueError):
    """A chunk whose choice is not shaped as the API says (``"delta": "x"``)."""


def _delta_parts(chunk: dict) -> tuple[str, str, str | None]:
    """(answer text, reasoning text, finish_reason) of a chunk's first choice; MalformedChunk when its
    ``delta`` is not an object."""
    choices = chunk.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return "", "", None
    choice = choices[0]
    finish = choice.get("finish_reason")
    if "delta" in choice:  # chat
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise MalformedChunk(f"delta is a {type(delta).__name__}, not an object")
        text = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    else:  # completions
        text, reasoning = choice.get("text") or "", ""
    return (text if isinstance(text, str) else "", reasoning if isinstance(reasoning, str) else "", finish)


def _error_text(obj: Any) -> str:
    """The message of an error object a server put in the stream or a response body."""
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or json.dumps(err)[:ERROR_BODY_CHARS]
        else:
            msg = obj.get("message") or obj.get("detail") or err
        return " ".join(str(msg).split())[:ERROR_BODY_CHARS]
    return " ".join(str(obj).split())[:ERROR_BODY_CHARS]


def body_error(status: int, body: bytes) -> str:
    """``HTTP 404: <the server's message>`` from an error response."""
    try:
        detail = _error_text(json.loads(body))
    except ValueError:
        detail = " ".join(body.decode("utf-8", "replace").split())[:ERROR_BODY_CHARS]
    return f"HTTP {status}: {detail}" if detail else f"HTTP {status}"


def handle_event(result: RequestResult, data: str, now: float) -> bool:
    """Fold one SSE ``data`` field received at ``now`` into ``result``; False when the stream is over."""
    if data.strip() == "[DONE]":
        result.done = True
        return False
    result.events += 1
    try:
        chunk = json.loads(data)
    except ValueError:
        result.error = f"unreadable stream chunk: {data[:80]!r}"
        return False
    if not isinstance(chunk, dict):
        result.error = f"unexpected stream chunk: {data[:80]!r}"
        return False
    # vLLM, TGI: an error in the middle of a stream ("error": null is a normal chunk)
    if chunk.get("error") or chunk.get("object") == "error":
        result.error = f"server error in stream: {_error_text(chunk)}"
        return False
    if result.request_id is None and isinstance(chunk.get("id"), str):
        result.request_id = chunk["id"]
    try:
        text, reasoning, finish = _delta_parts(chunk)
    except MalformedChunk as exc:
        result.error = f"unexpected stream chunk ({exc}): {data[:80]!r}"
        return False
    if text or reasoning:
        result.chunk_times.append(now)  # one token-chunk time per chunk
    if text:
        result.text += text
        result.content_times.append(now)
    if reasoning:
        result.reasoning += reasoning
        result.reasoning_times.append(now)
    if finish:
        result.finish_reason = str(finish)
    usage = chunk.get("usage")
    if isinstance(usage, dict):  # the usage-only last chunk (or every chunk, with continuous usage stats)
        result.usage = usage
    return True


async def stream_request(client, url: str, body: dict, result: RequestResult) -> None:
    """Send ``body`` to ``url`` on the httpx AsyncClient ``client`` and fill ``result``. Never raises for a
    failure of the server or the network: it is recorded in ``result.error`` (and ``http_status``)."""
    from contextlib import aclosing

    import httpx
    from httpx_sse import SSEError, aconnect_sse

    result.sent_at = time.perf_counter()
    try:
        async with aconnect_sse(client, "POST", url, json=body) as source:
            response = source.response
            result.http_status = response.status_code
            result.request_id = response.headers.get("x-request-id") or None
            if response.status_code != 200:
                result.error = body_error(response.status_code, await response.aread())
                return
            clock = response.extensions.get("llmbench_read_clock")
            async with aclosing(source.aiter_sse()) as events:  # closed here, not left to the GC
                async for event in events:
                    # the read that completed this event; a client without the stamping transport: now
                    now = clock.last if clock is not None and clock.last is not None else time.perf_counter()
                    if not event.data:
                        continue
                    if not handle_event(result, event.data, now):
                        break
            # the body ended early: no [DONE] and no finish_reason (transformers serve ends a complete stream
            # after its finish_reason chunk without [DONE]: that one is complete)
            if result.error is None and not result.done and result.finish_reason is None:
                result.error = "stream ended before [DONE]"
    except SSEError as exc:  # 200 but not an event stream (a proxy's HTML page, a non-streaming server)
        result.error = f"not an event stream: {exc}"
    except httpx.TimeoutException as exc:
        result.error = f"timed out ({type(exc).__name__})"
    except httpx.HTTPError as exc:  # refused, reset, the server died mid-stream
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - httpx.StreamError, a bug of ours: this request failed, not the run
        result.error = f"client error: {type(exc).__name__}: {' '.join(str(exc).split())[:ERROR_BODY_CHARS]}"
    finally:
        result.closed_at = time.perf_counter()
        if result.error:  # a gateway may echo the request's headers in its error text
            result.error = redact_key(result.error, client)


def redact_key(text: str, client) -> str:
    """``text`` with the client's API key (its ``Authorization: Bearer`` header) replaced by ``***``."""
    auth = getattr(client, "headers", {}).get("authorization") or ""
    key = auth[7:] if auth.startswith("Bearer ") else ""
    return text.replace(key, "***") if key else text
