"""The request-level simulator's loops, compiled by numba: ``run_ticks`` routes, queues and serves
each request of a run of seconds (``sim.request``'s rules) on arrays of replica state, and
``interval_stats`` reads an interval's outcomes (counts in SLO, P50/P99 per variant and overall,
the 5 s window P99s, the peak arrivals per second).

A replica is a row of ``Replicas``: its workers' free-at times and its waiting queue as a ring
buffer of (start, request index, arrival). Service times come from chunks drawn ahead per
(variant, cores) by ``sim.request``, on the episode's generator: where a chunk runs out the
kernels stop and return its key, the caller draws the next chunk and calls again, so the random
stream is the one of one-by-one Python code. The arithmetic is written operation by operation as
that code does it (Python's ``sum``, numpy's linear percentile), so outcomes are equal to the last
bit. Each kernel has one explicit signature, compiled at import (``sim.fast_kernels`` says why).
"""

from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple

import numba
import numpy as np

from infadapter_env.jit import compiled

ACCURACY_FIRST, PROPORTIONAL, QUOTA = 0, 1, 2  # dispatcher codes (``sim.cluster.DISPATCHERS`` order)
RANDOM_REPLICA, ROUND_ROBIN_REPLICA = 0, 1  # replica routings (``sim.cluster.REPLICA_ROUTINGS`` order)
OK = -1  # ``run_ticks`` simulated the seconds asked for
GROW = -2  # a ring buffer is full: the caller deepens the queues and calls again
# Other answers are the key ``variant * (max cores + 1) + cores`` of a service-time chunk that ran out.

# Python's builtin sum() of floats, which the dispatcher's shares are written with, compensates
# (Neumaier) from Python 3.12 on; numba reads this as a constant (its cache is per Python version).
NEUMAIER_SUM = sys.version_info >= (3, 12)
QUANTILE_LEVELS = (0.5, 0.99)  # np.percentile's q / 100 for P50 and P99


class Replicas(NamedTuple):
    """The model servers of every variant, one row each: variant ``v``'s are rows ``first[v]`` to
    ``first[v + 1]``. A ring holds a replica's latest admitted requests in start order: those whose
    start has passed are overwritten when it is full; the others wait (at most ``queue_bound``)."""

    first: np.ndarray  # (V + 1,) int64
    variant: np.ndarray  # (R,) int64
    cores: np.ndarray  # (R,) int64
    queue_bound: np.ndarray  # (R,) int64: a request waits only while fewer than this many do
    free_at: np.ndarray  # (R, W) float64: a min-heap of when each worker is free (s); inf past its workers
    queue_start: np.ndarray  # (R, Q) float64: ring buffers of admitted requests' start times (s)
    queue_index: np.ndarray  # (R, Q) int64: their index in the interval they arrived in (-1: earlier)
    queue_arrival: np.ndarray  # (R, Q) float64: their arrival times (s)
    head: np.ndarray  # (R,) int64: each ring's first entry
    size: np.ndarray  # (R,) int64: each ring's entries


class ServiceDraws(NamedTuple):
    """Service times (s) drawn ahead in chunks per (variant, cores), and how many of each are used."""

    seconds: np.ndarray  # (V, C + 1, chunk) float64
    used: np.ndarray  # (V, C + 1) int64; ``chunk`` where none is left


class Dispatch(NamedTuple):
    """What routes requests until the next change (the caller sets it) and the round robin's state."""

    dispatcher: int  # ACCURACY_FIRST, PROPORTIONAL or QUOTA
    capacity_rps: np.ndarray  # (V,) float64: capacity at the SLO of what each variant serves (0: none)
    service_rps: np.ndarray  # (V,) float64: what its servers complete per second when busy
    quota: np.ndarray  # (V,) int64: the quotas routing now (quota dispatcher)
    rr_quota: np.ndarray  # (V,) int64: the quotas the round robin runs over
    rr: np.ndarray  # (3,) int64: the round robin's next index, its round, and 1 once rr_quota is set
    service_s: np.ndarray  # (V,) float64, output: service seconds the servers offered this interval
    routing: int  # RANDOM_REPLICA or ROUND_ROBIN_REPLICA: how a request reaches one of its variant's replicas
    next_replica: np.ndarray  # (V,) int64: round robin: the turn of each variant's next replica


