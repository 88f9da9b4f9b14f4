"""Latency as the original experiments read it: TF-Serving's request-latency histogram, queried
with Prometheus' ``histogram_quantile`` over fixed windows of completion time.

TF-Serving records each request's latency in cumulative ``le`` buckets with upper bounds
Exponential(10 us, x1.8, 33 buckets) plus +Inf; ``histogram_quantile(q, rate(...[w]))`` finds the
bucket that holds rank ``q x count`` and interpolates linearly inside it (a rank in the +Inf
bucket returns the largest finite bound). The original profiler read P99 over 2 s windows
(``sim.calibration`` replays it); the original experiments recorded it over 5 s
windows (``auto_tuner/starter.py``, ``GET_METRICS_INTERVAL``), which is what the request-level
simulator reports per interval (``info["p99_windows_ms"]``).
"""

from __future__ import annotations

import numpy as np

BUCKET_UPPER_MS = 0.01 * 1.8 ** np.arange(33)
EXPERIMENT_WINDOW_S = 5.0


def window_quantiles_ms(
    window: np.ndarray, latency_ms: np.ndarray, n_windows: int, q: float = 0.99, rows: np.ndarray | None = None
) -> np.ndarray:
    """``histogram_quantile(q)`` of the latencies (ms) completed in each window.

    ``window``: each request's window index (0 .. n_windows - 1); ``rows`` (optional): each
    request's row, for many independent series at once. Returns (n_rows, n_windows), NaN where a
    window completed nothing (Prometheus returns no value there)."""
    row = np.zeros(window.shape, dtype=np.int64) if rows is None else rows
    n_rows = int(row.max()) + 1 if row.size else 1
    n_buckets = BUCKET_UPPER_MS.size + 1
    bucket = np.searchsorted(BUCKET_UPPER_MS, latency_ms)  # le buckets: value <= upper bound
    flat = (row * n_windows + window) * n_buckets + bucket
    counts = np.bincount(flat, minlength=n_rows * n_windows * n_buckets).reshape(n_rows, n_windows, n_buckets)
    cumulative = np.cumsum(counts, axis=2, dtype=float)
    total = cumulative[..., -1]
    rank = q * total
    b = np.minimum((cumulative < rank[..., None]).sum(axis=2), n_buckets - 1)
    upper = np.append(BUCKET_UPPER_MS, BUCKET_UPPER_MS[-1])
    lower = np.concatenate([[0.0], BUCKET_UPPER_MS])
    below = np.where(b == 0, 0.0, np.take_along_axis(cumulative, np.maximum(b - 1, 0)[..., None], axis=2)[..., 0])
    inside = np.take_along_axis(counts, b[..., None], axis=2)[..., 0]
    value = lower[b] + (upper[b] - lower[b]) * (rank - below) / np.maximum(inside, 1e-12)
    value = np.where(b >= n_buckets - 1, BUCKET_UPPER_MS[-1], value)
    return np.where(total > 0, value, np.nan)
