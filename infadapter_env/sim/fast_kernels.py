"""The fast simulator's interval, compiled by numba: ``interval`` runs the rules of ``sim.fast``'s
docstring for N environments in one loop over them (dispatch, admission, the fluid queues, each
tick's latencies at its wait points, the interval's quantiles from a histogram of latency atoms).
At five variants numpy's calls cost more than the arithmetic, for one environment and for a
thousand; the loop replaced a numpy steady path, a numpy tick path and two smaller kernels.
Compiled at import with one explicit signature (about 20 s once per machine, then loaded from
numba's disk cache)."""

from __future__ import annotations

import math

import numba
import numpy as np

from infadapter_env.jit import compiled

# The model's constants (``sim.fast``'s docstring explains them); numba reads them as constants.
RHO_STEP = 0.005  # the utilisation grid of the latency tables
RHO_MAX = 0.99
THRESHOLD_STEPS = 64  # the over-SLO table's remaining-budget grid: SLO x j / 64
WAIT_POINTS = (0.25, 0.75)  # where in a tick the fluid wait of its admitted requests is read
# A replica's queue around the fluid one: three-point Gauss-Hermite nodes (standard deviations) and weights.
SPREAD_NODES = (-(3**0.5), 0.0, 3**0.5)
SPREAD_WEIGHTS = (1 / 6, 2 / 3, 1 / 6)
UTILISATION_WINDOW_S = 10  # the latency tables are read at the utilisation averaged over this window
# Latency histogram for the interval quantiles: log-spaced bins from 1 ms to 100 s (7.5 % wide). Its
# atoms come from groups of this many ticks (their waits averaged), which costs a fifth of per-tick atoms.
QUANTILE_GROUP_S = 5
BIN_LOW_S, BIN_HIGH_S, N_BINS = 1e-3, 100.0, 160
BIN_SCALE = N_BINS / math.log(BIN_HIGH_S / BIN_LOW_S)  # bins per e-fold


# ----------------------------------------------------------------------------- the whole interval
ACCURACY_FIRST, PROPORTIONAL, QUOTA = 0, 1, 2  # dispatcher codes (``sim.fast.DISPATCHERS`` order)


# Each kernel has one explicit signature, compiled at import (or loaded from the disk cache): two
# processes compiling different specialisations at once can leave numba's cache index pointing at
# the other one's code. Inputs are read-only arrays of any layout (writable and C arrays convert).
def readonly(dtype: str, ndim: int) -> numba.types.Array:
    """The numba type of a read-only array of ``dtype`` with ``ndim`` dimensions, any layout."""
    return numba.types.Array(getattr(numba.types, dtype), ndim, "A", readonly=True)


_I2, _F1, _F2 = readonly("int64", 2), readonly("float64", 1), readonly("float64", 2)
_i8, _f8 = numba.types.int64, numba.types.float64
# The outputs are arrays the caller allocates (numba boxes each array a kernel returns at a cost of
# about 0.9 us, three times the cost of allocating it in Python and passing it in).
INTERVAL_SIGNATURE = numba.types.none(
    *([_I2] * 4 + [_F2] * 3 + [_F2] * 3 + [_F2] * 3 + [_F1, _F2, _I2, _F1, _F1] + [_i8, _f8, _i8, _f8]),
    numba.types.int64[:, :, ::1],
    numba.types.float64[:, :, ::1],
    numba.types.float64[:, :, ::1],
    _f8[:, ::1],
)


@numba.njit(nogil=True, inline="always")  # inlined where called
def effective_rho(rho: float, share: float, cv2: float, mu_replica: float, rho_max: float) -> float:
    """The utilisation at which Poisson arrivals (what the latency tables hold) queue as the
    stream a server really gets: a random ``share`` of each second's count, which the trace fixes.

    Kingman: the wait scales with (ca^2 + cs^2) / 2. Over windows shorter than a second the stream is
    Poisson-like (ca^2 = 1: random times); over a second or more its counts vary only by the random
    share (ca^2 = 1 - share). The queue remembers about ``1 / (mu (1 - sqrt(rho))^2)`` seconds, which
    weighs the two. The table is then read where rho / (1 - rho) is scaled by the same factor."""
    rho = min(rho, rho_max)
    relax_s = 1.0 / max(mu_replica * (1.0 - np.sqrt(rho)) ** 2, 1e-9)
    ca2 = 1.0 - share * relax_s / (relax_s + 1.0)
    factor = (ca2 + cv2) / (1.0 + cv2)
    g = factor * rho / (1.0 - rho)
    return g / (1.0 + g)


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


