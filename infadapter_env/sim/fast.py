"""The fast simulator (``simulator="fast"``, the default): fluid queues per 1 s tick with calibrated
latencies, for N environments at once (the scalar env is N = 1), in one compiled loop over the
environments (``sim.fast_kernels.interval``); this module holds its data and tables.

Per tick and variant (``cap``: capacity at the SLO from the profile, which the dispatcher uses;
``mu``: what the servers complete per second, replicas x workers / mean service time from the
calibrated service model; ``q``: requests waiting):

1. the dispatcher splits the tick's arrivals: ``accuracy_first`` gives each variant, most accurate
   first, up to ``cap``; ``proportional`` splits in proportion to ``cap``, ``quota`` in proportion
   to the round robin's integer quotas (``round(cap)``, or the ones the controller set: its planned
   ones route from the second every load is done, ``QuotaPlan``);
2. a variant admits at most ``queue_factor x cap + mu - q`` requests in the tick (its queue bound,
   plus what it completes meanwhile); under ``accuracy_first`` what one variant cannot admit goes
   to the next with room, most accurate first; the rest is dropped;
3. the queue evolves as ``q <- max(q + admitted - mu, 0)``. Requests pick one of a variant's R
   replicas at random (as the reference routes them, and as the Kubernetes Service in front of the
   original's pods does), so the model follows one replica's queue: the fluid share ``q / R``, and
   around it a diffusion whose variance rate is the replica's random share of each second's count
   (binomial, ``n p (1 - p)``; under ``quota`` only the pick of a replica is random) plus its random
   completions (``mu c^2``), reflected at empty and at full (``backlog_var``). A request admitted a
   fraction ``x`` into the tick (x = 1/4 and 3/4) is over the SLO when its wait behind that queue and
   its own latency at the lightest load exceed the SLO, averaged over the service's latency atoms:
   below the bound the queue is a normal around the fluid share, reflected at both ends; at the bound
   it falls short of it by an exponential (the stationary law of a diffusion pressed against a
   barrier by its drift, whose mean relaxes to ``s2 / (2 d)`` over ``theta / d`` seconds) plus the
   completions' normal noise. Just past saturation (``|2 d b / s2|`` below ``KNEE_SPAN``), once the
   queue has filled half its bound and where its spread covers the bound within two intervals, a
   replica's queue is in the bounded diffusion's steady state, density ``exp(2 d x / s2)`` on [0, b]
   (the heavy-traffic law of a G/G/1/K queue), with d and s2 over the interval; below saturation
   that law also caps the tables' unbounded queue. Without a queue, the server's steady-state latency
   under Poisson arrivals is read from ``profiles/latency_quantiles.npz`` at the utilisation of the
   last 10 s made effective for the burstiness of what one replica really receives
   (``sim.fast_kernels.effective_rho``, ``arrival_ca2``). Under ``quota`` the round robin sends a
   variant its cycle's q_v requests in the cycle's first sum_u min(q_u, q_v); faster than the
   variant serves, they queue within the cycle, and their waits spread evenly up to the last one's;
4. a request violates the SLO when that latency exceeds the SLO (or it is dropped).

Per interval and variant the P50/P99 latency is the quantile of the mixture of the ticks' latency
distributions, read from a log-binned histogram of every 5-tick group's latency quantiles at
``ATOM_LEVELS`` (shifted by its waits where queues form): a variant serving a few percent of the
requests enters the overall P99 with the body of its distribution. Loading,
rolling updates and make-before-break follow ``deploy``. ``tests/sim/test_fast_vs_request.py`` and
``infadapter validate-fast`` (``leaderboard.fast_validation``; docs/validation.md) hold this model to
the request-level simulator episode by episode.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from infadapter_env.sim import fast_kernels as kernels
from infadapter_env.sim.cluster import (
    DISPATCHERS,
    REPLICA_ROUTINGS,
    ClusterState,
    IntervalResult,
    QuotaPlan,
    no_quotas,
)
from infadapter_env.sim.fast_kernels import BIN_LOW_S, BIN_SCALE, N_BINS, RHO_MAX, RHO_STEP, THRESHOLD_STEPS
from infadapter_env.world.profiles import CapacityProfile, shipped_world

# Cumulative levels of the latency atoms from which interval quantiles are taken.
ATOM_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.85, 0.93, 0.96, 0.98, 0.99, 0.995, 0.998, 0.999)


@dataclass(frozen=True, eq=False)
class ServerTables:
    """What the fast model reads per (variant, cores): capacities, service rates and latency tables
    at one SLO (``over[v, c, rho, j]`` = P(latency > SLO x j / 64))."""

    slo_s: float
    capacity_rps: np.ndarray  # (V, C+1) per replica, at the SLO
    service_rps: np.ndarray  # (V, C+1) per replica
    service_cv: np.ndarray  # (V, C+1) coefficient of variation of the service time
    load_time_s: np.ndarray  # (V,)
    n_rho: int  # R, points of the utilisation grid
    # Flattened (V, C+1, R[, J+1]) tables, indexed by the kernel:
    over: np.ndarray  # P(latency > SLO x j / 64)
    atoms_s: np.ndarray  # (V x (C+1) x R, len(ATOM_LEVELS)) latency quantiles at ATOM_LEVELS
    atom_bins: np.ndarray  # the histogram bin of each atom (``sim.fast_kernels.latency_bin``)
    bin_edges: np.ndarray  # (N_BINS + 1,) the least latency of each bin (``sim.fast_kernels.bin_edges``)
    atom_mass: np.ndarray  # (len(ATOM_LEVELS),) probability each atom stands for

    @cached_property
    def kernel_tables(self) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
        """The tables as ``sim.fast_kernels.interval`` takes them, made once: ``ServerRates``,
        ``LatencyTable`` and ``LatencyAtoms``, each a plain tuple in its fields' order."""
        return (
            tuple(kernels.ServerRates(self.capacity_rps, self.service_rps, self.service_cv)),
            tuple(kernels.LatencyTable(self.slo_s, self.n_rho, self.over)),
            tuple(kernels.LatencyAtoms(self.atoms_s, self.atom_bins, self.atom_mass, self.bin_edges)),
        )


