"""The fast simulator's interval, compiled by numba: ``interval`` runs the rules of ``sim.fast``'s
docstring for N environments in one loop over them (dispatch, admission, the fluid queues, each
tick's latencies at its wait points, the interval's quantiles from a histogram of latency atoms).
At five variants numpy's calls cost more than the arithmetic, for one environment and for a
thousand; the loop replaced a numpy steady path, a numpy tick path and two smaller kernels.
Compiled at import with one explicit signature (about 20 s once per machine, then loaded from
numba's disk cache).

The kernel's inputs come in groups (``ClusterState``, ``Dispatch``, ``ServerRates``,
``LatencyTable``, ``LatencyAtoms``, ``IntervalOutputs``), each a plain tuple in its fields' order,
named on entry. Each step of the loop is a function of its own that numba copies into it
(``inline="always"``). Handing arrays to such a function costs an atomic reference count per array
and call unless LLVM prunes the counts, which it does only where no path leaves the function early,
so the steps keep to shapes it can prune: they raise nothing (``_start_environment`` reports what
is wrong, ``interval`` raises); they divide by a replica count or the SLO with ``np.divide`` (the
same IEEE division without Python's zero check, whose exception is such an early exit; these
divisors are never 0); no two branches of an ``if`` both hand arrays to functions (the
dispatchers' splits are written out in ``interval``, the over-SLO of a tick without a queue in
``_over_slo``); and the waits of a tick behind a queue come from functions of numbers
(``_slot_waits``). Otherwise a step costs up to a fifth more (``tests/benchmarks``)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from infadapter_env.jit import compiled
from infadapter_env.sim.cluster import ClusterState

# The model's constants (``sim.fast``'s docstring explains them); numba reads them as constants.
RHO_STEP = 0.005  # the utilisation grid of the latency tables
RHO_MAX = 0.99
THRESHOLD_STEPS = 64  # the over-SLO table's remaining-budget grid: SLO x j / 64
WAIT_POINTS = (0.25, 0.75)  # where in a tick the fluid wait of its admitted requests is read
# A replica's queue around the fluid one: three-point Gauss-Hermite nodes (standard deviations) and weights.
SPREAD_NODES = (-(3**0.5), 0.0, 3**0.5)
SPREAD_WEIGHTS = (1 / 6, 2 / 3, 1 / 6)
UTILISATION_WINDOW_S = 10  # the latency tables are read at the utilisation averaged over this window
# Near saturation a replica's bounded queue, not the unbounded one of the latency tables, sets the
# wait: where 2 d b / s2 (drift d per replica, its bound b, variance rate s2) exceeds -KNEE_SPAN.
KNEE_SPAN = 6.0
# A queue pressed full just past saturation takes its steady state's spread only where that spread
# is reached within two intervals (bound^2 / s2 seconds); a large server's queue stays full longer.
KNEE_RELAX_S = 120.0
# Latency histogram for the interval quantiles: log-spaced bins from 1 ms to 100 s (7.5 % wide). Its
# atoms come from groups of this many ticks (their waits averaged), which costs a fifth of per-tick atoms.
QUANTILE_GROUP_S = 5
BIN_LOW_S, BIN_HIGH_S, N_BINS = 1e-3, 100.0, 160
BIN_SCALE = N_BINS / math.log(BIN_HIGH_S / BIN_LOW_S)  # bins per e-fold
N_SLOTS = len(WAIT_POINTS) * len(SPREAD_NODES)  # a tick's requests: one slot per wait point and spread node


# ----------------------------------------------------------------------------- the whole interval
ACCURACY_FIRST, PROPORTIONAL, QUOTA = 0, 1, 2  # dispatcher codes (``sim.fast.DISPATCHERS`` order)
RANDOM_REPLICA, ROUND_ROBIN_REPLICA = 0, 1  # replica routings (``sim.cluster.REPLICA_ROUTINGS`` order)
LOADING_NAN, CORES_OUTSIDE = 1, 2  # what ``_start_environment`` finds wrong with a state (0: nothing)


class Dispatch(NamedTuple):
    """How an interval's arrivals are split and admitted: the dispatcher, the queue bound and the
    ``quota`` dispatcher's quotas (N, V) set by the controller (NaN: none set; read only with
    ``dispatcher == QUOTA``)."""

    dispatcher: int  # ACCURACY_FIRST, PROPORTIONAL or QUOTA
    queue_factor: float  # a variant's queue holds at most queue_factor x its capacity at the SLO
    replica_routing: int  # RANDOM_REPLICA or ROUND_ROBIN_REPLICA: how a request reaches a replica
    quotas_current: np.ndarray  # the quotas routing now
    quotas_planned: np.ndarray  # the quotas routing from the second every load is done


class ServerRates(NamedTuple):
    """What one replica of each variant on each core count does, (V, C+1) each
    (``sim.fast.ServerTables``)."""

    capacity_rps: np.ndarray  # at the SLO
    service_rps: np.ndarray  # completions per second
    service_cv: np.ndarray  # coefficient of variation of the service time


class LatencyTable(NamedTuple):
    """The over-SLO table: ``over`` flattened from (V, C+1, n_rho, THRESHOLD_STEPS + 1), P(latency >
    SLO x j / THRESHOLD_STEPS) on the utilisation grid (``sim.fast.ServerTables``)."""

    slo_s: float
    n_rho: int  # points of the utilisation grid
    over: np.ndarray


class LatencyAtoms(NamedTuple):
    """The latency atoms the interval's quantiles are read from, and the histogram they go into
    (``sim.fast.ServerTables``): per table row (V x (C+1) x n_rho rows), the latency quantiles at
    ``sim.fast.ATOM_LEVELS``, their histogram bins, each level's probability, and the bins' edges."""

    atoms_s: np.ndarray  # (rows, levels)
    atom_bins: np.ndarray  # (rows, levels) int64: ``latency_bin`` of each atom
    atom_mass: np.ndarray  # (levels,)
    bin_edges: np.ndarray  # (N_BINS + 1,): ``bin_edges``


class IntervalOutputs(NamedTuple):
    """What ``interval`` writes (arrays the caller allocates; their contents on entry do not matter).
    ``sim.fast.simulate_interval`` names the rows."""

    serving: np.ndarray  # (2, N, V) int64: the new serving replicas and cores
    queues: np.ndarray  # (3, N, V): the new loading left, backlog and its variance
    by_variant: np.ndarray  # (5, N, V): in SLO, served, busy fraction, P50 and P99 in ms
    by_env: np.ndarray  # (7, N): arrivals, peak rate, over SLO, dropped, lost, P50 and P99 in ms


# What ``interval`` keeps of the environment at hand (allocated once per call, in a few blocks: at
# N = 1 each allocation counts). The steps take these groups side by side, not nested: reading a
# group out of another costs numba reference counting at each use.
class Phases(NamedTuple):
    """One environment's two phases per variant, (2, V) each: 0 = what serves until the target is
    ready (from tick ``ready``), 1 = the target; and which variants the interval visits."""

    cap: np.ndarray  # capacity at the SLO
    mu: np.ndarray  # service rate
    cv2: np.ndarray  # service CV^2
    per_replica: np.ndarray  # replicas, at least 1: what a queue is shared by
    cores: np.ndarray  # (int64)
    ready: np.ndarray  # (V,) int64: the tick from which the target serves
    visited: np.ndarray  # (V,) int64: the visited variants first, least accurate first (``interval``)


class Flow(NamedTuple):
    """One environment's variants in the tick at hand, (V,) each."""

    queue: np.ndarray  # requests waiting
    variance: np.ndarray  # of one replica's queue around the fluid one
    routed: np.ndarray  # what the dispatcher sends
    weight: np.ndarray  # the proportional and quota dispatchers' weights
    room: np.ndarray  # what the variant can admit
    take: np.ndarray  # what it admits
    refused: np.ndarray  # what was offered to it and not admitted