class Interval(NamedTuple):
    """One interval's requests, and the outcomes the kernels write (variant -1 and NaN: dropped)."""

    arrival_s: np.ndarray  # (n,) float64, sorted
    tick_start: np.ndarray  # (ticks + 1,) int64: each second's first request
    draws: np.ndarray  # (2, n) float64: uniform draws per request (variant and replica; a replica elsewhere)
    variant: np.ndarray  # (n,) int64, output
    finish_s: np.ndarray  # (n,) float64, output


class IntervalStats(NamedTuple):
    """What ``interval_stats`` reads from an interval's outcomes (the caller allocates it)."""

    in_slo: np.ndarray  # (V,) requests served within the SLO, per variant
    served: np.ndarray  # (V,) requests served, per variant
    p50_ms: np.ndarray  # (V,)
    p99_ms: np.ndarray  # (V,)
    overall_ms: np.ndarray  # (2,) P50 and P99 of every served request
    window_p99_ms: np.ndarray  # (windows,) P99 of each 5 s window's completions (0: none)
    counts: np.ndarray  # (2,) requests dropped, and the most arriving in one second

    @classmethod
    def empty(cls, n_variants: int, n_windows: int) -> IntervalStats:
        """Zeroed arrays for ``n_variants`` variants and ``n_windows`` 5 s windows."""
        return cls(*(np.zeros(n) for n in [n_variants] * 4 + [2, n_windows, 2]))


def tuple_type(cls: type, *fields: Any) -> Any:
    """numba's type of an instance of the NamedTuple ``cls`` whose fields have these numba types."""
    return numba.types.BaseTuple.from_types(fields, cls)


_i8, _f8, _b1 = numba.types.int64, numba.types.float64, numba.types.boolean
_I1, _I2, _F1, _F2, _F3 = _i8[::1], _i8[:, ::1], _f8[::1], _f8[:, ::1], _f8[:, :, ::1]
REPLICAS = tuple_type(Replicas, _I1, _I1, _I1, _I1, _F2, _F2, _I2, _F2, _I1, _I1)
SERVICE_DRAWS = tuple_type(ServiceDraws, _F3, _I2)
DISPATCH = tuple_type(Dispatch, _i8, _F1, _F1, _I1, _I1, _I1, _F1, _i8, _I1)
INTERVAL = tuple_type(Interval, _F1, _I1, _F2, _I1, _F1)
INTERVAL_STATS = tuple_type(IntervalStats, *[_F1] * 7)


# ----------------------------------------------------------------------------- one replica
# The per-request helpers are inlined into ``run_ticks``. numba counts references to the arrays an
# inlined helper receives, with atomic operations that it prunes only in straight-line code:
# helpers that loop or return early over many arrays made the loop up to three times slower. So
# they are short expressions over the arrays they use, and the request loop's loops stay in it.
@numba.njit(nogil=True, inline="always")
def room(
    free_at: np.ndarray,
    queue_start: np.ndarray,
    head: np.ndarray,
    size: np.ndarray,
    bound: np.ndarray,
    r: int,
    now: float,
) -> bool:
    """A free worker takes the request at once; otherwise it waits if fewer than ``bound[r]``
    requests wait: the ring is in start order, so that is when its ``bound[r]``-th newest entry
    (the oldest that could still wait) has started."""
    depth, limit, n = queue_start.shape[1], bound[r], size[r]
    slot = head[r] + n - limit
    slot = slot - depth if slot >= depth else slot
    return free_at[r, 0] <= now or n < limit or (limit > 0 and queue_start[r, slot] <= now)


@numba.njit(nogil=True, inline="always")
def sift_down(free_at: np.ndarray, r: int) -> None:
    """Restore replica ``r``'s heap of free-at times after its first (earliest) entry grew (with
    that, ``heapq.heapreplace``)."""
    width, k, value = free_at.shape[1], 0, free_at[r, 0]
    while 2 * k + 1 < width:
        child = 2 * k + 1
        if child + 1 < width and free_at[r, child + 1] < free_at[r, child]:
            child += 1
        if free_at[r, child] >= value:
            break
        free_at[r, k] = free_at[r, child]
        k = child
    free_at[r, k] = value


