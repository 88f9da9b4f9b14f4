"""The fast simulator's interval quantiles, compiled by numba: one loop per environment instead of
the three dozen numpy calls a histogram and its quantiles take (which cost more than the physics at
N = 1). ``fast_sim._atom_quantiles`` is the only caller; this module is imported on its first call
(numba's import takes about 0.3 s; the loop compiles once per machine and is cached on disk)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def mixture_quantiles(
    admitted: np.ndarray,
    wait: np.ndarray,
    rows: np.ndarray,
    atoms: np.ndarray,
    atom_mass: np.ndarray,
    low_s: float,
    scale: float,
    n_bins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """P50 and P99 (s) per variant (N, V) and overall (N,) of mixtures of components (N, V, K).

    Component k of variant v carries ``admitted[n, v, k]`` requests whose latency is its fluid
    ``wait`` plus the server's latency, given by its quantiles ``atoms[rows[n, v, k]]`` at levels
    standing for ``atom_mass`` of the probability each. The masses go into a histogram of
    ``n_bins`` log-spaced bins from ``low_s`` (``scale`` bins per e-fold); a quantile is read inside
    its bin geometrically. 0 where a variant (or the environment) served nothing."""
    n_env, n_var, n_comp = admitted.shape
    n_levels = atom_mass.size
    p50 = np.zeros((n_env, n_var))
    p99 = np.zeros((n_env, n_var))
    p50_all = np.zeros(n_env)
    p99_all = np.zeros(n_env)
    hist = np.zeros((n_var + 1, n_bins))  # the last row: every variant together
    for n in range(n_env):
        hist[:] = 0.0
        for v in range(n_var):
            for k in range(n_comp):
                requests = admitted[n, v, k]
                if requests == 0.0:
                    continue
                row = rows[n, v, k]
                for j in range(n_levels):
                    value = max(wait[n, v, k] + atoms[row, j], low_s)
                    b = min(max(int(np.log(value / low_s) * scale), 0), n_bins - 1)
                    hist[v, b] += requests * atom_mass[j]
        for b in range(n_bins):
            total = 0.0
            for v in range(n_var):
                total += hist[v, b]
            hist[n_var, b] = total
        for v in range(n_var + 1):
            first = _quantile(hist[v], 0.5, low_s, scale)
            last = _quantile(hist[v], 0.99, low_s, scale)
            if v < n_var:
                p50[n, v], p99[n, v] = first, last
            else:
                p50_all[n], p99_all[n] = first, last
    return p50, p99, p50_all, p99_all


@numba.njit(cache=True, nogil=True, inline="always")
def _quantile(hist: np.ndarray, level: float, low_s: float, scale: float) -> float:
    """The ``level`` quantile of log-binned masses, geometric inside its bin (0: no mass)."""
    total = 0.0
    for b in range(hist.size):
        total += hist[b]
    if total <= 0.0:
        return 0.0
    target = level * total
    below = 0.0
    b = 0
    while b < hist.size - 1 and below + hist[b] < target:
        below += hist[b]
        b += 1
    frac = min(max((target - below) / max(hist[b], 1e-300), 0.0), 1.0)
    return low_s * np.exp((b + frac) / scale)