class TickRecord(NamedTuple):
    """One environment's ticks: per variant (V, T) the queue and its variance at the tick's start,
    the requests admitted, those completed and those offered (admitted or refused), and under the
    quota dispatcher the part of its round robin's cycle in which each variant receives requests;
    per tick (T,) the arrivals of the last UTILISATION_WINDOW_S ticks, the effective utilisation of
    the variant being scored, and the cycle's length."""

    queue: np.ndarray
    variance: np.ndarray
    take: np.ndarray
    done: np.ndarray
    offered: np.ndarray
    on_fraction: np.ndarray  # (V, T) the quota dispatcher's: the share of its cycle a variant receives in (else 1)
    arrivals_window: np.ndarray
    recent_rho: np.ndarray
    cycle_s: np.ndarray  # (T,) the quota dispatcher's: how long its round robin's cycle lasts


class LatencyGroups(NamedTuple):
    """One variant's requests per group of ticks and slot (wait point x spread node), (G,
    N_SLOTS) each: their mass, their mass times their wait (s), and the latency table row of the
    group's middle tick; and the latency histograms (V + 1, N_BINS): one variant's, and in the last
    row every variant's together."""

    mass: np.ndarray
    wait: np.ndarray
    row: np.ndarray  # (int64)
    hist: np.ndarray


# Each kernel has one explicit signature, compiled at import (or loaded from the disk cache): two
# processes compiling different specialisations at once can leave numba's cache index pointing at
# the other one's code. Inputs are read-only arrays of any layout (writable and C arrays convert).
# A group is a plain tuple at the call: numba types a named tuple argument in Python (about 0.1 us
# per field, several per step), a plain one in C; only plain tuples convert to the signature's.
def readonly(dtype: str, ndim: int) -> numba.types.Array:
    """The numba type of a read-only array of ``dtype`` with ``ndim`` dimensions, any layout."""
    return numba.types.Array(getattr(numba.types, dtype), ndim, "A", readonly=True)


_I2, _F1, _F2 = readonly("int64", 2), readonly("float64", 1), readonly("float64", 2)
_i8, _f8 = numba.types.int64, numba.types.float64
CLUSTER_ARRAYS = numba.types.Tuple((_I2, _I2, _I2, _I2, _F2, _F2, _F2))
DISPATCH = numba.types.Tuple((_i8, _f8, _i8, _F2, _F2))
SERVER_RATES = numba.types.UniTuple(_F2, 3)
LATENCY_TABLE = numba.types.Tuple((_f8, _i8, _F1))
LATENCY_ATOMS = numba.types.Tuple((_F2, _I2, _F1, _F1))
# The outputs are arrays the caller allocates (numba boxes each array a kernel returns at a cost of
# about 0.9 us, three times the cost of allocating it in Python and passing it in).
INTERVAL_OUTPUTS = numba.types.Tuple(
    (numba.types.int64[:, :, ::1], numba.types.float64[:, :, ::1], numba.types.float64[:, :, ::1], _f8[:, ::1])
)
INTERVAL_SIGNATURE = numba.types.none(
    CLUSTER_ARRAYS, _F2, DISPATCH, SERVER_RATES, LATENCY_TABLE, LATENCY_ATOMS, INTERVAL_OUTPUTS
)


@numba.njit(nogil=True, inline="always")  # inlined where called
def effective_rho(
    rho: float, ca2_long: float, ca2_short: float, cv2: float, mu_replica: float, rho_max: float
) -> float:
    """The utilisation at which Poisson arrivals (what the latency tables hold) queue as the
    stream a server really gets, whose squared coefficient of variation is ``ca2_short`` over
    windows shorter than a second and ``ca2_long`` over a second or more (``arrival_ca2``).

    Kingman: the wait scales with (ca^2 + cs^2) / 2. The queue remembers about
    ``1 / (mu (1 - sqrt(rho))^2)`` seconds, which weighs the two. The table is then read where
    rho / (1 - rho) is scaled by the same factor."""
    rho = min(rho, rho_max)
    relax_s = 1.0 / max(mu_replica * (1.0 - np.sqrt(rho)) ** 2, 1e-9)
    ca2 = ca2_long + (ca2_short - ca2_long) / (relax_s + 1.0)
    factor = (ca2 + cv2) / (1.0 + cv2)
    g = factor * rho / (1.0 - rho)
    return g / (1.0 + g)


@numba.njit(nogil=True, inline="always")  # inlined where called
def arrival_ca2(
    share: float, on_fraction: float, per_replica: float, interleaved: bool, round_robin: bool
) -> tuple[float, float]:
    """How bursty one replica's arrivals are, over a second or more and over less (squared
    coefficients of variation), when its variant receives ``share`` of a stream whose count per
    second the trace fixes and whose times inside the second are random. The variant: a random
    dispatcher (``accuracy_first``, ``proportional``) thins the stream at random (1 - share, and 1);
    the quota dispatcher's round robin (``interleaved``) sends it one of every m requests while it
    receives (m = on_fraction / share), so its short gaps are sums of m (1 / m), while over seconds
    its cycle, which rarely fits a second, makes its count vary about as a random split's does
    (1 - share). The replica: one of ``per_replica`` drawn at random adds 1 - 1/R to both (and keeps
    1/R of the variant's); taken in turn (``round_robin``) it keeps 1/R of the variant's."""
    long_v = 1.0 - share
    short_v = min(np.divide(share, max(on_fraction, 1e-12)), 1.0) if interleaved else 1.0
    keep = np.divide(1.0, per_replica)
    added = 0.0 if round_robin else 1.0 - keep
    return added + keep * long_v, added + keep * short_v


@numba.njit(nogil=True, inline="always")  # inlined where called
def latency_bin(value: float, low_s: float, scale: float, n_bins: int) -> int:
    """The histogram bin of a latency (s): log-spaced from ``low_s``, ``scale`` bins per e-fold."""
    value = max(value, low_s)
    return min(max(int(np.log(value / low_s) * scale), 0), n_bins - 1)


@compiled(numba.types.int64[:, ::1](_F2, _f8, _f8, _i8))
def atom_bins(atoms: np.ndarray, low_s: float, scale: float, n_bins: int) -> np.ndarray:
    """``latency_bin`` of every atom (the bins of requests that wait for nothing)."""
    out = np.zeros(atoms.shape, dtype=np.int64)
    for i in range(atoms.shape[0]):
        for j in range(atoms.shape[1]):
            out[i, j] = latency_bin(atoms[i, j], low_s, scale, n_bins)
    return out


@compiled(numba.types.float64[::1](_f8, _f8, _i8))
def bin_edges(low_s: float, scale: float, n_bins: int) -> np.ndarray:
    """``edges[k]``: the least latency (s) whose ``latency_bin`` is k or more (``edges[0] = 0``,
    ``edges[n_bins] = inf``), so that ``edges[b] <= value < edges[b + 1]`` exactly where
    ``latency_bin(value) == b``: a rising sequence of latencies finds its bins by walking the edges."""
    edges = np.zeros(n_bins + 1)
    edges[n_bins] = np.inf
    for k in range(1, n_bins):
        x = low_s * np.exp(k / scale)
        while latency_bin(x, low_s, scale, n_bins) >= k:
            x = np.nextafter(x, 0.0)
        while latency_bin(x, low_s, scale, n_bins) < k:
            x = np.nextafter(x, np.inf)
        edges[k] = x
    return edges


@numba.njit(nogil=True, inline="always")  # inlined where called
def _add_unwaited(
    hist: np.ndarray, bins: np.ndarray, mass: np.ndarray, row: int, requests: float, first: int, last: int
) -> tuple[int, int]:
    """Add ``requests`` that wait for nothing, with the latency atoms of table ``row`` (none if
    ``row`` < 0), to ``hist``; return the range of bins in use widened to theirs."""
    if row < 0:
        return first, last
    for j in range(mass.size):
        hist[bins[row, j]] += requests * mass[j]
    return min(first, bins[row, 0]), max(last, bins[row, mass.size - 1])


