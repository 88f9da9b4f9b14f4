"""The fast simulator's loops, compiled by numba: the queue recurrence tick by tick and the interval
quantiles, each one loop over environments instead of dozens of numpy calls per tick (which cost more
than the arithmetic on five variants, and made a Python-float twin of the recurrence necessary for
one environment). ``fast_sim`` imports this module on first use (numba's import takes about 0.3 s;
the loops compile once per machine, about 2 s, and are cached on disk)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def recurrence(
    backlog: np.ndarray,
    backlog_var: np.ndarray,
    rate_t: np.ndarray,
    routed_t: np.ndarray,
    cap_t: np.ndarray,
    mu_t: np.ndarray,
    noise_t: np.ndarray,
    per_replica_t: np.ndarray,
    half_bound_t: np.ndarray,
    queue_factor: float,
    spill_over: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fluid queues tick by tick for N environments (arrays (T, N, V); ``rate_t`` (T, N)): what
    each variant admits, completes and keeps waiting, the variance of one replica's queue, what is
    dropped and lost (the rules: ``fast_sim``'s docstring, steps 2-3).

    Returns per tick the queue and variance at its start, admitted and completed (T, N, V), then the
    final queue and variance (N, V), and the dropped and lost requests (N,)."""
    n_ticks, n_env, n_var = mu_t.shape
    queue_t = np.zeros((n_ticks, n_env, n_var))
    variance_t = np.zeros((n_ticks, n_env, n_var))
    take_t = np.zeros((n_ticks, n_env, n_var))
    done_t = np.zeros((n_ticks, n_env, n_var))
    queue = backlog.copy()
    variance = backlog_var.copy()
    dropped = np.zeros(n_env)
    lost = np.zeros(n_env)
    room = np.empty(n_var)
    take = np.empty(n_var)
    refused = np.empty(n_var)  # offered to a variant and refused by it
    for n in range(n_env):
        for t in range(n_ticks):
            for v in range(n_var):  # a variant that stopped serving loses its queue
                if mu_t[t, n, v] == 0.0 and queue[n, v] > 0.0:
                    lost[n] += queue[n, v]
                    queue[n, v] = 0.0
            rate = rate_t[t, n]
            admitted = 0.0
            for v in range(n_var):
                room[v] = max(queue_factor * cap_t[t, n, v] + mu_t[t, n, v] - queue[n, v], 0.0)
                take[v] = min(routed_t[t, n, v], room[v])
                refused[v] = routed_t[t, n, v] - take[v]
                admitted += take[v]
            if spill_over:  # accuracy_first: what one variant cannot admit goes to the next with room
                spill = max(rate - admitted, 0.0)
                admitted = 0.0
                for v in range(n_var - 1, -1, -1):  # most accurate first
                    put = min(spill, room[v] - take[v])
                    if put > 0.0:
                        take[v] += put
                        spill -= put
                    refused[v] = max(spill, 0.0)  # the spill that passes on
                    admitted += take[v]
            turned_away = max(rate - admitted, 0.0)
            dropped[n] += turned_away
            for v in range(n_var):
                mu = mu_t[t, n, v]
                queue_t[t, n, v] = queue[n, v]
                variance_t[t, n, v] = variance[n, v]
                take_t[t, n, v] = take[v]
                done = min(queue[n, v] + take[v], mu)
                done_t[t, n, v] = done
                queue[n, v] = queue[n, v] + take[v] - done
                # One replica's queue wanders around the fluid one: a diffusion whose variance grows
                # while the queue lasts, up to what the drift of the offered load allows (against a
                # barrier a diffusion with drift d and variance rate s2 stays within about s2 / (2 |d|)
                # of it), never beyond half the queue's bound. A full queue's drift counts all that
                # was offered to it.
                if queue[n, v] > 0.0:
                    replicas = per_replica_t[t, n, v]
                    growth = (take[v] + noise_t[t, n, v]) / replicas
                    offered = take[v] + refused[v]
                    reach = min(growth / max(2.0 * abs(offered - mu) / replicas, 1e-12), half_bound_t[t, n, v])
                    variance[n, v] = min(variance[n, v] + growth, reach * reach)
                else:
                    variance[n, v] = 0.0
    return queue_t, variance_t, take_t, done_t, queue, variance, dropped, lost


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
