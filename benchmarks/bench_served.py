"""The served client's own cost: against a local server that answers instantly, does llmbench's client
sustain concurrency 64 on this machine, and what does it cost per chunk?

Not a test: prints the figures. Run with `make bench` or `python benchmarks/bench_served.py`.

The server is tests/openai_stub.py in a subprocess (so its CPU time is not the client's): every request is
answered at once with --chunks content chunks of one token each, a usage chunk and [DONE]. The client is
the production path: a served ModelSpec, OpenAIBackend preflight and load, then ``run_level`` at
--concurrency over --requests requests (the answers turned into Generations as a run does). Figures:

- sustained: requests/s and chunks/s, the most requests the client had in flight (must equal --concurrency),
  failures (must be 0);
- client CPU per chunk (µs): the client process's CPU time over the level / chunks received — everything
  the client does per chunk (httpx and h11, the SSE parser, JSON, the bookkeeping), the upper bound of
  what it adds between a chunk's arrival and its timestamp;
- timestamping per chunk (µs): ``perf_counter()`` plus recording the time, what the timing itself adds;
  and ``handle_event`` (JSON decode + the chunk's bookkeeping) for comparison.

Target: concurrency 64 sustained with no failure, timestamping under 50 µs per chunk.
"""

from __future__ import annotations

import argparse
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
import sys, time
sys.path.insert(0, {tests!r})
from openai_stub import Stream, StubServer
chunks = {chunks}
with StubServer(answer=lambda body: Stream(pieces=["tok "] * chunks)) as stub:
    print(stub.url, flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
"""


def start_server(chunks: int):
    code = SERVER.format(tests=str(ROOT / "tests"), chunks=chunks)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"stub server did not start: {url!r}")
    return proc, url


def client_level(url: str, concurrency: int, requests: int, chunks: int) -> dict:
    from llmbench.config import ModelSpec
    from llmbench.models.base import GenerateParams
    from llmbench.models.openai_http import OpenAIBackend

    backend = OpenAIBackend()
    spec = ModelSpec.parse(f"{url},model=stub-model,api=completions")
    loaded = backend.load(backend.preflight(spec), "server")
    try:
        params = GenerateParams(chunks + 8, (), 1, 0, concurrency, None)
        backend.run_level(loaded, ["warm"] * concurrency, params)  # connections opened, not counted
        cpu0, t0 = time.process_time(), time.perf_counter()
        gens, run = backend.run_level(loaded, [f"prompt {i}" for i in range(requests)], params)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    finally:
        backend.unload(loaded)
    got = sum(g.extra["chunks"] for g in gens)
    failed = sum(g.error is not None for g in gens)
    return {"wall_s": wall, "cpu_s": cpu, "chunks": got, "failed": failed, "max_in_flight": run.max_in_flight,
            "requests_per_s": requests / wall, "chunks_per_s": got / wall, "cpu_us_per_chunk": cpu / got * 1e6,
            "level_s": run.duration_s}


def timestamp_costs(n: int = 200_000) -> dict:
    from llmbench.models.openai_stream import RequestResult, handle_event

    times: list[float] = []
    clock = time.perf_counter
    stamp = timeit.timeit(lambda: times.append(clock()), number=n) / n
    empty = timeit.timeit(lambda: None, number=n) / n  # the lambda call itself, taken off
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
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"served client: {args.requests} requests x {args.chunks} chunks at concurrency {args.concurrency}, "
          f"against a local instant server ({os.cpu_count()} CPUs, server in its own process)")
    proc, url = start_server(args.chunks)
    try:
        reps = [client_level(url, args.concurrency, args.requests, args.chunks) for _ in range(args.reps)]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    for i, r in enumerate(reps, 1):
        print(f"  rep {i}: {r['wall_s']:.2f} s, {r['requests_per_s']:.0f} req/s, {r['chunks_per_s']:.0f} chunks/s, "
              f"max in flight {r['max_in_flight']}, failed {r['failed']}, client CPU {r['cpu_s']:.2f} s = "
              f"{r['cpu_us_per_chunk']:.1f} µs/chunk")
    med = {k: statistics.median(r[k] for r in reps) for k in ("requests_per_s", "chunks_per_s", "cpu_us_per_chunk")}
    sustained = all(r["max_in_flight"] == args.concurrency and r["failed"] == 0 for r in reps)
    costs = timestamp_costs()
    print(f"median: {med['requests_per_s']:.0f} req/s, {med['chunks_per_s']:.0f} chunks/s, client CPU "
          f"{med['cpu_us_per_chunk']:.1f} µs per chunk (everything: httpx, SSE parsing, JSON, bookkeeping)")
    print(f"timestamping: {costs['timestamp_us']:.3f} µs per chunk (perf_counter + record); handle_event (JSON + "
          f"bookkeeping) {costs['handle_event_us']:.2f} µs")
    print(f"target: concurrency {args.concurrency} sustained with no failure: {'yes' if sustained else 'NO'}; "
          f"timestamping < 50 µs per chunk: {'yes' if costs['timestamp_us'] < 50 else 'NO'} "
          f"(whole client per chunk {med['cpu_us_per_chunk']:.1f} µs: "
          f"{'under' if med['cpu_us_per_chunk'] < 50 else 'over'} 50 µs)")


if __name__ == "__main__":
    main()