@numba.njit(nogil=True, inline="always")  # inlined where called
def _p50_p99_ms(
    hist: np.ndarray, first: int, last: int, low_s: float, scale: float, into: np.ndarray, move: bool
) -> tuple[float, float]:
    """The P50 and P99 (ms) of log-binned masses in bins ``first..last`` (the others are empty),
    geometric inside their bins (0: no mass). The bins are then emptied for the next use, their
    masses added to ``into`` first if ``move`` (a variant's histogram into the overall one)."""
    total = 0.0
    for b in range(first, last + 1):
        total += hist[b]
    if total <= 0.0:
        return 0.0, 0.0
    p50, b, below = _quantile_ms(hist, first, last, 0.0, 0.5 * total, low_s, scale)
    p99, b, below = _quantile_ms(hist, b, last, below, 0.99 * total, low_s, scale)
    for b in range(first, last + 1):
        if move:
            into[b] += hist[b]
        hist[b] = 0.0
    return p50, p99


@numba.njit(nogil=True, inline="always")  # inlined where called
def _quantile_ms(
    hist: np.ndarray, b: int, last: int, below: float, target: float, low_s: float, scale: float
) -> tuple[float, int, float]:
    """The latency (ms) below which ``target`` of the masses lie, geometric inside its bin, walking
    up from bin ``b`` with ``below`` in the bins before it; also the bin reached and ``below`` there
    (where a higher quantile's walk goes on)."""
    while b < last and below + hist[b] < target:
        below += hist[b]
        b += 1
    frac = min(max((target - below) / max(hist[b], 1e-300), 0.0), 1.0)
    return 1000.0 * low_s * np.exp((b + frac) / scale), b, below


@numba.njit(nogil=True, inline="always")  # inlined where called
def _table_row(cell: int, rho: float, n_rho: int) -> int:
    """The latency table row of ``cell`` (a variant and core count's first row) nearest to
    utilisation ``rho`` on the RHO_STEP grid (capped at RHO_MAX)."""
    return cell + min(int(min(rho, RHO_MAX) * (1.0 / RHO_STEP) + 0.5), n_rho - 1)


@numba.njit(nogil=True, inline="always")  # inlined where called
def _threshold_step(wait: float, slo_s: float) -> tuple[int, float]:
    """Where a request that waits ``wait`` (s) reads the over-SLO table: what is left of the SLO
    on the table's THRESHOLD_STEPS grid, as the step below and the fraction towards the next
    (step -1: the wait alone exceeds the SLO, P(over SLO) = 1)."""
    budget = 1.0 - np.divide(wait, slo_s)
    if budget <= 0.0:
        return -1, 0.0
    position = min(budget, 1.0) * THRESHOLD_STEPS
    low = min(int(position), THRESHOLD_STEPS - 1)
    return low, position - low


@numba.njit(nogil=True, inline="always")  # inlined where called
def _ticks_per_group(n_ticks: int) -> int:
    """How many ticks one latency group gathers: QUANTILE_GROUP_S where they divide the interval, else 1."""
    return QUANTILE_GROUP_S if n_ticks % QUANTILE_GROUP_S == 0 else 1


@numba.njit(nogil=True, inline="always")  # inlined where called
def _scratch(n_var: int, n_ticks: int) -> tuple[Phases, Flow, TickRecord, LatencyGroups]:
    """``interval``'s working arrays for one environment of V variants and T ticks (reused by each)."""
    phases = np.zeros((4, 2, n_var))
    integers = np.zeros((4, n_var), dtype=np.int64)
    ticks = np.zeros((6, n_var, n_ticks))
    ticks[5] = 1.0  # on_fraction: every variant receives all the time unless the quota dispatcher says otherwise
    per_tick_scratch = np.zeros((3, n_ticks))
    per_variant = np.zeros((7, n_var))
    n_groups = n_ticks // _ticks_per_group(n_ticks)
    groups = np.zeros((2, n_groups, N_SLOTS))
    group_row = np.zeros((n_groups, N_SLOTS), dtype=np.int64)
    hist = np.zeros((n_var + 1, N_BINS))
    return (
        Phases(phases[0], phases[1], phases[2], phases[3], integers[0:2], integers[2], integers[3]),
        Flow(
            per_variant[0],
            per_variant[1],
            per_variant[2],
            per_variant[3],
            per_variant[4],
            per_variant[5],
            per_variant[6],
        ),
        TickRecord(
            ticks[0],
            ticks[1],
            ticks[2],
            ticks[3],
            ticks[4],
            ticks[5],
            per_tick_scratch[1],
            per_tick_scratch[0],
            per_tick_scratch[2],
        ),
        LatencyGroups(groups[0], groups[1], group_row, hist),
    )


@numba.njit(nogil=True, inline="always")  # inlined where called
def _outputs_fit(out: IntervalOutputs, n_env: int, n_var: int) -> bool:
    """Whether the output arrays have the shapes of N environments of V variants."""
    return (
        out.serving.shape == (2, n_env, n_var)
        and out.queues.shape == (3, n_env, n_var)
        and out.by_variant.shape == (5, n_env, n_var)
        and out.by_env.shape == (7, n_env)
    )


@numba.njit(nogil=True, inline="always")  # inlined where called
def _start_outputs(cluster: ClusterState, out: IntervalOutputs) -> None:
    """Start the outputs: what serves now serves on (until a load finishes), and every sum at zero."""
    out.serving[0] = cluster.serving_replicas
    out.serving[1] = cluster.serving_cores
    out.queues[:] = 0.0  # loading left, backlog, its variance
    out.by_variant[:] = 0.0  # in SLO, served, busy, P50, P99
    out.by_env[:] = 0.0  # arrivals, peak, over SLO, dropped, lost, P50, P99


@numba.njit(nogil=True, inline="always")  # inlined where called
def _start_environment(
    n: int, cluster: ClusterState, rates: ServerRates, n_ticks: int, phases: Phases, flow: Flow
) -> tuple[int, float, int]:
    """Environment ``n``'s phases per variant (``Phases``: what serves at each tick, the target
    from the second its load finishes) and its queues at the interval's start. Returns how many
    variants are visited (listed in ``phases.visited``), the tick from which every load is done,
    and the first thing wrong with the environment's state (``LOADING_NAN``, ``CORES_OUTSIDE``; 0:
    nothing), for ``interval`` to raise."""
    replicas, cores = cluster.replicas, cluster.cores
    serving_replicas, serving_cores = cluster.serving_replicas, cluster.serving_cores
    loading_left_s, backlog, backlog_var = cluster.loading_left_s, cluster.backlog, cluster.backlog_var
    capacity_rps, service_rps, service_cv = rates.capacity_rps, rates.service_rps, rates.service_cv
    cap_of, mu_of, cv2_of, per_replica_of = phases.cap, phases.mu, phases.cv2, phases.per_replica
    cores_of, ready, visited = phases.cores, phases.ready, phases.visited
    queue, variance = flow.queue, flow.variance
    n_cores = capacity_rps.shape[1]
    switch_tick = 0.0
    n_visited = 0
    problem = 0
    for v in range(replicas.shape[1]):
        ready_s = np.ceil(loading_left_s[n, v])
        if np.isnan(ready_s):
            problem = problem or LOADING_NAN
            ready_s = 0.0  # (``interval`` raises)
        switch_tick = max(switch_tick, ready_s)
        ready[v] = int(min(ready_s, n_ticks + 1.0))
        queue[v] = backlog[n, v]
        variance[v] = backlog_var[n, v]
        visit = queue[v] > 0.0 or variance[v] > 0.0
        for k in range(2):
            if k == 0:
                r, c, used = serving_replicas[n, v], serving_cores[n, v], ready[v] > 0
            else:
                r, c, used = replicas[n, v], cores[n, v], ready[v] < n_ticks
            valid = 0 <= c < n_cores and r >= 0
            if used and not valid:
                problem = problem or CORES_OUTSIDE
            if not (used and valid):
                r, c = 0, 0  # not serving in this phase, or not a deployment (``interval`` raises)
            cap_of[k, v] = r * capacity_rps[v, c]
            mu_of[k, v] = r * service_rps[v, c]
            cv2_of[k, v] = service_cv[v, c] ** 2
            per_replica_of[k, v] = max(r, 1)
            cores_of[k, v] = c
            visit = visit or cap_of[k, v] > 0.0 or mu_of[k, v] > 0.0
        if visit:
            visited[n_visited] = v
            n_visited += 1
    return n_visited, switch_tick, problem