@lru_cache(maxsize=16)
def server_tables(profile: CapacityProfile) -> ServerTables:
    """The tables of ``profile``'s variants at its SLO (cached per profile)."""
    world = profile.world or shipped_world()
    service = world.service_model
    table = world.latency_table
    fine = np.arange(0.0, RHO_MAX + 1e-9, RHO_STEP)
    grid = np.clip(fine, table.rho[0], table.rho[-1])
    # Quantiles on the fine utilisation grid, linear between the simulated points.
    upper = np.clip(np.searchsorted(table.rho, grid), 1, table.rho.size - 1)
    weight = (grid - table.rho[upper - 1]) / (table.rho[upper] - table.rho[upper - 1])
    q = table.quantile_s
    q_fine = q[:, :, upper - 1] * (1 - weight)[None, None, :, None] + q[:, :, upper] * weight[None, None, :, None]
    q_fine = np.maximum.accumulate(q_fine, axis=-1)  # quantiles never decrease with the level
    levels = table.levels
    slo_s = profile.slo_ms / 1000.0

    def level(p: float) -> int:
        return int(np.flatnonzero(np.isclose(levels, p))[0])

    thresholds = slo_s * np.arange(THRESHOLD_STEPS + 1) / THRESHOLD_STEPS
    over = np.stack([tail_probability(q_fine, levels, x) for x in thresholds], axis=-1)
    rates = service.service_rps[: len(profile.variants)]
    over_f = np.ascontiguousarray(over).reshape(-1)
    atoms = np.ascontiguousarray(q_fine[..., [level(p) for p in ATOM_LEVELS]]).reshape(-1, len(ATOM_LEVELS))
    edges = np.concatenate([[0.0], (np.array(ATOM_LEVELS[:-1]) + np.array(ATOM_LEVELS[1:])) / 2, [1.0]])
    mass = np.diff(edges)
    bins = kernels.atom_bins(atoms, BIN_LOW_S, BIN_SCALE, N_BINS)
    latency_edges = kernels.bin_edges(BIN_LOW_S, BIN_SCALE, N_BINS)
    for array in (over_f, atoms, bins, mass, latency_edges):
        array.setflags(write=False)
    return ServerTables(
        slo_s=slo_s,
        capacity_rps=profile.per_replica_rps,
        service_rps=rates,
        service_cv=service.service_cv[: len(profile.variants)],
        load_time_s=profile.load_time_s,
        n_rho=q_fine.shape[2],
        over=over_f,
        atoms_s=atoms,
        atom_bins=bins,
        bin_edges=latency_edges,
        atom_mass=mass,
    )


def tail_probability(quantiles: np.ndarray, levels: np.ndarray, x: float) -> np.ndarray:
    """P(latency > x) from quantiles (..., L) at cumulative ``levels``: linear between stored
    quantiles, from 0 at latency 0 to the first, exponential beyond the last."""
    below = (quantiles <= x).sum(axis=-1)
    n = levels.size
    lower_q = np.where(below > 0, np.take_along_axis(quantiles, np.maximum(below - 1, 0)[..., None], -1)[..., 0], 0.0)
    lower_p = np.where(below > 0, levels[np.maximum(below - 1, 0)], 0.0)
    upper_q = np.take_along_axis(quantiles, np.minimum(below, n - 1)[..., None], -1)[..., 0]
    upper_p = levels[np.minimum(below, n - 1)]
    span = np.maximum(upper_q - lower_q, 1e-12)
    inside = lower_p + (upper_p - lower_p) * np.clip((x - lower_q) / span, 0.0, 1.0)
    last_scale = np.maximum(quantiles[..., -1] - quantiles[..., -2], 1e-9) / np.log((1 - levels[-2]) / (1 - levels[-1]))
    beyond = 1.0 - (1 - levels[-1]) * np.exp(-np.maximum(x - quantiles[..., -1], 0.0) / last_scale)
    cdf = np.where(below >= n, beyond, inside)
    return 1.0 - cdf


