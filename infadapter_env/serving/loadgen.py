"""An open-loop load generator: requests sent at given times whatever the server does (a slow
server does not slow the sender, as with real users), each one's latency measured from its send.

``poisson_times`` draws the original profiler's arrivals (exponential gaps at a rate for a duration,
``auto_tuner/experiments/capacity_experiment.py``); ``send`` plays any list of send times, so the
same function can replay a trace's seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from infadapter_env.sim.latency_histogram import window_quantiles_ms

PROFILER_WINDOW_S = 2.0  # the original profiler read P99 over 2 s windows and kept the largest


@dataclass(frozen=True)
class LoadResult:
    """Per request (arrays of the same length): when it was sent (s from the start), its latency
    (ms; NaN if it failed) and whether it was answered."""

    sent_s: np.ndarray
    latency_ms: np.ndarray
    ok: np.ndarray
    duration_s: float

    @property
    def failed(self) -> int:
        return int((~self.ok).sum())

    def throughput(self, last_s: float | None = None) -> float:
        """Answers per second: over the run, or over its last ``last_s`` seconds of completions."""
        done = self.sent_s[self.ok] + self.latency_ms[self.ok] / 1000.0
        if last_s is None:
            return float(done.size / max(self.duration_s, 1e-9))
        end = float(done.max(initial=0.0))
        return float((done > end - last_s).sum() / last_s)

    def profiler_p99_ms(self) -> float:
        """The original profiler's P99: ``histogram_quantile(0.99)`` of TF-Serving's latency histogram
        over 2 s windows of completion time, the largest window's value (NaN: nothing answered).
        A failed request counts as never answered within any SLO: the P99 is infinite if over 1 %
        of the requests failed."""
        if self.ok.size and (~self.ok).mean() > 0.01:
            return float("inf")
        latency = self.latency_ms[self.ok]
        if latency.size == 0:
            return float("nan")
        done = self.sent_s[self.ok] + latency / 1000.0
        window = np.floor(done / PROFILER_WINDOW_S).astype(np.int64)
        values = window_quantiles_ms(window, latency, int(window.max()) + 1)
        return float(np.nanmax(values))


def poisson_times(rng: np.random.Generator, rate_rps: float, duration_s: float) -> np.ndarray:
    """Send times (s) of a Poisson stream at ``rate_rps`` over ``duration_s``."""
    gaps = rng.exponential(1.0 / rate_rps, size=int(rate_rps * duration_s * 1.5) + 16)
    times = np.cumsum(gaps)
    while times[-1] < duration_s:  # rare: draw more
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1.0 / rate_rps, size=len(gaps)))])
    return times[times < duration_s]


async def post(session: Any, url: str) -> bool:
    """One request to a model server (the body is ignored); whether it was answered (HTTP 200)."""
    import aiohttp

    try:
        async with session.post(url, data=b"x") as reply:
            await reply.read()
            return bool(reply.status == 200)
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


def send(url: str, send_times_s: np.ndarray, timeout_s: float = 60.0) -> LoadResult:
    """POST to ``url`` at ``send_times_s`` (s from now, ascending) without waiting for answers."""
    return asyncio.run(_send(url, np.asarray(send_times_s, dtype=float), timeout_s))


async def _send(url: str, times: np.ndarray, timeout_s: float) -> LoadResult:
    import aiohttp

    n = times.size
    sent = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        start = time.perf_counter()

        async def one(i: int) -> None:
            began = time.perf_counter()
            sent[i] = began - start
            ok[i] = await post(session, url)
            latency[i] = (time.perf_counter() - began) * 1000.0

        tasks = []
        for i in range(n):
            delay = start + times[i] - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
    latency[~ok] = np.nan
    return LoadResult(sent, latency, ok, duration)