@numba.njit(nogil=True, inline="always")  # inlined where called
def _quotas_planned(n: int, quotas_planned: np.ndarray) -> bool:
    """Whether the controller planned quotas for environment ``n`` (any not NaN)."""
    planned_set = False
    for v in range(quotas_planned.shape[1]):
        if not np.isnan(quotas_planned[n, v]):
            planned_set = True
    return planned_set


@numba.njit(nogil=True, inline="always")  # inlined where called
def _capacity_weights(t: int, phases: Phases, n_visited: int, flow: Flow) -> float:
    """Step 1 at tick ``t`` under ``proportional`` and ``quota``: each variant's weight is its
    capacity (``flow.weight``). Returns their sum."""
    cap_of, ready, visited, weight = phases.cap, phases.ready, phases.visited, flow.weight
    total = 0.0
    for i in range(n_visited):
        v = visited[i]
        weight[v] = cap_of[int(ready[v] <= t), v]
        total += weight[v]
    return total


@numba.njit(nogil=True, inline="always")  # inlined where called
def _rounded_quotas(n: int, use_planned: bool, dispatch: Dispatch, phases: Phases, n_visited: int, flow: Flow) -> float:
    """Step 1 under ``quota``: the controller's quotas (its planned ones if ``use_planned``) of the
    variants with capacity, rounded (``flow.routed``; 0 where none is set). Returns their sum."""
    quotas_current, quotas_planned = dispatch.quotas_current, dispatch.quotas_planned
    visited, routed, weight = phases.visited, flow.routed, flow.weight
    given = 0.0
    for i in range(n_visited):
        v = visited[i]
        q = quotas_planned[n, v] if use_planned else quotas_current[n, v]
        routed[v] = np.rint(q) if weight[v] > 0.0 and not np.isnan(q) else 0.0
        given += routed[v]
    return given


@numba.njit(nogil=True, inline="always")  # inlined where called
def _quota_weights(given: float, phases: Phases, n_visited: int, flow: Flow) -> float:
    """Step 1 under ``quota``: the round robin's integer quotas as weights (``flow.weight``): the
    controller's where it set any (``given`` > 0), else the rounded capacities. Returns their sum."""
    visited, routed, weight = phases.visited, flow.routed, flow.weight
    total = 0.0
    for i in range(n_visited):
        v = visited[i]
        weight[v] = routed[v] if given > 0.0 else np.rint(weight[v])
        total += weight[v]
    return total


@numba.njit(nogil=True, inline="always")  # inlined where called
def _quota_cycle(
    t: int, rate: float, total: float, phases: Phases, n_visited: int, flow: Flow, record: TickRecord
) -> None:
    """Under ``quota`` at tick ``t``: the round robin's cycle (``total`` requests) lasts total /
    ``rate`` seconds, and in round j it sends one request to each variant whose quota exceeds j; so
    variant v receives its q_v requests in the cycle's first sum_u min(q_u, q_v) requests, the part
    of the cycle recorded in ``record.on_fraction``."""
    visited, weight = phases.visited, flow.weight
    record.cycle_s[t] = np.divide(total, max(rate, 1e-12))
    for i in range(n_visited):
        v = visited[i]
        spanned = 0.0
        for m in range(n_visited):
            spanned += min(weight[visited[m]], weight[v])
        record.on_fraction[v, t] = np.divide(spanned, total) if weight[v] > 0.0 and total > 0.0 else 1.0


@numba.njit(nogil=True, inline="always")  # inlined where called
def _admit(t: int, queue_factor: float, phases: Phases, n_visited: int, flow: Flow, lost: float) -> tuple[float, float]:
    """Step 2 at tick ``t``: what each variant admits of what it was sent (``flow.take``), up to its
    room (``flow.room``: the queue bound plus its completions, less its queue); the rest is refused.
    A variant that stopped serving loses its queue. Returns the requests admitted, and ``lost`` with
    the queues lost added."""
    cap_of, mu_of, ready, visited = phases.cap, phases.mu, phases.ready, phases.visited
    queue, routed, room, take, refused = flow.queue, flow.routed, flow.room, flow.take, flow.refused
    admitted = 0.0
    for i in range(n_visited):
        v = visited[i]
        k = int(ready[v] <= t)
        mu = mu_of[k, v]
        if mu == 0.0 and queue[v] > 0.0:  # a variant that stopped serving loses its queue
            lost += queue[v]
            queue[v] = 0.0
        room[v] = max(queue_factor * cap_of[k, v] + mu - queue[v], 0.0)
        take[v] = min(routed[v], room[v])
        refused[v] = routed[v] - take[v]
        admitted += take[v]
    return admitted, lost


@numba.njit(nogil=True, inline="always")  # inlined where called
def _spill_over(rate: float, admitted: float, phases: Phases, n_visited: int, flow: Flow) -> float:
    """Step 2 under ``accuracy_first``: what one variant cannot admit of the tick's ``rate``
    arrivals (``admitted`` so far) goes to the next with room, most accurate first; each variant's
    refused requests are the spill that passes on. Returns the requests admitted."""
    visited, room, take, refused = phases.visited, flow.room, flow.take, flow.refused
    spill = max(rate - admitted, 0.0)
    admitted = 0.0
    for i in range(n_visited - 1, -1, -1):  # most accurate first
        v = visited[i]
        put = min(spill, room[v] - take[v])
        if put > 0.0:
            take[v] += put
            spill -= put
        refused[v] = max(spill, 0.0)  # the spill that passes on
        admitted += take[v]
    return admitted


@numba.njit(nogil=True, inline="always")  # inlined where called
def _serve_tick(
    t: int,
    rate: float,
    count_var: float,
    interleaved: bool,
    round_robin: bool,
    queue_factor: float,
    phases: Phases,
    n_visited: int,
    flow: Flow,
    record: TickRecord,
) -> None:
    """Step 3 at tick ``t`` (``rate`` arrivals): record each variant's queue, variance and
    admissions at the tick's start, then serve: the fluid queue, and the variance of one replica's
    queue around it."""
    cap_of, mu_of, cv2_of, per_replica_of = phases.cap, phases.mu, phases.cv2, phases.per_replica
    ready, visited = phases.ready, phases.visited
    queue, variance, take, refused = flow.queue, flow.variance, flow.take, flow.refused
    queue_t, variance_t, take_t, done_t = record.queue, record.variance, record.take, record.done
    for i in range(n_visited):
        v = visited[i]
        k = int(ready[v] <= t)
        mu = mu_of[k, v]
        queue_t[v, t] = queue[v]
        variance_t[v, t] = variance[v]
        take_t[v, t] = take[v]
        record.offered[v, t] = take[v] + refused[v]
        done = min(queue[v] + take[v], mu)
        done_t[v, t] = done
        queue[v] = queue[v] + take[v] - done
        # One replica's queue wanders around the fluid one, a diffusion: its variance rate is a
        # replica's random share of the second's count, which the trace fixes (binomial: n p (1 - p)
        # for a share p of n), and its random completions (about mu c^2). While the queue is full
        # and pressed against its bound by a drift d > 0 (what was offered beyond what it serves,
        # per replica), its shortfall below the bound is exponential with mean theta = s2 / (2 d)
        # (the diffusion's stationary law), which it approaches as the drift pushes the shortfall
        # in, over theta / d seconds: the mean follows a drift averaged over the queue's memory, not
        # one second's. Elsewhere the variance grows freely (draining: up to the s2 / (2 |d|) a
        # drift towards empty allows), never beyond half the queue's bound. The state ``variance``
        # is theta^2 at the bound.
        if queue[v] > 0.0:
            per_replica = per_replica_of[k, v]
            mine = np.divide(take[v], per_replica)
            share = min(np.divide(take[v], max(rate, 1e-12)), 1.0)
            bursty = arrival_ca2(share, record.on_fraction[v, t], per_replica, interleaved, round_robin)[0]
            mine_share = np.divide(share, per_replica)
            growth = mine * bursty + mine_share * mine_share * count_var + np.divide(mu * cv2_of[k, v], per_replica)
            drift = np.divide(take[v] + refused[v] - mu, per_replica)
            bound = queue_factor * cap_of[k, v]
            half_bound = np.divide(bound, per_replica) / 2
            if queue[v] >= bound * (1.0 - 1e-9) and drift > 0.0:
                target = min(growth / (2.0 * drift), half_bound)
                theta = np.sqrt(variance[v])
                if theta > target:
                    theta = target + (theta - target) * np.exp(-drift / theta)
                    variance[v] = theta * theta
                else:
                    variance[v] = min(variance[v] + growth, target * target)
            else:
                reach = min(growth / max(-2.0 * drift, 1e-12), half_bound)
                variance[v] = min(variance[v] + growth, reach * reach)
        else:
            variance[v] = 0.0


