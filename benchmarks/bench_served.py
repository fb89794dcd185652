"""The served client's own cost: does llmbench's client sustain concurrency 64 on this machine, and how much
does its timestamping add to each chunk's time?

Not a test: prints the figures. Run with `make bench` or `python benchmarks/bench_served.py`.

The server is tests/openai_stub.py in a subprocess (its CPU time is not the client's), answering every
request with --chunks content chunks of one token each, a usage chunk and [DONE]; each content chunk carries
"t", the server's perf_counter just before it is written (CLOCK_MONOTONIC on Linux: one clock for both
processes). The client is the production path: a served ModelSpec, OpenAIBackend preflight and load, then
``run_level`` (answers turned into Generations as a run does). Three measurements:

1. capacity — an instant server at --concurrency: requests/s and chunks/s sustained, the most requests in
   flight (must equal --concurrency), failures (must be 0), and the client's CPU time per chunk (httpx, h11,
   the SSE parser, JSON, bookkeeping);
2. lag under load — the server paced at --gap-ms between chunks (a decode speed a real server has), at
   --concurrency: client stamp minus server write time, p50 and p99;
3. what timestamping adds — the same lag at concurrency 1 (one request at a time, chunks 20 ms apart, so
   one read per chunk) for three readers: a bare asyncio socket reader stamping each read (the floor:
   loopback, the server's write, waking up), httpx reading the raw body and stamping each part (the HTTP
   client's own delivery), and llmbench's client. llmbench minus httpx is what llmbench's timestamping,
   SSE parsing and bookkeeping add per chunk; httpx minus bare is the HTTP stack's (httpcore, h11, anyio).

Targets: concurrency 64 sustained with no failure; timestamping adds under 50 µs per chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = """
import sys
sys.path.insert(0, {tests!r})
from openai_stub import Stream, StubServer
with StubServer(answer=lambda body: Stream(pieces=["tok "] * {chunks}, stamp=True, gap_s={gap})) as stub:
    print(stub.url, flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
"""


class Server:
    def __init__(self, chunks: int, gap_s: float) -> None:
        code = SERVER.format(tests=str(ROOT / "tests"), chunks=chunks, gap=gap_s)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.proc.kill()
            raise SystemExit(f"stub server did not start: {self.url!r}")

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[int(q * (len(s) - 1))] if s else float("nan")


def client_level(url: str, concurrency: int, requests: int, chunks: int, measure_lag: bool) -> dict:
    from llmbench.config import ModelSpec
    from llmbench.models import openai_stream
    from llmbench.models.base import GenerateParams
    from llmbench.models.openai_http import OpenAIBackend

    lags: list[float] = []
    handle = openai_stream.handle_event

    def lagged(result, data, now):  # `now`, the client's stamp, was taken before this is called
        if '"t":' in data:
            lags.append(now - json.loads(data)["t"])
        return handle(result, data, now)

    backend = OpenAIBackend()
    loaded = backend.load(backend.preflight(ModelSpec.parse(f"{url},model=stub-model,api=completions")), "server")
    params = GenerateParams(chunks + 8, (), 1, 0, concurrency, None)
    try:
        backend.run_level(loaded, ["warm"] * concurrency, params)  # connections opened, not counted
        if measure_lag:
            openai_stream.handle_event = lagged
        cpu0, t0 = time.process_time(), time.perf_counter()
        gens, run = backend.run_level(loaded, [f"prompt {i}" for i in range(requests)], params)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    finally:
        openai_stream.handle_event = handle
        backend.unload(loaded)
    got = sum(g.extra["chunks"] for g in gens)
    return {"wall_s": wall, "chunks": got, "failed": sum(g.error is not None for g in gens),
            "max_in_flight": run.max_in_flight, "requests_per_s": requests / wall, "chunks_per_s": got / wall,
            "cpu_us_per_chunk": cpu / got * 1e6, "lag_p50_us": statistics.median(lags) * 1e6 if lags else None,
            "lag_p99_us": _pct(lags, 0.99) * 1e6 if lags else None}


async def _bare_reader(url: str, requests: int, chunks: int) -> list[float]:
    """The floor: one request at a time over a plain asyncio socket, each read stamped on arrival."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": "stub-model", "prompt": "p", "max_tokens": chunks + 8, "stream": True}).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    lags: list[float] = []
    for _ in range(requests):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head + body)
        await writer.drain()
        while True:
            data = await reader.read(65536)
            now = time.perf_counter()
            if not data:
                break
            for line in data.split(b"\n"):
                if line.startswith(b"data: {") and b'"t":' in line:
                    lags.append(now - json.loads(line[6:])["t"])
        writer.close()
    return lags