@compiled(INTERVAL_SIGNATURE)
def interval(
    replicas: np.ndarray,
    cores: np.ndarray,
    serving_replicas: np.ndarray,
    serving_cores: np.ndarray,
    loading_left_s: np.ndarray,
    backlog: np.ndarray,
    backlog_var: np.ndarray,
    per_tick: np.ndarray,
    quotas_current: np.ndarray,
    quotas_planned: np.ndarray,
    capacity_rps: np.ndarray,
    service_rps: np.ndarray,
    service_cv: np.ndarray,
    over: np.ndarray,
    atoms: np.ndarray,
    bins: np.ndarray,
    atom_mass: np.ndarray,
    edges: np.ndarray,
    n_rho: int,
    slo_s: float,
    dispatcher: int,
    queue_factor: float,
    serving_out: np.ndarray,
    queues_out: np.ndarray,
    by_variant: np.ndarray,
    by_env: np.ndarray,
) -> None:
    """One interval of ``per_tick`` arrivals (N, T) for N clusters (arrays (N, V)): the rules of
    ``sim.fast``'s docstring, steps 1-4, and the interval's quantiles.

    ``quotas_current``/``quotas_planned`` (N, V): the ``quota`` dispatcher's quotas (NaN: none set;
    read only with ``dispatcher == QUOTA``). The tables: ``sim.fast.ServerTables``.
    Writes four arrays (their contents on entry do not matter): the new serving replicas and cores
    (2, N, V); the new loading left, backlog and its variance (3, N, V); per variant in SLO, served,
    busy fraction, P50 and P99 in ms (5, N, V); per environment arrivals, peak rate, over SLO,
    dropped, lost, P50 and P99 in ms (7, N) (``sim.fast.simulate_interval`` names them).

    Only the variants that serve, will serve or hold a queue are visited: the others have no
    capacity, so the dispatcher gives them nothing and every sum over them adds zeros."""
    rho_step, rho_max, threshold_steps, window = RHO_STEP, RHO_MAX, THRESHOLD_STEPS, UTILISATION_WINDOW_S
    wait_points, spread_nodes, spread_weights = WAIT_POINTS, SPREAD_NODES, SPREAD_WEIGHTS
    low_s, scale, n_bins = BIN_LOW_S, BIN_SCALE, N_BINS
    group_s = QUANTILE_GROUP_S
    n_env, n_ticks = per_tick.shape
    n_var = replicas.shape[1]
    n_cores = capacity_rps.shape[1]
    n_x = len(wait_points)
    n_z = len(spread_nodes)
    slots = n_x * n_z
    n_levels = atom_mass.size
    if (
        serving_out.shape != (2, n_env, n_var)
        or queues_out.shape != (3, n_env, n_var)
        or by_variant.shape != (5, n_env, n_var)
        or by_env.shape != (7, n_env)
    ):
        raise ValueError("fast simulator: an output array has the wrong shape")
    serving_out[0] = serving_replicas
    serving_out[1] = serving_cores
    queues_out[:] = 0.0  # loading left, backlog, its variance
    by_variant[:] = 0.0  # in SLO, served, busy, P50, P99
    by_env[:] = 0.0  # arrivals, peak, over SLO, dropped, lost, P50, P99
    # One environment's two phases per variant (V,): 0 = what serves until the target is ready
    # (from tick ``ready``), 1 = the target. Capacity at the SLO, service rate, service CV^2,
    # replicas (at least 1: what a queue is shared by) and cores. (Scratch is allocated in a few
    # blocks: at N = 1 each allocation counts.)
    phases = np.zeros((4, 2, n_var))
    cap_of, mu_of, cv2_of, per_replica_of = phases[0], phases[1], phases[2], phases[3]
    integers = np.zeros((4, n_var), dtype=np.int64)
    cores_of, ready, visited = integers[0:2], integers[2], integers[3]  # visited: see the docstring
    # one environment's ticks per variant (V, T), reused
    ticks = np.zeros((4, n_var, n_ticks))
    queue_t, variance_t, take_t, done_t = ticks[0], ticks[1], ticks[2], ticks[3]
    per_tick_scratch = np.zeros((2, n_ticks))
    recent_t, rate_window = per_tick_scratch[0], per_tick_scratch[1]  # rate_window: the last ``window`` ticks' arrivals
    per_variant = np.zeros((7, n_var))
    queue, variance, routed, weight, room, take, refused = (
        per_variant[0],
        per_variant[1],
        per_variant[2],
        per_variant[3],
        per_variant[4],
        per_variant[5],
        per_variant[6],
    )
    group = group_s if n_ticks % group_s == 0 else 1
    n_groups = n_ticks // group
    groups = np.zeros((2, n_groups, slots))
    group_mass, group_wait = groups[0], groups[1]
    group_row = np.zeros((n_groups, slots), dtype=np.int64)
    hist = np.zeros((n_var + 1, n_bins))  # one variant's, and the last row: every variant together
    for n in range(n_env):
        # What serves at each tick: the target from the second its load finishes.
        switch_tick = 0.0
        n_visited = 0
        for v in range(n_var):
            ready_s = np.ceil(loading_left_s[n, v])
            if np.isnan(ready_s):
                raise ValueError("fast simulator: loading_left_s holds NaN")
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
                if not used:
                    r, c = 0, 0
                elif not (0 <= c < n_cores and r >= 0):
                    raise ValueError(
                        "fast simulator: a deployment's cores are outside the profile's 0..C or replicas < 0"
                    )
                cap_of[k, v] = r * capacity_rps[v, c]
                mu_of[k, v] = r * service_rps[v, c]
                cv2_of[k, v] = service_cv[v, c] ** 2
                per_replica_of[k, v] = max(r, 1)
                cores_of[k, v] = c
                visit = visit or cap_of[k, v] > 0.0 or mu_of[k, v] > 0.0
            if visit:
                visited[n_visited] = v
                n_visited += 1
        planned_set = False
        if dispatcher == QUOTA:
            for v in range(n_var):
                if not np.isnan(quotas_planned[n, v]):
                    planned_set = True
        arrivals = 0.0
        peak = 0.0
        dropped = 0.0
        lost = 0.0
        rate_sum = 0.0
        for t in range(n_ticks):
            rate = per_tick[n, t]
            if not 0.0 <= rate < np.inf:
                raise ValueError("fast simulator: per_tick holds a count that is negative, infinite or NaN")
            arrivals += rate
            peak = max(peak, rate) if t > 0 else rate
            rate_sum += rate
            if t >= window:
                rate_sum -= per_tick[n, t - window]
            rate_window[t] = rate_sum
            # 1. the dispatcher's split
            if dispatcher == ACCURACY_FIRST:
                after = 0.0
                for i in range(n_visited - 1, -1, -1):
                    v = visited[i]
                    cap = cap_of[int(ready[v] <= t), v]
                    routed[v] = min(max(rate - after, 0.0), cap)
                    after += cap
            else:
                for i in range(n_visited):
                    v = visited[i]
                    weight[v] = cap_of[int(ready[v] <= t), v]
                if dispatcher == QUOTA:  # the round robin's integer quotas, over the variants that serve
                    given = 0.0
                    use_planned = planned_set and t >= switch_tick
                    for i in range(n_visited):
                        v = visited[i]
                        q = quotas_planned[n, v] if use_planned else quotas_current[n, v]
                        routed[v] = np.rint(q) if weight[v] > 0.0 and not np.isnan(q) else 0.0
                        given += routed[v]
                    for i in range(n_visited):
                        v = visited[i]
                        weight[v] = routed[v] if given > 0.0 else np.rint(weight[v])
                total = 0.0
                for i in range(n_visited):
                    total += weight[visited[i]]
                for i in range(n_visited):
                    v = visited[i]
                    routed[v] = rate * weight[v] / max(total, 1e-300)
            # 2.-3. admission, spill-over, the queues
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
            if dispatcher == ACCURACY_FIRST:  # what one variant cannot admit goes to the next with room
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
            dropped += max(rate - admitted, 0.0)
            for i in range(n_visited):
                v = visited[i]
                k = int(ready[v] <= t)
                mu = mu_of[k, v]
                queue_t[v, t] = queue[v]
                variance_t[v, t] = variance[v]
                take_t[v, t] = take[v]
                done = min(queue[v] + take[v], mu)
                done_t[v, t] = done
                queue[v] = queue[v] + take[v] - done
                # One replica's queue wanders around the fluid one: a diffusion whose variance grows
                # while the queue lasts, up to what the drift of the offered load allows (against a
                # barrier a diffusion with drift d and variance rate s2 stays within about s2 / (2 |d|)
                # of it), never beyond half the queue's bound. A full queue's drift counts all that
                # was offered to it.
                if queue[v] > 0.0:
                    per_replica = per_replica_of[k, v]
                    growth = (take[v] + mu * cv2_of[k, v]) / per_replica
                    offered = take[v] + refused[v]
                    half_bound = queue_factor * cap_of[k, v] / per_replica / 2
                    reach = min(growth / max(2.0 * abs(offered - mu) / per_replica, 1e-12), half_bound)
                    variance[v] = min(variance[v] + growth, reach * reach)
                else:
                    variance[v] = 0.0
        by_env[0, n], by_env[1, n], by_env[3, n], by_env[4, n] = arrivals, peak, dropped, lost
        over_total = 0.0
        all_first, all_last = n_bins, -1  # the bins in use in the overall histogram
        for i in range(n_visited):
            v = visited[i]
            queues_out[1, n, v] = queue[v]
            queues_out[2, n, v] = variance[v]
            served_v = 0.0
            done_v = 0.0
            mu_v = 0.0
            for t in range(n_ticks):
                served_v += take_t[v, t]
                done_v += done_t[v, t]
                mu_v += mu_of[int(ready[v] <= t), v]
            by_variant[1, n, v] = served_v
            by_variant[2, n, v] = done_v / max(mu_v, 1e-12)
            if served_v == 0.0:
                continue  # in SLO 0, nothing over it, no latency
            # The utilisation the latency tables are read at: the last ``window`` ticks' load, made
            # effective for the burstiness of what one replica receives (``effective_rho``).
            load_sum = 0.0
            mu_sum = 0.0
            for t in range(n_ticks):
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
                share = load / max(rate_window[t] / count, 1e-12)
                per_replica = per_replica_of[k, v]
                recent_t[t] = effective_rho(
                    load / max(capacity, 1e-12), share / per_replica, cv2_of[k, v], capacity / per_replica, rho_max
                )
            # 3.-4. each tick's requests at the wait points and queue spreads: over the SLO, and the
            # atoms of the interval's quantiles (grouped by ``group`` ticks)
            over_v = 0.0
            group_mass[:] = 0.0
            group_wait[:] = 0.0
            for t in range(n_ticks):
                k = int(ready[v] <= t)
                take_v = take_t[v, t]
                mu = mu_of[k, v]
                g = t // group
                middle = t == g * group + group // 2
                cell = (v * n_cores + cores_of[k, v]) * n_rho
                if queue_t[v, t] == 0.0 and variance_t[v, t] == 0.0 and take_v <= mu:
                    # nothing ahead at any wait point: every slot at wait 0 (the same table row)
                    base = cell + min(int(min(recent_t[t], rho_max) * (1.0 / rho_step) + 0.5), n_rho - 1)
                    p_over = over[base * (threshold_steps + 1) + threshold_steps]
                    for s in range(slots):
                        mass = take_v * (spread_weights[s % n_z] / n_x)
                        over_v += mass * p_over
                        group_mass[g, s] += mass
                        if middle:
                            group_row[g, s] = base
                    continue
                safe_mu = max(mu, 1e-12)
                per_replica = per_replica_of[k, v]
                mu_replica = max(mu / per_replica, 1e-12)
                scatter = (1.0 - 1.0 / per_replica + cv2_of[k, v]) / per_replica
                longest_wait = queue_factor * cap_of[k, v] / safe_mu
                for x in range(n_x):
                    ahead = max(queue_t[v, t] + (take_v - mu) * wait_points[x], 0.0)
                    spread = np.sqrt(variance_t[v, t] + ahead * scatter) / mu_replica
                    for z in range(n_z):
                        s = x * n_z + z
                        wait = min(max(ahead / safe_mu + spread_nodes[z] * spread, 0.0), longest_wait)
                        # behind a queue only the service time is left (the table's lightest load)
                        rho = 0.0 if wait > 0.0 else recent_t[t]
                        base = cell + min(int(min(rho, rho_max) * (1.0 / rho_step) + 0.5), n_rho - 1)
                        budget = 1.0 - wait / slo_s
                        if budget <= 0.0:
                            p_over = 1.0
                        else:
                            position = min(budget, 1.0) * threshold_steps
                            low = min(int(position), threshold_steps - 1)
                            frac = position - low
                            row = base * (threshold_steps + 1) + low
                            p_over = over[row] * (1 - frac) + over[row + 1] * frac
                        mass = take_v * (spread_weights[z] / n_x)
                        over_v += mass * p_over
                        group_mass[g, s] += mass
                        group_wait[g, s] += mass * wait
                        if middle:
                            group_row[g, s] = base
            by_variant[0, n, v] = max(served_v - over_v, 0.0)
            over_total += min(over_v, served_v)
            # The atoms: each group's latency quantiles shifted by its mean wait, into this variant's
            # histogram. Slots that wait for nothing on the same table row are one component.
            hv = hist[v]
            first, last = n_bins, -1  # the bins in use
            for g in range(n_groups):
                pending = 0.0
                pending_row = -1
                for s in range(slots):
                    requests = group_mass[g, s]
                    if requests == 0.0:
                        continue
                    wait = group_wait[g, s] / max(requests, 1e-300)
                    row = group_row[g, s]
                    if wait == 0.0:
                        if row != pending_row:
                            first, last = _add_unwaited(hv, bins, atom_mass, pending_row, pending, first, last)
                            pending_row, pending = row, 0.0
                        pending += requests
                        continue
                    # the atoms shifted by the wait rise with j: their bins walk up the edges from
                    # the first one's
                    b = latency_bin(wait + atoms[row, 0], low_s, scale, n_bins)
                    first = min(first, b)
                    for j in range(n_levels):
                        value = wait + atoms[row, j]
                        while value >= edges[b + 1]:
                            b += 1
                        hv[b] += requests * atom_mass[j]
                    last = max(last, b)
                first, last = _add_unwaited(hv, bins, atom_mass, pending_row, pending, first, last)
            all_first, all_last = min(all_first, first), max(all_last, last)
            # this variant's quantiles; its histogram then joins the overall one
            by_variant[3, n, v], by_variant[4, n, v] = _p50_p99_ms(hv, first, last, low_s, scale, hist[n_var], True)
        by_env[2, n] = over_total
        by_env[5, n], by_env[6, n] = _p50_p99_ms(hist[n_var], all_first, all_last, low_s, scale, hist[n_var], False)
        # the loads that finished
        for v in range(n_var):
            if ready[v] <= n_ticks:
                serving_out[0, n, v] = replicas[n, v]
                serving_out[1, n, v] = cores[n, v]
            else:
                queues_out[0, n, v] = loading_left_s[n, v] - n_ticks