@numba.njit(nogil=True, inline="always")  # inlined where called
def _throughput(v: int, phases: Phases, record: TickRecord) -> tuple[float, float, float]:
    """Variant ``v``'s requests admitted (served) and completed over the interval, and how many
    it could have completed (its service rate summed over the ticks)."""
    mu_of, ready = phases.mu, phases.ready
    take_t, done_t = record.take, record.done
    served_v = 0.0
    done_v = 0.0
    mu_v = 0.0
    for t in range(take_t.shape[1]):
        served_v += take_t[v, t]
        done_v += done_t[v, t]
        mu_v += mu_of[int(ready[v] <= t), v]
    return served_v, done_v, mu_v


@numba.njit(nogil=True, inline="always")  # inlined where called
def _recent_utilisation(v: int, interleaved: bool, round_robin: bool, phases: Phases, record: TickRecord) -> None:
    """Variant ``v``'s utilisation at each tick (``record.recent_rho``), where the latency tables
    are read: the last UTILISATION_WINDOW_S ticks' load over their capacity, made effective for the
    burstiness of what one replica receives (``effective_rho``)."""
    window = UTILISATION_WINDOW_S
    mu_of, cv2_of, per_replica_of, ready = phases.mu, phases.cv2, phases.per_replica, phases.ready
    take_t, arrivals_window, recent_t = record.take, record.arrivals_window, record.recent_rho
    load_sum = 0.0
    mu_sum = 0.0
    for t in range(take_t.shape[1]):
        k = int(ready[v] <= t)
        load_sum += take_t[v, t]
        mu_sum += mu_of[k, v]
        if t >= window:
            load_sum -= take_t[v, t - window]
            mu_sum -= mu_of[int(ready[v] <= t - window), v]
        count = min(t + 1, window)
        # (a running sum that drops the tick leaving the window can round below 0)
        load = max(load_sum, 0.0) / count
        capacity = max(mu_sum, 0.0) / count
        share = load / max(arrivals_window[t] / count, 1e-12)
        per_replica = per_replica_of[k, v]
        ca2_long, ca2_short = arrival_ca2(share, record.on_fraction[v, t], per_replica, interleaved, round_robin)
        recent_t[t] = effective_rho(
            load / max(capacity, 1e-12),
            ca2_long,
            ca2_short,
            cv2_of[k, v],
            np.divide(capacity, per_replica),
            RHO_MAX,
        )


@numba.njit(nogil=True, inline="always")  # inlined where called
def _spread_waits(
    ahead: float, variance: float, scatter: float, mu_replica: float, safe_mu: float, longest_wait: float
) -> tuple[float, float, float]:
    """The waits (s) at one wait point, ``ahead`` requests ahead served at ``safe_mu``, at each of
    the SPREAD_NODES of one replica's queue around the fluid one (its variance ``variance``, plus
    ``scatter`` per request ahead), at most ``longest_wait``."""
    spread = np.sqrt(variance + ahead * scatter) / mu_replica
    low = min(max(ahead / safe_mu + SPREAD_NODES[0] * spread, 0.0), longest_wait)
    middle = min(max(ahead / safe_mu + SPREAD_NODES[1] * spread, 0.0), longest_wait)
    high = min(max(ahead / safe_mu + SPREAD_NODES[2] * spread, 0.0), longest_wait)
    return low, middle, high


@numba.njit(nogil=True, inline="always")  # inlined where called
def _slot_waits(
    queue: float, variance: float, take: float, mu: float, per_replica: float, cv2: float, longest_wait: float
) -> tuple[float, float, float, float, float, float]:
    """The wait (s) of each slot (the two WAIT_POINTS, each at the three SPREAD_NODES) of a tick's
    ``take`` requests behind a queue of ``queue`` requests, served at ``mu`` by ``per_replica``
    replicas with service CV^2 ``cv2``: the requests ahead at the wait point over ``mu``, spread by
    the wandering of one replica's queue (``variance``), by the random share of the queue a replica
    holds and by the randomness of its completions (``_spread_waits``). A function of numbers: it
    runs at every tick behind a queue, where arrays handed over would cost reference counting."""
    safe_mu = max(mu, 1e-12)
    mu_replica = max(np.divide(mu, per_replica), 1e-12)
    scatter = np.divide(1.0 - np.divide(1.0, per_replica) + cv2, per_replica)
    first = _spread_waits(
        max(queue + (take - mu) * WAIT_POINTS[0], 0.0), variance, scatter, mu_replica, safe_mu, longest_wait
    )
    second = _spread_waits(
        max(queue + (take - mu) * WAIT_POINTS[1], 0.0), variance, scatter, mu_replica, safe_mu, longest_wait
    )
    return first + second


@numba.njit(nogil=True, inline="always")  # inlined where called
def _normal_cdf(z: float) -> float:
    """P(Z <= z) for a standard normal Z."""
    return 0.5 * math.erfc(-z * 0.7071067811865476)


@numba.njit(nogil=True, inline="always")  # inlined where called
def _reflected_below(x: float, mean: float, sd: float, bound: float, lower: bool, upper: bool) -> float:
    """P(X <= x) (unnormalised, less its value at 0) for one replica's queue X: normal around
    ``mean`` with ``sd``, reflected at 0 (an idle server) and at ``bound`` (a full queue refuses), by
    the method of images (the first image at each barrier; ``lower`` and ``upper``: whether that
    image holds any mass, else it is left out)."""
    below = _normal_cdf(np.divide(x - mean, sd))
    if lower:
        below += _normal_cdf(np.divide(x + mean, sd)) - 1.0
    if upper:
        below += _normal_cdf(np.divide(x - 2.0 * bound + mean, sd))
    return below


@numba.njit(nogil=True, inline="always")  # inlined where called
def _deficit_below(y: float, scale: float, sd: float) -> float:
    """P(Z <= y) for a full replica's deficit Z below its bound: exponential with ``scale`` (a
    diffusion pressed against a barrier by its drift) plus a normal with ``sd`` (the randomness of
    the completions ahead): the exponentially modified normal."""
    if scale <= 1e-9 or scale <= sd / 20.0:  # no exponential part to speak of
        if sd <= 1e-9:
            return 1.0 if y >= 0.0 else 0.0
        return _normal_cdf(np.divide(y, sd))
    if sd <= 1e-9:
        return 1.0 - np.exp(np.divide(-y, scale)) if y > 0.0 else 0.0
    if y <= -8.0 * sd:
        return 0.0
    if y >= 40.0 * scale + 8.0 * sd:  # (both terms below 1e-15)
        return 1.0
    ratio = np.divide(sd, scale)
    return _normal_cdf(np.divide(y, sd)) - np.exp(np.divide(-y, scale) + 0.5 * ratio * ratio) * _normal_cdf(
        np.divide(y, sd) - ratio
    )


