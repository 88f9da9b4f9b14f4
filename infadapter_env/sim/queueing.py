"""Exact first-come-first-served multi-server queues, and the closed forms they are checked against.

A model server of this benchmark is ``k`` parallel workers that take requests from one FIFO queue
(TF-Serving with ``num_batch_threads = cores``, batch size 1, one intra-op thread). Two exact
implementations of that queue:

- ``fifo_finish_times``: one queue, request by request, with a heap of the workers' free times
  (the request-level simulator's kernel);
- ``fifo_sojourn_batch``: B independent queues at once in arrays (the Kiefer-Wolfowitz workload
  recursion), for calibration and latency tables.

And the textbook results for Poisson arrivals and exponential service (M/M/1, M/M/c, Erlang C)
that ``tests/sim/test_queueing.py`` holds both to.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np


def fifo_finish_times(arrival_s: Sequence[float], service_s: Sequence[float], workers: int) -> list[float]:
    """Completion time of every request of a FIFO queue with ``workers`` identical workers.

    ``arrival_s`` must be non-decreasing. A request starts when it has arrived and a worker is
    free (the earliest free worker); it leaves ``service_s`` later.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    free_at = [0.0] * workers
    finish = []
    for arrival, service in zip(arrival_s, service_s, strict=True):
        earliest = free_at[0]
        done = (arrival if arrival > earliest else earliest) + service
        heapq.heapreplace(free_at, done)
        finish.append(done)
    return finish


def fifo_sojourn_batch(arrival_s: np.ndarray, service_s: np.ndarray, workers: np.ndarray | int) -> np.ndarray:
    """Sojourn times (wait + service) of B independent FIFO queues, arrays (B, N).

    ``workers``: per queue (B,) or one number; queues with fewer workers than the largest are
    padded with workers that are never free. Arrivals of each row non-decreasing; a row may end
    early with ``inf`` arrivals (their sojourn is meaningless).
    """
    n_queues, n_requests = arrival_s.shape
    workers = np.broadcast_to(np.asarray(workers), (n_queues,))
    width = int(workers.max())
    # Remaining work of each worker at the current arrival, kept sorted ascending.
    work = np.where(np.arange(width)[None, :] < workers[:, None], 0.0, np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf where a row has ended
        gaps = np.diff(arrival_s, axis=1, append=np.inf)
    sojourn = np.empty_like(arrival_s)
    rows = np.arange(n_queues)
    for n in range(n_requests):
        wait = work[:, 0]
        sojourn[:, n] = wait + service_s[:, n]
        work[rows, 0] = sojourn[:, n]
        work.sort(axis=1)
        gap = np.nan_to_num(gaps[:, n], nan=0.0, posinf=0.0)
        np.maximum(work - gap[:, None], 0.0, out=work)
    return sojourn


# ----------------------------------------------------------------------- closed forms (M/M/c)
def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C), offered load a = lambda / mu < c."""
    if not 0 <= offered_load < servers:
        raise ValueError(f"offered load must be in [0, {servers}), got {offered_load}")
    # Erlang B by its stable recursion, then C from B.
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    rho = offered_load / servers
    return blocking / (1.0 - rho + rho * blocking)


def mmc_wait_tail(t: float, arrival_rate: float, service_rate: float, servers: int) -> float:
    """P(wait > t) in an M/M/c queue: C(c, a) exp(-(c mu - lambda) t)."""
    probability = erlang_c(servers, arrival_rate / service_rate)
    return probability * math.exp(-(servers * service_rate - arrival_rate) * t)


def mmc_sojourn_tail(t: float, arrival_rate: float, service_rate: float, servers: int) -> float:
    """P(wait + service > t) in an M/M/c queue (FIFO).

    The wait is 0 with probability 1 - C, else exponential with rate d = c mu - lambda; service is
    exponential with rate mu and independent of the wait."""
    c_wait = erlang_c(servers, arrival_rate / service_rate)
    mu = service_rate
    d = servers * service_rate - arrival_rate
    no_wait = math.exp(-mu * t)
    if math.isclose(d, mu):
        waited = math.exp(-mu * t) * (1.0 + mu * t)
    else:
        waited = (d * math.exp(-mu * t) - mu * math.exp(-d * t)) / (d - mu)
    return (1.0 - c_wait) * no_wait + c_wait * waited


def mm1_sojourn_tail(t: float, arrival_rate: float, service_rate: float) -> float:
    """P(sojourn > t) in an M/M/1 queue: exp(-(mu - lambda) t)."""
    if not 0 <= arrival_rate < service_rate:
        raise ValueError("an M/M/1 queue needs 0 <= lambda < mu")
    return math.exp(-(service_rate - arrival_rate) * t)
