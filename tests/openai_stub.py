"""A small OpenAI-compatible streaming server on 127.0.0.1 for unit tests and the client benchmark.

Standard library only (http.server, one thread per connection, HTTP/1.1 keep-alive with chunked bodies
written by hand), so every byte and every flush is under the test's control: several tokens per chunk,
keep-alive comments, one JSON event split across two reads, a usage-only last chunk, HTTP errors, an error
inside the stream, a connection dropped mid-stream. It counts the requests it has in flight.

Not the integration test's server: that one is a real ``transformers serve`` (tests/integration).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Stream:
    """How one request is answered. ``pieces``: the answer's text pieces, one content chunk each, with
    ``tokens`` tokens each (the usage counts their sum); ``raw``: exact bytes to write instead, each item one
    write (a float item sleeps that long)."""

    pieces: list[str] = field(default_factory=list)
    tokens: list[int] | None = None  # tokens per piece (default 1 each)
    reasoning: list[str] = field(default_factory=list)  # reasoning pieces sent before the answer
    status: int = 200
    error_body: dict | None = None
    gap_s: float = 0.0  # sleep between chunks
    first_s: float = 0.0  # sleep before the first chunk
    usage: bool = True
    done: bool = True
    comments: bool = False  # a ": keep-alive" comment before each chunk
    split_json: bool = False  # every event written in two halves, 5 ms apart
    drop_after: int | None = None  # close the connection after this many content chunks
    error_after: int | None = None  # send an error event after this many content chunks
    raw: list | None = None
    prompt_tokens: int = 5
    stamp: bool = False  # each content chunk carries "t": the server's perf_counter just before the write


def default_answer(body: dict) -> Stream:
    """``A(<prompt>)`` in pieces of up to 4 characters, one token each."""
    if "messages" in body:
        prompt = " ".join(str(m.get("content", "")) for m in body["messages"])
    else:
        prompt = str(body.get("prompt", ""))
    text = f"A({prompt[:20]})"
    pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
    n = int(body.get("max_tokens") or 1000)
    return Stream(pieces=pieces[:n])


class StubServer:
    """``with StubServer() as s: s.url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, models=("stub-model",), answer: Callable[[dict], Stream] = default_answer,
                 api_key: str | None = None, chat: bool = True, listed: bool = True) -> None:
        self.models = list(models)
        self.listed = listed  # False: /models lists nothing, yet the models answer (transformers serve 5.17)
        self.answer = answer
        self.api_key = api_key
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _authorised(self) -> bool:
                if stub.api_key is None or self.headers.get("Authorization") == f"Bearer {stub.api_key}":
                    return True
                self._json(401, {"error": {"message": "invalid api key"}})
                return False

            def _json(self, status: int, obj) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "stub"}
                                                                for m in stub.models if stub.listed]})
                else:
                    self._json(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorised():
                    return
                with stub.lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    if self.path not in ("/v1/chat/completions", "/v1/completions"):
                        self._json(404, {"detail": "Not Found"})
                        return
                    if body.get("model") not in stub.models:
                        self._json(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
                        return
                    self._stream(body, stub.answer(body), chat=self.path.endswith("chat/completions"))
                finally:
                    with stub.lock:
                        stub.in_flight -= 1

            def _write(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _event(self, s: Stream, obj) -> None:
                if s.comments:
                    self._write(b": keep-alive\n\n")
                data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
                if s.split_json:
                    half = len(data) // 2
                    self._write(data[:half])
                    time.sleep(0.005)
                    self._write(data[half:])
                else:
                    self._write(data)

            def _stream(self, body: dict, s: Stream, chat: bool) -> None:
                if s.status != 200:
                    self._json(s.status, s.error_body or {"error": {"message": "stub failure"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("x-request-id", f"req-{len(stub.requests)}")
                self.end_headers()
                if s.raw is not None:
                    for item in s.raw:
                        if isinstance(item, float):
                            time.sleep(item)
                        else:
                            self._write(item)
                    self._write(b"")
                    return
                cid = f"cmpl-{len(stub.requests)}"
                obj = "chat.completion.chunk" if chat else "text_completion"

                def chunk(text: str = "", reasoning: str = "", finish=None) -> dict:
                    if chat:
                        delta = {}
                        if text:
                            delta["content"] = text
                        if reasoning:
                            delta["reasoning_content"] = reasoning
                        choice = {"index": 0, "delta": delta, "finish_reason": finish}
                    else:
                        choice = {"index": 0, "text": text, "finish_reason": finish}
                    return {"id": cid, "object": obj, "model": body["model"], "choices": [choice]}

                time.sleep(s.first_s)
                if chat:
                    role = {"index": 0, "delta": {"role": "assistant"}}
                    self._event(s, {"id": cid, "object": obj, "choices": [role]})
                tokens = s.tokens or [1] * len(s.pieces)
                for r in s.reasoning:
                    self._event(s, chunk(reasoning=r))
                    time.sleep(s.gap_s)
                for i, piece in enumerate(s.pieces):
                    if s.drop_after is not None and i == s.drop_after:
                        self.wfile.write(b"5\r\nda")  # a chunk cut short, then the connection closes
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if s.error_after is not None and i == s.error_after:
                        self._event(s, {"error": {"message": "engine died", "code": 500}})
                        self._write(b"")
                        return
                    c = chunk(text=piece)
                    if s.stamp:  # perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes
                        c["t"] = time.perf_counter()
                    self._event(s, c)
                    time.sleep(s.gap_s)
                self._event(s, chunk(finish="length" if body.get("max_tokens") == sum(tokens) else "stop"))
                if s.usage:
                    n = sum(tokens) + len(s.reasoning)
                    self._event(s, {"id": cid, "object": obj, "model": body["model"], "choices": [],
                                    "usage": {"prompt_tokens": s.prompt_tokens, "completion_tokens": n,
                                              "total_tokens": n + s.prompt_tokens}})
                if s.done:
                    self._event(s, b"[DONE]")
                self._write(b"")

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # listen backlog: 64+ clients connecting at once must not be dropped

            def handle_error(self, request, client_address) -> None:  # a client that hung up: not news
                import sys

                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
