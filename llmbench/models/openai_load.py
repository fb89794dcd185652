"""Load levels: send a task's requests to one or more replicas at a fixed concurrency and/or a Poisson rate.

- ``concurrency=N`` alone: a closed loop, N workers each sending the next request when their last one
  ended (the server never has more than N of ours in flight);
- ``rate=R`` alone: open-loop Poisson arrivals (exponential gaps of mean 1/R s, seeded), however many are
  in flight;
- both: Poisson arrivals, at most N in flight (an arrival waits for a free slot; its latency is measured
  from when it is sent, the wait is kept as ``queued_s``).

Requests go round-robin over the replicas (request i to replica i mod k). One httpx AsyncClient per loaded
model, kept open across levels on one event loop, so a measured level reuses the warm-up's connections.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from llmbench.config import LoadLevel
from llmbench.models.openai_stream import RequestResult, redact_key, stream_request


def poisson_offsets(n: int, rate: float, seed: int) -> list[float]:
    """Arrival times (s from the level's start) of ``n`` requests at ``rate`` per second; the first at 0."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for i in range(n):
        if i:
            t += rng.expovariate(rate)
        out.append(t)
    return out


@dataclass
class LevelRun:
    """One level's requests (in prompt order) and what the client saw of them."""

    results: list[RequestResult]
    started_at: float  # perf_counter: the first request could be sent
    ended_at: float  # the last request closed
    max_in_flight: int
    level: LoadLevel
    queued_s: list[float] = field(default_factory=list)  # per request: arrival -> sent (rate levels)

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


class InFlight:
    """Counts our requests in flight and keeps the maximum."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0

    def __enter__(self) -> "InFlight":
        self.now += 1
        self.max = max(self.max, self.now)
        return self

    def __exit__(self, *exc) -> None:
        self.now -= 1


async def run_level(client, requests: Sequence[tuple[str, str, dict]], level: LoadLevel, seed: int,
                    request_timeout_s: float | None, on_done: Callable[[RequestResult], None] | None = None
                    ) -> LevelRun:
    """Send ``requests`` — ``(replica base URL, endpoint URL, body)`` — at ``level``; never raises for a
    failed request (see RequestResult.error)."""
    n = len(requests)
    results = [RequestResult(index=i, replica=requests[i][0]) for i in range(n)]
    queued = [0.0] * n
    flight = InFlight()

    async def one(i: int) -> None:
        _, url, body = requests[i]
        with flight:
            try:
                await asyncio.wait_for(stream_request(client, url, body, results[i]), request_timeout_s)
            except asyncio.TimeoutError:
                results[i].error = f"timed out after {request_timeout_s:g} s (--request-timeout)"
                results[i].closed_at = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - nothing escapes one request: its siblings go on
                message = redact_key(" ".join(str(exc).split())[:300], client)
                results[i].error = f"client error: {type(exc).__name__}: {message}"
                results[i].closed_at = time.perf_counter()
        if on_done is not None:
            try:
                on_done(results[i])
            except Exception:  # noqa: BLE001 - a progress display failing must not lose the level's answers
                pass

    started = time.perf_counter()
    if level.rate is None:
        workers = min(level.concurrency or n, n) or 1
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:  # a shared iterator: each index is taken by exactly one worker
                await one(i)

        await _gather_all([worker() for _ in range(workers)])
    else:
        offsets = poisson_offsets(n, level.rate, seed)
        slots = asyncio.Semaphore(level.concurrency) if level.concurrency else None

        async def arrive(i: int) -> None:
            results[i].scheduled_at = started + offsets[i]
            await asyncio.sleep(max(0.0, results[i].scheduled_at - time.perf_counter()))
            if slots is None:
                queued[i] = max(0.0, time.perf_counter() - results[i].scheduled_at)
                await one(i)
                return
            async with slots:
                queued[i] = max(0.0, time.perf_counter() - results[i].scheduled_at)
                await one(i)

        await _gather_all([arrive(i) for i in range(n)])
    for r in results:  # a request a failed task never sent or finished: failed, never counted as answered
        if r.closed_at is None:
            r.error = r.error or "client error: request not completed"
            r.closed_at = time.perf_counter()
    ended = max([started] + [r.closed_at for r in results if r.closed_at is not None])
    return LevelRun(results, started, ended, flight.max, level, queued if level.rate is not None else [])


async def _gather_all(coros: list) -> None:
    """Run ``coros`` as tasks until every one has ended (an exception in one does not leave the others
    running into the next level); cancelled with the caller, they are cancelled and awaited too."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        leftovers = [t for t in tasks if not t.done()]
        for t in leftovers:
            t.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