async def _httpx_reader(url: str, requests: int, chunks: int) -> list[float]:
    """httpx's own delivery: the raw body parts as httpx yields them, each stamped on arrival."""
    import httpx

    body = {"model": "stub-model", "prompt": "p", "max_tokens": chunks + 8, "stream": True}
    lags: list[float] = []
    async with httpx.AsyncClient() as client:
        for _ in range(requests):
            async with client.stream("POST", url + "/completions", json=body) as response:
                async for data in response.aiter_raw():
                    now = time.perf_counter()
                    for line in data.split(b"\n"):
                        if line.startswith(b"data: {") and b'"t":' in line:
                            lags.append(now - json.loads(line[6:])["t"])
    return lags


def timestamp_costs(n: int = 200_000) -> dict:
    from llmbench.models.openai_stream import RequestResult, handle_event

    times: list[float] = []
    clock = time.perf_counter
    empty = timeit.timeit(lambda: None, number=n) / n  # the lambda call itself, taken off
    stamp = timeit.timeit(lambda: times.append(clock()), number=n) / n
    chunk = ('{"id":"cmpl-1","object":"text_completion","model":"stub-model",'
             '"choices":[{"index":0,"text":"tok ","finish_reason":null}]}')
    result = RequestResult(index=0, replica="u")
    handle = timeit.timeit(lambda: handle_event(result, chunk, 0.0), number=n // 4) / (n // 4)
    return {"timestamp_us": (stamp - empty) * 1e6, "handle_event_us": (handle - empty) * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--requests", type=int, default=640)
    ap.add_argument("--chunks", type=int, default=32, help="content chunks per answer")
    ap.add_argument("--gap-ms", type=float, default=20.0, help="paced server: ms between chunks (50 tok/s)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    c, n, k = args.concurrency, args.requests, args.chunks
    print(f"served client ({os.cpu_count()} CPUs; the server in its own process on the same machine)")

    with Server(k, 0.0) as server:
        reps = [client_level(server.url, c, n, k, False) for _ in range(args.reps)]
    for i, r in enumerate(reps, 1):
        print(f"  1. capacity, instant server, concurrency {c}, rep {i}: {r['wall_s']:.2f} s, "
              f"{r['requests_per_s']:.0f} req/s, {r['chunks_per_s']:.0f} chunks/s, max in flight "
              f"{r['max_in_flight']}, failed {r['failed']}, client CPU {r['cpu_us_per_chunk']:.1f} µs/chunk")
    sustained = all(r["max_in_flight"] == c and r["failed"] == 0 for r in reps)
    cap = {key: statistics.median(r[key] for r in reps) for key in ("requests_per_s", "chunks_per_s",
                                                                     "cpu_us_per_chunk")}

    with Server(k, args.gap_ms / 1000) as server:
        paced = client_level(server.url, c, n, k, True)
        one = [client_level(server.url, 1, max(8, n // 32), k, True) for _ in range(args.reps)]
        floor = [asyncio.run(_bare_reader(server.url, max(8, n // 32), k)) for _ in range(args.reps)]
        lib = [asyncio.run(_httpx_reader(server.url, max(8, n // 32), k)) for _ in range(args.reps)]
    print(f"  2. lag under load, {args.gap_ms:g} ms between chunks, concurrency {c}: {paced['chunks_per_s']:.0f} "
          f"chunks/s, max in flight {paced['max_in_flight']}, failed {paced['failed']}: stamp lag p50 "
          f"{paced['lag_p50_us']:.0f} µs, p99 {paced['lag_p99_us']:.0f} µs")
    ours = statistics.median(r["lag_p50_us"] for r in one)
    bare = statistics.median(statistics.median(f) * 1e6 for f in floor)
    raw = statistics.median(statistics.median(f) * 1e6 for f in lib)
    print(f"  3. lag at concurrency 1 (p50): bare socket {bare:.0f} µs, httpx raw body {raw:.0f} µs, llmbench "
          f"client {ours:.0f} µs (p99 {statistics.median(r['lag_p99_us'] for r in one):.0f}): llmbench adds "
          f"{ours - raw:.0f} µs over httpx's delivery; httpx adds {raw - bare:.0f} µs over a bare socket read")
    costs = timestamp_costs()
    print(f"  the stamp itself (perf_counter + record) {costs['timestamp_us']:.3f} µs; handle_event (JSON + "
          f"bookkeeping) {costs['handle_event_us']:.2f} µs")
    print(f"median capacity: {cap['requests_per_s']:.0f} req/s, {cap['chunks_per_s']:.0f} chunks/s, client CPU "
          f"{cap['cpu_us_per_chunk']:.1f} µs per chunk")
    print(f"target: concurrency {c} sustained with no failure: {'yes' if sustained else 'NO'}; timestamping adds "
          f"< 50 µs per chunk: {'yes' if ours - raw < 50 else 'NO'} ({ours - raw:.0f} µs over the HTTP client's "
          f"delivery; with the HTTP stack, {ours - bare:.0f} µs over a bare socket read)")


if __name__ == "__main__":
    main()