@numba.njit(nogil=True, inline="always")
def ring_of(replicas: Replicas) -> tuple:
    """The replicas' queues: start, index, arrival, head, size."""
    return (replicas.queue_start, replicas.queue_index, replicas.queue_arrival, replicas.head, replicas.size)


@compiled(_b1(REPLICAS, _i8, _f8))
def has_room(replicas: Replicas, r: int, now: float) -> bool:
    """``room`` for Python: whether replica ``r`` takes a request at ``now``."""
    return room(replicas.free_at, replicas.queue_start, replicas.head, replicas.size, replicas.queue_bound, r, now)


@compiled(numba.types.none(REPLICAS, _f8, _F1))
def waiting(replicas: Replicas, now: float, out: np.ndarray) -> None:
    """Requests waiting (not yet started) at time ``now`` in each variant's queues, into ``out``."""
    depth = replicas.queue_start.shape[1]
    for v in range(out.size):
        out[v] = 0.0
        for r in range(replicas.first[v], replicas.first[v + 1]):
            for k in range(replicas.size[r]):
                slot = replicas.head[r] + k
                if replicas.queue_start[r, slot - depth if slot >= depth else slot] > now:
                    out[v] += 1.0


# ----------------------------------------------------------------------------- the dispatchers
@numba.njit(nogil=True, inline="always")
def pick_replica(first: np.ndarray, v: int, draw: float, routing: int, next_replica: np.ndarray) -> int:
    """Variant ``v``'s replica for the next request: the one a uniform ``draw`` picks (the draw is
    made either way, so that the random stream does not depend on the routing), or under the round
    robin the next in turn."""
    n = first[v + 1] - first[v]
    if routing == ROUND_ROBIN_REPLICA:
        turn = next_replica[v]
        next_replica[v] = turn + 1 if turn + 1 < n else 0
        return first[v] + (turn if turn < n else 0)
    k = int(draw * n)
    return first[v] + (k if k < n - 1 else n - 1)


@numba.njit(nogil=True)
def python_sum(values: np.ndarray, n: int) -> float:
    """``sum(values[:n])`` as Python's builtin computes it for floats (``NEUMAIER_SUM``)."""
    if n == 0:
        return 0.0
    total = values[0]
    if not NEUMAIER_SUM:
        for k in range(1, n):
            total += values[k]
        return total
    compensation = 0.0
    for k in range(1, n):
        x = values[k]
        t = total + x
        if abs(total) >= abs(x):
            compensation += (total - t) + x
        else:
            compensation += (x - t) + total
        total = t
    if compensation != 0.0 and math.isfinite(compensation):
        total += compensation
    return total


@numba.njit(nogil=True)
def tick_shares(
    first: np.ndarray, dispatch: Dispatch, count: int, order: np.ndarray, weight: np.ndarray, split: np.ndarray
) -> tuple[int, float]:
    """The split of a second's ``count`` requests: writes the serving variants, most accurate
    first, into ``order`` and their weights into ``weight``; returns how many serve and the total.
    ``accuracy_first`` fills the most accurate variants up to capacity, the excess to the first."""
    n_var = dispatch.capacity_rps.size
    n = 0
    for v in range(n_var - 1, -1, -1):
        if first[v + 1] > first[v]:
            order[n] = v
            n += 1
    capacity = dispatch.capacity_rps
    if dispatch.dispatcher == PROPORTIONAL:
        for k in range(n):
            weight[k] = capacity[order[k]]
        return n, python_sum(weight, n)
    remaining = float(count)  # ``cluster.served_shares``
    split[:] = 0.0
    for v in range(n_var - 1, -1, -1):
        if remaining <= 0:
            break
        take = min(capacity[v], remaining)
        split[v] = take
        remaining -= take
    for k in range(n):
        weight[k] = split[order[k]]
    left = float(count) - python_sum(split, n_var)
    if n > 0 and left > 0:
        weight[0] = weight[0] + left
    return n, python_sum(weight, n)