@numba.njit(nogil=True, inline="always")  # inlined where called
def _queue_over_slo(
    ahead: float,
    variance: float,
    noise: float,
    bound: float,
    mu_replica: float,
    slo_s: float,
    service_s: np.ndarray,
    row: int,
    mass: np.ndarray,
) -> float:
    """P(latency > SLO) of a request behind one replica's queue, served at ``mu_replica``, whose
    own time is the latency at the lightest load (the atoms of table ``row``): its wait exceeds what
    the SLO leaves after that time. The queue ahead: below the bound, normal around the fluid
    ``ahead`` (the wander ``variance`` plus the completions' ``noise``), reflected at 0 and at the
    bound (``_reflected_below``); at the bound, the bound less an exponential deficit whose mean is
    the wander's standard deviation (a diffusion's stationary law against a barrier), the
    completions' noise added (``_deficit_below``)."""
    full = ahead >= bound * (1.0 - 1e-9)
    sd = np.sqrt(variance + noise)
    scale = np.sqrt(variance)
    # the images that hold mass (beyond 8 standard deviations of a barrier one holds below 1e-15)
    lower, upper = ahead < 8.0 * sd, bound - ahead < 8.0 * sd
    start = _reflected_below(0.0, ahead, sd, bound, lower, upper) if sd > 1e-9 else 0.0
    total = 1.0 if full or sd <= 1e-9 else _reflected_below(bound, ahead, sd, bound, lower, upper) - start
    p_over = 0.0
    for j in range(mass.size):
        x = mu_replica * (slo_s - service_s[row, j])
        if x <= 0.0:
            p = 1.0
        elif full:
            p = _deficit_below(bound - x, scale, np.sqrt(noise))
        elif sd <= 1e-9 or x < ahead - 8.0 * sd:  # (below 1e-15 of it lies below x)
            p = 1.0 if ahead > x else 0.0
        elif x < bound:
            p = 1.0 - min((_reflected_below(x, ahead, sd, bound, lower, upper) - start) / max(total, 1e-300), 1.0)
        else:
            p = 0.0
        p_over += mass[j] * p
    return p_over


@numba.njit(nogil=True, inline="always")  # inlined where called
def _bounded_over_slo(
    beta: float, bound: float, mu_replica: float, slo_s: float, service_s: np.ndarray, row: int, mass: np.ndarray
) -> float:
    """P(latency > SLO) of a request at a replica whose queue is in the steady state of a diffusion
    on [0, ``bound``] with drift over variance rate ``beta`` (= 2 d / s2): density proportional to
    exp(beta x) (the heavy-traffic law of a bounded queue, either side of saturation), served at
    ``mu_replica``, its own time the latency at the lightest load (the atoms of table ``row``)."""
    p_over = 0.0
    for j in range(mass.size):
        x = mu_replica * (slo_s - service_s[row, j])
        if x <= 0.0:
            p = 1.0
        elif x >= bound:
            p = 0.0
        elif abs(beta * bound) < 1e-9:
            p = np.divide(bound - x, bound)
        else:
            p = np.divide(np.expm1(beta * (x - bound)), np.expm1(-beta * bound))
        p_over += mass[j] * p
    return p_over


@numba.njit(nogil=True, inline="always")  # inlined where called
def _knee(
    v: int,
    k: int,
    arrivals: float,
    count_var: float,
    interleaved: bool,
    round_robin: bool,
    queue_factor: float,
    phases: Phases,
    record: TickRecord,
) -> tuple[float, float, float, float]:
    """Variant ``v``'s phase ``k`` over the interval (of ``arrivals`` requests, whose count per
    second varies by ``count_var``): 2 d / s2 of one replica's queue (drift d = what is offered to
    it less what it serves, per second; s2 = its random share of each second's requests, n p (1 - p)
    (under the quota dispatcher's round robin only the pick of a replica is random: n p (1 - 1/R)),
    and of the count's own variation, p^2 var(n), plus its random completions, mu c^2), its bound and
    its service rate."""
    mu_of, cap_of, cv2_of, per_replica_of, ready = phases.mu, phases.cap, phases.cv2, phases.per_replica, phases.ready
    offered_t = record.offered
    n_ticks = offered_t.shape[1]
    taken = 0.0
    ticks = 0
    for t in range(n_ticks):
        if int(ready[v] <= t) == k:
            taken += offered_t[v, t]
            ticks += 1
    per_replica = per_replica_of[k, v]
    mu_replica = np.divide(mu_of[k, v], per_replica)
    mine = np.divide(taken, max(ticks, 1) * per_replica)
    p = min(np.divide(mine * n_ticks, max(arrivals, 1e-12)), 1.0)  # of a second's requests, one replica's share
    thinning = arrival_ca2(p * per_replica, 1.0, per_replica, interleaved, round_robin)[0]
    s2 = max(mine * thinning + p * p * count_var + mu_replica * cv2_of[k, v], 1e-12)
    bound = queue_factor * np.divide(cap_of[k, v], per_replica)
    return 2.0 * (mine - mu_replica) / s2, bound, mu_replica, bound * bound / s2


@numba.njit(nogil=True, inline="always")  # inlined where called
def _behind_queue_over_slo(
    queue: float,
    variance: float,
    take: float,
    mu: float,
    per_replica: float,
    cv2: float,
    bound: float,
    slo_s: float,
    service_s: np.ndarray,
    row: int,
    mass: np.ndarray,
) -> float:
    """The share over the SLO of a tick's ``take`` requests behind a fluid ``queue`` (bound
    ``bound``) served at ``mu`` by ``per_replica`` replicas: at each of the WAIT_POINTS, one
    replica's queue ahead (``_queue_over_slo``: the fluid share, its wander ``variance``, the
    randomness of the completions ahead)."""
    mu_replica = max(np.divide(mu, per_replica), 1e-12)
    bound_replica = np.divide(bound, per_replica)
    share = 0.0
    for w in range(len(WAIT_POINTS)):
        ahead = np.divide(max(queue + (take - mu) * WAIT_POINTS[w], 0.0), per_replica)
        share += _queue_over_slo(
            min(ahead, bound_replica), variance, ahead * cv2, bound_replica, mu_replica, slo_s, service_s, row, mass
        )
    return share / len(WAIT_POINTS)


@numba.njit(nogil=True, inline="always")  # inlined where called
def _cycle_over_slo(longest: float, slo_s: float, over: np.ndarray, base: int) -> float:
    """P(latency > SLO) of requests whose waits spread evenly from 0 to ``longest`` (s), each then
    as latent as table row ``base`` says (the server's own queue at its mean utilisation): the
    over-SLO table at what each wait leaves of the SLO, averaged over the slots' waits."""
    p_over = 0.0
    for s in range(N_SLOTS):
        low, frac = _threshold_step(longest * (s + 0.5) / N_SLOTS, slo_s)
        row = base * (THRESHOLD_STEPS + 1) + low
        p_over += 1.0 if low < 0 else over[row] * (1 - frac) + over[row + 1] * frac
    return p_over / N_SLOTS


@numba.njit(nogil=True, inline="always")  # inlined where called
def _phase_law(
    v: int,
    k: int,
    n_cores: int,
    n_rho: int,
    knee: tuple[float, float, float, float],
    slo_s: float,
    service_s: np.ndarray,
    mass: np.ndarray,
    phases: Phases,
) -> float:
    """``_bounded_over_slo`` for variant ``v``'s phase ``k`` (``knee``: its ``_knee``), once per
    phase; 1 where the bounded queue's law is far from being read (2 d b / s2 below -KNEE_SPAN)."""
    beta, bound, mu_replica, _ = knee
    if not beta * bound > -KNEE_SPAN or bound <= 0.0:
        return 1.0
    cell = (v * n_cores + phases.cores[k, v]) * n_rho
    return _bounded_over_slo(beta, bound, mu_replica, slo_s, service_s, cell, mass)


