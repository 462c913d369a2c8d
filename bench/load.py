"""Open-loop HTTP load at a fixed arrival rate, measured without coordinated omission.

Requests are sent on a fixed schedule whether or not earlier ones have answered, and each
latency is measured from the moment the request was *due*, so a server that falls behind
shows its queueing delay instead of hiding it (as a closed loop would).
Traffic goes only to the given loopback URL, and every run ends after its duration.
`constant_rate` sends GETs; `open_loop` schedules any async call the same way (a client SDK's).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import aiohttp
from tqdm import tqdm


@dataclass
class LoadResult:
    rate: float
    duration_s: float
    sent: int
    ok: int
    errors: int
    latencies_ms: list[float]

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def summary(self, prefix: str) -> dict:
        return {f"{prefix}_p50_ms": self.percentile(50), f"{prefix}_p90_ms": self.percentile(90),
                f"{prefix}_p99_ms": self.percentile(99), f"{prefix}_max_ms": max(self.latencies_ms, default=0.0),
                f"{prefix}_requests": self.sent, f"{prefix}_errors": self.errors,
                f"{prefix}_achieved_rps": self.ok / self.duration_s}


Send = Callable[[int], Awaitable[bool]]  # sends the i-th request; True when it succeeded


async def open_loop(send: Send, rate: float, seconds: float, label: str) -> LoadResult:
    """Call `send(i)` at `start + i / rate` for `seconds`, whether or not earlier calls have
    returned; each latency runs from the moment the call was due. Errors are the calls that
    answered False (their latencies are left out)."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    bar = tqdm(total=total, desc=label, unit="req", leave=False)
    start = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            ok = await send(i)
        finally:
            bar.update()
        if ok:
            latencies.append((time.perf_counter() - due) * 1000)
        else:
            errors += 1

    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    bar.close()
    return LoadResult(rate, elapsed, total, len(latencies), errors, latencies)


def check_loopback(url: str) -> None:
    if not url.startswith(("http://127.", "http://localhost")):
        raise ValueError("load is only ever sent to loopback")


async def _run(url_for: Callable[[int], str], rate: float, seconds: float, label: str) -> LoadResult:
    check_loopback(url_for(0))
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def get(i: int) -> bool:
            try:
                async with session.get(url_for(i)) as response:
                    await response.read()
                    return response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return False

        return await open_loop(get, rate, seconds, label)


def constant_rate(url_for: Callable[[int], str], rate: float, seconds: float, label: str = "load") -> LoadResult:
    """Send `rate` GET requests per second for `seconds`; `url_for(i)` gives the i-th URL."""
    return asyncio.run(_run(url_for, rate, seconds, label))