@numba.njit(nogil=True, inline="always")
def round_robin(quota: np.ndarray, rr_quota: np.ndarray, rr: np.ndarray) -> int:
    """The variant the interleaved weighted round robin over ``quota`` picks next (-1: none has a
    quota); new quotas restart it (the original dispatcher's ``/reset``). ``rr_quota`` and ``rr``
    (next index, round, 1 once ``rr_quota`` is set) are its state."""
    n_var = quota.size
    same = rr[2] == 1
    for v in range(n_var):
        same = same and quota[v] == rr_quota[v]
    if not same:
        rr_quota[:] = quota
        rr[0], rr[1], rr[2] = 0, 1, 1
    top = quota.max()
    if top <= 0:
        return -1
    index, rnd = rr[0], rr[1]
    while True:
        v, eligible = index, quota[index] >= rnd
        index += 1
        if index == n_var:
            index, rnd = 0, rnd + 1
            if rnd > top:
                rnd = 1
        if eligible:
            rr[0], rr[1] = index, rnd
            return v


@compiled(_i8(DISPATCH))
def next_quota(dispatch: Dispatch) -> int:
    """``round_robin`` for Python, over ``dispatch.quota``."""
    return round_robin(dispatch.quota, dispatch.rr_quota, dispatch.rr)


# ----------------------------------------------------------------------------- seconds of requests
@compiled(_i8(INTERVAL, REPLICAS, SERVICE_DRAWS, DISPATCH, _I1, _F1))
def run_ticks(
    interval: Interval,
    replicas: Replicas,
    service: ServiceDraws,
    dispatch: Dispatch,
    cursor: np.ndarray,
    moment: np.ndarray,
) -> int:
    """Route and serve the interval's requests of seconds ``cursor[0]`` to ``cursor[1]``
    (exclusive), in which what serves does not change. ``cursor`` = (second, stop, request,
    replica): where ``replica`` >= 0, that request (-1: one of an earlier interval), arrived at
    ``moment[0]``, is first queued on that replica at ``moment[1]``: one whose service time ran out,
    or (with second = stop) one that moves at a change. Returns OK when done; else, where a
    request is to be queued, the key of its (variant, cores)'s service-time chunk that ran out, or
    GROW where its replica's ring is full of waiting requests, with ``cursor`` and ``moment`` set
    to go on from there once the caller has drawn the chunk or grown the rings."""
    first, free_at, bound = replicas.first, replicas.free_at, replicas.queue_bound
    queue_start, queue_index, queue_arrival, head, size = ring_of(replicas)
    seconds, used, n_chunk = service.seconds, service.used, service.seconds.shape[2]
    quota, rr_quota, rr = dispatch.quota, dispatch.rr_quota, dispatch.rr
    routing, next_replica = dispatch.routing, dispatch.next_replica
    n_var, dispatcher = dispatch.capacity_rps.size, dispatch.dispatcher
    order, weight, split = np.empty(n_var, dtype=np.int64), np.empty(n_var), np.empty(n_var)
    arrival, draws, tick_start = interval.arrival_s, interval.draws, interval.tick_start
    tick, stop, i, r = cursor[0], cursor[1], cursor[2], cursor[3]
    arrived, now, end, n_order, total = moment[0], moment[1], -1, 0, 0.0  # end -1: second not started
    if r >= 0 and tick < stop:  # resumed inside a second: its service seconds are counted
        end = tick_start[tick + 1]
        n_order, total = tick_shares(first, dispatch, end - tick_start[tick], order, weight, split)
    while True:
        if r < 0:  # the next request, and the replica the dispatcher sends it to (-1: none)
            i += 1
            while i >= end:
                tick += 1 if end >= 0 else 0
                if tick >= stop:
                    cursor[0], cursor[3] = stop, -1
                    return OK
                i, end = tick_start[tick], tick_start[tick + 1]
                for v in range(n_var):
                    dispatch.service_s[v] += dispatch.service_rps[v]
                n_order, total = tick_shares(first, dispatch, end - i, order, weight, split)
            arrived = now = arrival[i]
            if n_order > 0 and dispatcher == QUOTA:
                v = round_robin(quota, rr_quota, rr)
                r = pick_replica(first, v, draws[0, i], routing, next_replica) if v >= 0 else -1
                r = r if r >= 0 and room(free_at, queue_start, head, size, bound, r, now) else -1
            elif n_order > 0 and total > 0:
                point, v, share = draws[0, i] * total, order[n_order - 1], weight[n_order - 1]
                for k in range(n_order):  # the variant whose share the draw falls in
                    if point < weight[k]:
                        v, share = order[k], weight[k]
                        break
                    point -= weight[k]
                # The replica draw reuses the fraction left inside the chosen variant's share.
                r = pick_replica(first, v, min(point / max(share, 1e-12), 0.999999), routing, next_replica)
                k = 0 if dispatcher == ACCURACY_FIRST else n_order  # a full queue passes it on
                while r >= 0 and not room(free_at, queue_start, head, size, bound, r, now):
                    while k < n_order and order[k] == v:
                        k += 1
                    r = pick_replica(first, order[k], draws[1, i], routing, next_replica) if k < n_order else -1
                    k += 1
            if r < 0:
                continue
        # Queue request i on replica r: it starts when the earliest worker is free.
        v, c = replicas.variant[r], replicas.cores[r]
        depth = queue_start.shape[1]
        if used[v, c] >= n_chunk or (size[r] == depth and queue_start[r, head[r]] > now):
            cursor[0], cursor[2], cursor[3], moment[0], moment[1] = tick, i, r, arrived, now
            return v * used.shape[1] + c if used[v, c] >= n_chunk else GROW
        if size[r] == depth:  # its oldest entry has started: overwrite it
            head[r], size[r] = head[r] + 1 if head[r] + 1 < depth else 0, size[r] - 1
        start = max(now, free_at[r, 0])
        free_at[r, 0] = start + seconds[v, c, used[v, c]]
        used[v, c] += 1
        slot = head[r] + size[r] - (depth if head[r] + size[r] >= depth else 0)
        queue_start[r, slot], queue_index[r, slot], queue_arrival[r, slot] = start, i, arrived
        size[r] += 1
        if i >= 0:
            interval.variant[i], interval.finish_s[i] = v, free_at[r, 0]
        sift_down(free_at, r)
        r = -1