@numba.njit(nogil=True, inline="always")  # inlined where called
def _over_slo(
    v: int,
    n_cores: int,
    arrivals: float,
    count_var: float,
    interleaved: bool,
    round_robin: bool,
    queue_factor: float,
    latency: LatencyTable,
    atoms: LatencyAtoms,
    phases: Phases,
    record: TickRecord,
    groups: LatencyGroups,
) -> float:
    """Steps 3-4 for variant ``v`` (of a profile with ``n_cores`` core counts, 0..C): each tick's
    requests at the wait points and queue spreads, whether over the SLO, gathered per group of ticks
    (``_ticks_per_group``) into ``groups`` (empty on entry). Without a queue every slot waits 0 on
    one table row; behind one the requests at each wait point are over the SLO as one replica's
    queue makes them (``_queue_over_slo``), and each slot waits its own time (``_slot_waits``) for
    the quantiles. Returns the requests over the SLO."""
    slo_s, n_rho, over = latency.slo_s, latency.n_rho, latency.over
    service_s, atom_mass = atoms.atoms_s, atoms.atom_mass
    cap_of, mu_of, cv2_of, per_replica_of = phases.cap, phases.mu, phases.cv2, phases.per_replica
    cores_of, ready = phases.cores, phases.ready
    queue_t, variance_t, take_t, recent_t = record.queue, record.variance, record.take, record.recent_rho
    group_mass, group_wait, group_row = groups.mass, groups.wait, groups.row
    n_ticks = take_t.shape[1]
    group = _ticks_per_group(n_ticks)
    knee = (
        _knee(v, 0, arrivals, count_var, interleaved, round_robin, queue_factor, phases, record),
        _knee(v, 1, arrivals, count_var, interleaved, round_robin, queue_factor, phases, record),
    )
    # the bounded queue's steady-state share over the SLO, per phase (where it could be read)
    law = (
        _phase_law(v, 0, n_cores, n_rho, knee[0], slo_s, service_s, atom_mass, phases),
        _phase_law(v, 1, n_cores, n_rho, knee[1], slo_s, service_s, atom_mass, phases),
    )
    settled = False  # whether the phase's queue has filled half its bound (its steady state is near)
    over_v = 0.0
    for g in range(group_mass.shape[0]):
        for j in range(group):
            t = g * group + j
            middle = j == group // 2
            k = int(ready[v] <= t)
            if t == 0 or k != int(ready[v] <= t - 1):
                settled = False
            take_v = take_t[v, t]
            mu = mu_of[k, v]
            cell = (v * n_cores + cores_of[k, v]) * n_rho
            here = _table_row(cell, recent_t[t], n_rho)  # the table row at the tick's utilisation
            beta, bound_knee, _, relax_s = knee[k]
            settled = settled or queue_t[v, t] >= 0.5 * queue_factor * cap_of[k, v]
            quiet = queue_t[v, t] == 0.0 and variance_t[v, t] == 0.0 and take_v <= mu
            # quota: receiving its cycle's requests in part of the cycle, faster than it serves, it
            # queues them in the cycle: the last waits this long
            on = record.on_fraction[v, t]
            cycle_wait = np.divide(max(take_v - on * mu, 0.0) * record.cycle_s[t], max(mu, 1e-12)) if on < 1.0 else 0.0
            if settled and 0.0 < beta * bound_knee < KNEE_SPAN and relax_s <= KNEE_RELAX_S:
                # just past saturation, its queue long in use and quick to spread over its bound: the
                # bounded queue's steady state (a queue that drains, or a large server's, which stays
                # full for minutes, is a transient the fluid follows)
                over_v += take_v * law[k]
            elif quiet and cycle_wait > 0.0:
                over_v += take_v * _cycle_over_slo(cycle_wait, slo_s, over, here)
            elif quiet:
                p_over = over[here * (THRESHOLD_STEPS + 1) + THRESHOLD_STEPS]
                if beta * bound_knee > -KNEE_SPAN:  # the table's queue is unbounded: at most the bounded one's
                    p_over = min(p_over, law[k])
                over_v += take_v * p_over
            else:
                over_v += take_v * _behind_queue_over_slo(
                    queue_t[v, t],
                    variance_t[v, t],
                    take_v,
                    mu,
                    per_replica_of[k, v],
                    cv2_of[k, v],
                    queue_factor * cap_of[k, v],
                    slo_s,
                    service_s,
                    cell,
                    atom_mass,
                )
            # the latency quantiles' slots: every slot at wait 0 on one table row, or each its own wait
            if quiet and cycle_wait > 0.0:  # waits spread evenly up to the cycle's
                for s in range(N_SLOTS):
                    mass = take_v / N_SLOTS
                    group_mass[g, s] += mass
                    group_wait[g, s] += mass * cycle_wait * (s + 0.5) / N_SLOTS
                    if middle:
                        group_row[g, s] = here
            elif quiet:
                for s in range(N_SLOTS):
                    mass = take_v * (SPREAD_WEIGHTS[s % len(SPREAD_NODES)] / len(WAIT_POINTS))
                    group_mass[g, s] += mass
                    if middle:
                        group_row[g, s] = here
            else:
                longest_wait = queue_factor * cap_of[k, v] / max(mu, 1e-12)
                waits = _slot_waits(
                    queue_t[v, t], variance_t[v, t], take_v, mu, per_replica_of[k, v], cv2_of[k, v], longest_wait
                )
                for s in range(N_SLOTS):
                    wait = waits[s]
                    # behind a queue only the service time is left (the table's lightest load)
                    base = _table_row(cell, 0.0, n_rho) if wait > 0.0 else here
                    mass = take_v * (SPREAD_WEIGHTS[s % len(SPREAD_NODES)] / len(WAIT_POINTS))
                    group_mass[g, s] += mass
                    group_wait[g, s] += mass * wait
                    if middle:
                        group_row[g, s] = base
    return over_v


@numba.njit(nogil=True, inline="always")  # inlined where called
def _latency_histogram(v: int, atoms: LatencyAtoms, groups: LatencyGroups) -> tuple[int, int]:
    """Variant ``v``'s latency atoms into its histogram (``groups.hist[v]``): each group's latency
    quantiles shifted by its mean wait (the shifted atoms rise with their level, so their bins walk
    up the edges from the first one's); the slots that wait for nothing on the same table row are
    one component (``_add_unwaited``). Returns the range of bins in use (``N_BINS, -1``: none)."""
    values, bins, mass, edges = atoms.atoms_s, atoms.atom_bins, atoms.atom_mass, atoms.bin_edges
    group_mass, group_wait, group_row = groups.mass, groups.wait, groups.row
    hv = groups.hist[v]
    first, last = N_BINS, -1
    for g in range(group_mass.shape[0]):
        pending = 0.0
        pending_row = -1
        for s in range(N_SLOTS):
            requests = group_mass[g, s]
            if requests == 0.0:
                continue
            wait = group_wait[g, s] / max(requests, 1e-300)
            row = group_row[g, s]
            if wait == 0.0:
                if row != pending_row:
                    first, last = _add_unwaited(hv, bins, mass, pending_row, pending, first, last)
                    pending_row, pending = row, 0.0
                pending += requests
                continue
            b = latency_bin(wait + values[row, 0], BIN_LOW_S, BIN_SCALE, N_BINS)
            first = min(first, b)
            for j in range(mass.size):
                value = wait + values[row, j]
                while value >= edges[b + 1]:
                    b += 1
                hv[b] += requests * mass[j]
            last = max(last, b)
        first, last = _add_unwaited(hv, bins, mass, pending_row, pending, first, last)
    return first, last