# A thread runs the kernel on at least this many environments: fewer are not worth a thread's hand-off.
MIN_ENVS_PER_THREAD = 64


def simulate_interval(
    state: ClusterState,
    per_tick: np.ndarray,
    tables: ServerTables,
    dispatcher: str = "accuracy_first",
    queue_factor: float = 1.25,
    quotas: QuotaPlan | None = None,
    threads: int = 1,
    replica_routing: str = "random",
) -> tuple[ClusterState, IntervalResult]:
    """One interval of ``per_tick`` arrivals (N, T) from ``state``; a pure function. ``quotas``: the
    ``quota`` dispatcher's quotas set by the controller (None: ``round(cap)``). One compiled loop over
    the environments (``sim.fast_kernels.interval``): at five variants numpy's calls cost more than
    the arithmetic, for one environment and for a thousand. With ``threads`` > 1 the environments
    are split into that many blocks of rows (at least ``MIN_ENVS_PER_THREAD`` each), run side by side
    (the kernel releases the GIL; each environment's numbers are the same as on one thread)."""
    n_env, n_var = state.cores.shape
    if quotas is None or dispatcher != "quota":
        quotas = no_quotas(n_env, n_var)
    per_tick = np.asarray(per_tick, dtype=np.float64)
    dispatch = DISPATCHERS.index(dispatcher), float(queue_factor), REPLICA_ROUTINGS.index(replica_routing)
    blocks = min(threads, n_env // MIN_ENVS_PER_THREAD)
    if blocks <= 1:
        serving, queues, by_variant, by_env = outputs = _interval_outputs(n_env, n_var)
        _interval_kernel(tuple(state), per_tick, (*dispatch, quotas.current, quotas.planned), tables, outputs)
    else:
        edges = np.linspace(0, n_env, blocks + 1).astype(int).tolist()

        def block(rows: slice) -> tuple[np.ndarray, ...]:
            """The kernel on a block of rows (a block of C-ordered rows is C-ordered itself)."""
            outputs = _interval_outputs(rows.stop - rows.start, n_var)
            inputs = tuple(field[rows] for field in state), per_tick[rows]
            _interval_kernel(*inputs, (*dispatch, quotas.current[rows], quotas.planned[rows]), tables, outputs)
            return outputs

        rows = [slice(lo, hi) for lo, hi in pairwise(edges)]
        others = [_pool(blocks - 1).submit(block, part) for part in rows[1:]]  # this thread runs the first
        parts = [block(rows[0]), *(other.result() for other in others)]
        serving, queues, by_variant, by_env = (np.concatenate(part, axis=1) for part in zip(*parts, strict=True))
    # (indexed rather than unpacked: an array's iterator costs twice as much at every step)
    new_state = ClusterState(state.replicas, state.cores, serving[0], serving[1], queues[0], queues[1], queues[2])
    return new_state, IntervalResult(by_env, by_variant)


def _interval_outputs(n_env: int, n_var: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's ``IntervalOutputs`` for N environments: serving replicas and cores; loading left,
    backlog and its variance; the rows by variant and by environment (``IntervalResult``)."""
    return (
        np.empty((2, n_env, n_var), dtype=np.int64),
        np.empty((3, n_env, n_var)),
        np.empty((5, n_env, n_var)),
        np.empty((7, n_env)),
    )


def _interval_kernel(
    state: tuple[np.ndarray, ...],
    per_tick: np.ndarray,
    dispatch: tuple[Any, ...],
    tables: ServerTables,
    out: tuple[np.ndarray, ...],
) -> None:
    """``sim.fast_kernels.interval``, with numba's refusal of the wrong array types said in words."""
    try:
        kernels.interval(state, per_tick, dispatch, *tables.kernel_tables, out)
    except TypeError as error:  # numba's "No matching definition"
        raise TypeError(
            "simulate_interval: the state's replicas and cores must be int64 arrays (N, V), its other "
            f"fields and per_tick float64 arrays ({error})"
        ) from None


@lru_cache(maxsize=4)
def _pool(threads: int) -> ThreadPoolExecutor:
    """The threads that run blocks of environments besides the caller's (one pool per size, kept for
    the process)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="infadapter-fast")