# ----------------------------------------------------------------------------- the interval's statistics
@numba.njit(nogil=True)
def select(values: np.ndarray, k: int) -> None:
    """Reorder ``values`` so that ``values[k]`` is its k-th smallest, none smaller after it and
    none larger before it (what ``np.partition`` guarantees): quickselect whose partitions swap
    without branching (random latencies mispredict most branches of the textbook one)."""
    lo, hi = 0, values.size
    while hi - lo > 1:
        a, b, c = values[lo], values[(lo + hi) // 2], values[hi - 1]
        pivot = max(min(a, b), min(max(a, b), c))  # the median of three: an element of the range
        low = lo  # values[lo:low] < pivot
        for j in range(lo, hi):
            x = values[j]
            values[j], values[low] = values[low], x
            low += 1 if x < pivot else 0
        if k < low:
            hi = low
            continue
        high = low  # values[low:high] == pivot
        for j in range(low, hi):
            x = values[j]
            values[j], values[high] = values[high], x
            high += 1 if x == pivot else 0
        if k < high:
            return
        lo = high


@numba.njit(nogil=True, inline="always")
def lerp(below: float, above: float, gamma: float) -> float:
    """numpy's ``_lerp``: the value ``gamma`` (0 to 1) of the way from ``below`` to ``above``."""
    diff = above - below
    return above - diff * (1 - gamma) if gamma >= 0.5 else below + diff * gamma


@numba.njit(nogil=True)
def p50_p99(values: np.ndarray) -> tuple[float, float]:
    """``np.percentile(values, [50, 99])`` (linear) as numpy computes it (0 for no values);
    reorders ``values``. The order statistics around the P99 are looked for above the median."""
    n = values.size
    if n <= 1:
        return (values[0], values[0]) if n else (0.0, 0.0)
    low, high = (n - 1) * QUANTILE_LEVELS[0], (n - 1) * QUANTILE_LEVELS[1]  # fractional ranks
    lo, hi = math.floor(low), math.floor(high)
    select(values, lo)
    above = values[lo + 1 :]  # the order statistics lo + 1 .. n - 1, in some order
    next_lo = above.min()
    below_hi, above_hi = values[lo], next_lo
    if hi > lo:
        select(above, hi - lo - 1)
        below_hi, above_hi = above[hi - lo - 1], above[hi - lo :].min()
    return lerp(values[lo], next_lo, low - lo), lerp(below_hi, above_hi, high - hi)


@numba.njit(nogil=True)
def histogram_p99_ms(counts: np.ndarray, bucket_upper_ms: np.ndarray, out: np.ndarray) -> None:
    """``latency_histogram.window_quantiles_ms`` at q = 0.99 into ``out`` (0 where a window
    completed nothing) from ``counts[window, bucket]``: rank ``q x count`` interpolated inside
    TF-Serving's ``le`` bucket."""
    n_buckets = bucket_upper_ms.size + 1
    cumulative = np.empty(n_buckets)
    for w in range(out.size):
        running = 0.0
        for b in range(n_buckets):
            running += counts[w, b]
            cumulative[b] = running
        total = cumulative[n_buckets - 1]
        out[w] = 0.0
        if total <= 0:
            continue
        rank = 0.99 * total
        b = 0
        for k in range(n_buckets):
            if cumulative[k] < rank:
                b += 1
        b = min(b, n_buckets - 1)
        if b >= n_buckets - 1:
            out[w] = bucket_upper_ms[-1]
            continue
        below = 0.0 if b == 0 else cumulative[b - 1]
        lower = 0.0 if b == 0 else bucket_upper_ms[b - 1]
        upper = bucket_upper_ms[b]
        out[w] = lower + (upper - lower) * (rank - below) / max(float(counts[w, b]), 1e-12)


@compiled(numba.types.none(INTERVAL, _f8, _i8, _f8, _f8, _F1, INTERVAL_STATS))
def interval_stats(
    interval: Interval,
    start_s: float,
    n_ticks: int,
    slo_ms: float,
    window_s: float,
    bucket_upper_ms: np.ndarray,
    stats: IntervalStats,
) -> None:
    """Fill ``stats`` from the outcomes of the interval of ``n_ticks`` seconds from ``start_s``. A
    request's latency is ``finish - arrival``; its window, the ``window_s`` of the interval it
    completed in (the last window after the interval's end); ``bucket_upper_ms``: the histogram's."""
    arrival, variant, finish = interval.arrival_s, interval.variant, interval.finish_s
    n, n_var, n_windows = arrival.size, stats.in_slo.size, stats.window_p99_ms.size
    offset = np.zeros(n_var + 1, dtype=np.int64)
    for i in range(n):
        if variant[i] >= 0:
            offset[variant[i] + 1] += 1
    for v in range(n_var):
        offset[v + 1] += offset[v]
    n_served, n_buckets = offset[n_var], bucket_upper_ms.size + 1
    by_variant, latency_ms, fill = np.empty(n_served), np.empty(n_served), offset[:n_var].copy()
    per_second, counts = np.zeros(n_ticks, dtype=np.int64), np.zeros((n_windows, n_buckets), dtype=np.int64)
    stats.in_slo[:] = 0.0
    k = b = 0
    for i in range(n):
        per_second[min(max(math.floor(arrival[i] - start_s), 0), n_ticks - 1)] += 1
        v = variant[i]
        if v < 0:
            continue
        latency_s = finish[i] - arrival[i]
        ms = latency_s * 1000.0
        by_variant[fill[v]], latency_ms[k] = ms, ms
        fill[v] += 1
        k += 1
        stats.in_slo[v] += 1.0 if ms <= slo_ms else 0.0
        # np.searchsorted(bucket_upper_ms, ms), walked from the last one's bucket (latencies drift)
        while b > 0 and bucket_upper_ms[b - 1] >= ms:
            b -= 1
        while b < n_buckets - 1 and bucket_upper_ms[b] < ms:
            b += 1
        counts[min(max(math.floor((arrival[i] + latency_s - start_s) / window_s), 0), n_windows - 1), b] += 1
    for v in range(n_var):
        mine = by_variant[offset[v] : offset[v + 1]]
        stats.served[v] = mine.size
        stats.p50_ms[v], stats.p99_ms[v] = p50_p99(mine)
    histogram_p99_ms(counts, bucket_upper_ms, stats.window_p99_ms)
    stats.overall_ms[0], stats.overall_ms[1] = p50_p99(latency_ms)
    stats.counts[0] = n - n_served
    stats.counts[1] = per_second.max() if n_ticks > 0 else 0