@numba.njit(nogil=True, inline="always")  # inlined where called
def _finish_loads(n: int, cluster: ClusterState, ready: np.ndarray, n_ticks: int, out: IntervalOutputs) -> None:
    """Environment ``n``'s loads after the interval: the targets whose load finished serve, the
    others have ``n_ticks`` seconds less left."""
    replicas, cores, loading_left_s = cluster.replicas, cluster.cores, cluster.loading_left_s
    serving_out, queues_out = out.serving, out.queues
    for v in range(ready.size):
        if ready[v] <= n_ticks:
            serving_out[0, n, v] = replicas[n, v]
            serving_out[1, n, v] = cores[n, v]
        else:
            queues_out[0, n, v] = loading_left_s[n, v] - n_ticks


@numba.njit(nogil=True, inline="always")  # inlined where called
def _count_variance(per_tick: np.ndarray, n: int) -> float:
    """How environment ``n``'s count per second varies over the interval (its variance)."""
    n_ticks = per_tick.shape[1]
    mean = 0.0
    for t in range(n_ticks):
        mean += per_tick[n, t] / n_ticks
    spread = 0.0
    for t in range(n_ticks):
        spread += (per_tick[n, t] - mean) ** 2 / n_ticks
    return spread


@compiled(INTERVAL_SIGNATURE)
def interval(
    cluster: ClusterState,
    per_tick: np.ndarray,
    dispatch: Dispatch,
    rates: ServerRates,
    latency: LatencyTable,
    atoms: LatencyAtoms,
    out: IntervalOutputs,
) -> None:
    """One interval of ``per_tick`` arrivals (N, T) for the N clusters of ``cluster`` (arrays (N,
    V)): the rules of ``sim.fast``'s docstring, steps 1-4, and the interval's quantiles, written
    into ``out``. The tables are ``sim.fast.ServerTables``'s.

    Per environment: its phases and queues (``_start_environment``); each tick's split (step 1:
    written out, the weights of ``proportional`` and ``quota`` from ``_capacity_weights``,
    ``_rounded_quotas`` and ``_quota_weights``), admission (``_admit``, ``_spill_over``) and queues
    (``_serve_tick``); each visited variant's service (``_throughput``), utilisation
    (``_recent_utilisation``), requests over the SLO (``_over_slo``) and latency quantiles
    (``_latency_histogram``); and the loads that finished (``_finish_loads``). Only the variants
    that serve, will serve or hold a queue are visited: the others have no capacity, so the
    dispatcher gives them nothing and every sum over them adds zeros. (About a hundred lines: the
    loops over ticks and variants, the splits and the errors are here for the reasons the module
    docstring gives.)"""
    cluster, dispatch, rates = ClusterState(*cluster), Dispatch(*dispatch), ServerRates(*rates)
    latency, atoms, out = LatencyTable(*latency), LatencyAtoms(*atoms), IntervalOutputs(*out)
    n_env, n_ticks = per_tick.shape
    n_var = cluster.replicas.shape[1]
    n_cores = rates.capacity_rps.shape[1]
    dispatcher, queue_factor, quotas_planned = dispatch.dispatcher, dispatch.queue_factor, dispatch.quotas_planned
    round_robin = dispatch.replica_routing == ROUND_ROBIN_REPLICA
    window = UTILISATION_WINDOW_S
    if not _outputs_fit(out, n_env, n_var):
        raise ValueError("fast simulator: an output array has the wrong shape")
    _start_outputs(cluster, out)
    queues_out, by_variant, by_env = out.queues, out.by_variant, out.by_env
    phases, flow, record, groups = _scratch(n_var, n_ticks)
    visited, queue, variance, arrivals_window = phases.visited, flow.queue, flow.variance, record.arrivals_window
    cap_of, ready, routed, weight = phases.cap, phases.ready, flow.routed, flow.weight
    hist = groups.hist
    overall = hist[n_var]
    for n in range(n_env):
        n_visited, switch_tick, problem = _start_environment(n, cluster, rates, n_ticks, phases, flow)
        if problem == LOADING_NAN:
            raise ValueError("fast simulator: loading_left_s holds NaN")
        if problem == CORES_OUTSIDE:
            raise ValueError("fast simulator: a deployment's cores are outside the profile's 0..C or replicas < 0")
        # the quota dispatcher routes the planned quotas from the second every load is done
        planned = dispatcher == QUOTA and _quotas_planned(n, quotas_planned)
        planned_from = switch_tick if planned else np.inf
        arrivals = peak = dropped = lost = rate_sum = 0.0
        count_var = _count_variance(per_tick, n)
        for t in range(n_ticks):
            rate = per_tick[n, t]
            if not 0.0 <= rate < np.inf:
                raise ValueError("fast simulator: per_tick holds a count that is negative, infinite or NaN")
            arrivals += rate
            peak = max(peak, rate) if t > 0 else rate
            rate_sum += rate
            if t >= window:
                rate_sum -= per_tick[n, t - window]
            arrivals_window[t] = rate_sum
            # 1. the dispatcher's split (written out: see the module docstring)
            if dispatcher == ACCURACY_FIRST:  # each variant up to its capacity, most accurate first
                after = 0.0
                for i in range(n_visited - 1, -1, -1):
                    v = visited[i]
                    cap = cap_of[int(ready[v] <= t), v]
                    routed[v] = min(max(rate - after, 0.0), cap)
                    after += cap
            else:  # in proportion to capacity, or to the round robin's integer quotas
                total = _capacity_weights(t, phases, n_visited, flow)
                if dispatcher == QUOTA:
                    given = _rounded_quotas(n, t >= planned_from, dispatch, phases, n_visited, flow)
                    total = _quota_weights(given, phases, n_visited, flow)
                    _quota_cycle(t, rate, total, phases, n_visited, flow, record)
                for i in range(n_visited):
                    v = visited[i]
                    routed[v] = rate * weight[v] / max(total, 1e-300)
            admitted, lost = _admit(t, queue_factor, phases, n_visited, flow, lost)
            if dispatcher == ACCURACY_FIRST:
                admitted = _spill_over(rate, admitted, phases, n_visited, flow)
            dropped += max(rate - admitted, 0.0)
            _serve_tick(
                t, rate, count_var, dispatcher == QUOTA, round_robin, queue_factor, phases, n_visited, flow, record
            )
        by_env[0, n], by_env[1, n], by_env[3, n], by_env[4, n] = arrivals, peak, dropped, lost

        over_total = 0.0
        all_first, all_last = N_BINS, -1  # the bins in use in the overall histogram
        for i in range(n_visited):
            v = visited[i]
            queues_out[1, n, v] = queue[v]
            queues_out[2, n, v] = variance[v]
            served_v, done_v, mu_v = _throughput(v, phases, record)
            by_variant[1, n, v] = served_v
            by_variant[2, n, v] = done_v / max(mu_v, 1e-12)
            if served_v == 0.0:
                continue  # in SLO 0, nothing over it, no latency
            _recent_utilisation(v, dispatcher == QUOTA, round_robin, phases, record)
            groups.mass[:] = 0.0  # each variant's latency groups start empty
            groups.wait[:] = 0.0
            over_v = _over_slo(
                v,
                n_cores,
                arrivals,
                count_var,
                dispatcher == QUOTA,
                round_robin,
                queue_factor,
                latency,
                atoms,
                phases,
                record,
                groups,
            )
            by_variant[0, n, v] = max(served_v - over_v, 0.0)
            over_total += min(over_v, served_v)
            first, last = _latency_histogram(v, atoms, groups)
            all_first, all_last = min(all_first, first), max(all_last, last)
            # this variant's quantiles; its histogram then joins the overall one
            by_variant[3, n, v], by_variant[4, n, v] = _p50_p99_ms(
                hist[v], first, last, BIN_LOW_S, BIN_SCALE, overall, True
            )
        by_env[2, n] = over_total
        by_env[5, n], by_env[6, n] = _p50_p99_ms(overall, all_first, all_last, BIN_LOW_S, BIN_SCALE, overall, False)
        _finish_loads(n, cluster, phases.ready, n_ticks, out)
