"""When, inside each second, the requests of a per-second trace arrive (the request-level simulator).

A trace gives a request count per second. The request-level simulator needs each request's time:

``uniform``
    the second's requests spread evenly: request j of n at ``second + (j + 0.5) / n``;
``poisson``
    a Poisson process conditioned on the count: n uniform random times in the second, sorted;
``loadgen``
    the original experiments' load generator (reconfigurable-ml-pipeline/load_tester, branch
    ``mehran``, ``barazmoon/main.py``): every second it sends its n requests after cumulative
    exponential gaps of mean ``1 / (1.5 n)``, so they arrive in about the first two thirds of the
    second; nothing truncates them at the end of the second (the last can spill into the next).
    (The original seeds every forked sender identically, so equal counts get equal gaps; here each
    second draws its own gaps from the episode's generator.)

Counts are made whole by rounding the running total (``whole_counts``), so fractional rates (a rate
multiplier) keep their mean and nothing random enters there.
"""

from __future__ import annotations

import numpy as np

ARRIVAL_PROCESSES = ("uniform", "poisson", "loadgen")
# The processes that keep every request in its own second: the counts per second a simulator then
# observes are the trace's, whatever the seed (``loadgen``'s last requests can spill into the next).
WITHIN_THEIR_SECOND = ("uniform", "poisson")
LOADGEN_RATE_FACTOR = 1.5


def whole_counts(rates: np.ndarray) -> np.ndarray:
    """Integer requests per second whose running total is the rounded running total of ``rates``."""
    totals = np.rint(np.cumsum(rates, dtype=np.float64))
    return np.diff(totals, prepend=0.0).astype(np.int64)


def request_times(counts: np.ndarray, process: str, rng: np.random.Generator, start_s: float = 0.0) -> np.ndarray:
    """Sorted arrival times (s) of every request, second ``i`` of ``counts`` starting at ``start_s + i``."""
    if process not in ARRIVAL_PROCESSES:
        raise ValueError(f"arrivals must be one of {', '.join(map(repr, ARRIVAL_PROCESSES))}; got {process!r}")
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    seconds = np.repeat(np.arange(counts.size, dtype=np.float64), counts) + start_s
    if total == 0:
        return seconds
    if process == "poisson":
        # Uniform offsets within each second, in order: sorting the times themselves gives what sorting
        # each second's offsets gives (the same numbers, each second's below the next one's) in a
        # quarter of the time of a sort by (second, offset).
        seconds += rng.random(total)
        seconds.sort()
        return seconds
    # Position of each request within its second: j = 0..n-1.
    first = np.repeat(np.cumsum(counts) - counts, counts)
    j = np.arange(total) - first
    n = np.repeat(counts, counts).astype(np.float64)
    if process == "uniform":
        return seconds + (j + 0.5) / n
    # loadgen
    gaps = rng.exponential(1.0, total) / (LOADGEN_RATE_FACTOR * n)
    cumulative = np.cumsum(gaps)
    before = np.concatenate([[0.0], cumulative])[first]
    return np.sort(seconds + cumulative - before)
