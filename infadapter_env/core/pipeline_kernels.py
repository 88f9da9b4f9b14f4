"""The step pipeline's compiled pieces (numba), each one loop over the environments in place of
dozens of numpy calls (which cost more than the arithmetic at N = 1 and a pass over memory each at
N = 1024): ``decode`` turns checked actions into deployments; ``report`` reads an interval's result
(from either simulator) and writes the info's numbers and the observation.

The objective's formulas that the report kernel applies live here, compiled, and ``objective``
calls the same functions as plain Python (their ``py_func``): numba's disk cache does not see
changes to functions of other files, so a kernel's callees must be in its own file.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from infadapter_env.jit import compiled
from infadapter_env.sim.fast_kernels import readonly

# Each kernel has one explicit signature (``sim.fast_kernels`` says why).
float32, float64, int8, int64 = (getattr(numba.types, name) for name in ("float32", "float64", "int8", "int64"))
_I1, _I2, _F1, _F2 = readonly("int64", 1), readonly("int64", 2), readonly("float64", 1), readonly("float64", 2)

# The rows of ``report``'s outputs, the info keys they become (``pipeline.StepReport``): the service as
# a whole (summed over its variants), then each variant.
SERVICE_FLOATS = (
    "arrivals",
    "mean_rate_rps",
    "peak_rate_rps",
    "served_in_slo",
    "violated",
    "over_slo",
    "dropped",
    "lost_on_removal",
    "slo_violation_rate",
    "drop_rate",
    "latency_p50_ms",
    "latency_p99_ms",
    "aa_effective",
    "aa_planned",
    "cores",  # total cores (whole numbers)
    "rc",
    "lc",
    "reward",  # the objective with AA effective
    "objective_planned",  # the objective with AA planned
)
VARIANT_FLOATS = (
    "served_in_slo_by_variant",
    "latency_p50_ms_by_variant",
    "latency_p99_ms_by_variant",
    "capacity_rps",
    "loading_left_s",
    "utilisation",
    "backlog",
)
# The observation fields ``report`` writes, in the order of ``ObservationBounds.starts`` (the weights,
# the resource cost and the available cores are written by ``pipeline.StepPipeline``).
OBSERVED = (
    "MINUTE_PEAKS",
    "MEAN_RATE",
    "PEAK_RATE",
    "CORES",
    "REPLICAS",
    "LOADING_LEFT",
    "UTILISATION",
    "BACKLOG",
    "VIOLATION_RATE",
    "DROP_RATE",
    "PROGRESS",
    "P99_OVER_SLO",
    "RESOURCE_COST",
)


@numba.njit(nogil=True, inline="always")  # inlined where called
def weighted_objective(aa, rc, lc, alpha, beta, gamma):  # type: ignore[no-untyped-def]
    """``alpha * AA - (beta * RC + gamma * LC)`` (``objective.objective_value``; scalars or arrays)."""
    return alpha * aa - (beta * rc + gamma * lc)


@numba.njit(nogil=True, inline="always")  # inlined where called
def resource_cost(total_cores, budget_cores):  # type: ignore[no-untyped-def]
    """RC: allocated cores over the budget (``objective.resource_cost``; scalars or arrays)."""
    return total_cores / budget_cores


@numba.njit(nogil=True, inline="always")  # inlined where called
def average_accuracy_row(capacity_rps: np.ndarray, accuracy: np.ndarray, rate_rps: float) -> float:
    """``objective.average_accuracy`` of one deployment (capacity (V,), least accurate first)."""
    n_var = capacity_rps.size
    if rate_rps <= 0.0:  # the most accurate variant with capacity, the one a request would reach
        for v in range(n_var - 1, -1, -1):
            if capacity_rps[v] > 0.0:
                return accuracy[v]
        return 0.0
    remaining = rate_rps
    answered = 0.0
    for v in range(n_var - 1, -1, -1):  # the most accurate first, up to its capacity
        if remaining <= 0.0:
            break
        take = min(capacity_rps[v], remaining)
        answered += accuracy[v] * take
        remaining -= take
    return answered / rate_rps


@compiled(float64[::1](_F2, _F1, _F1))
def average_accuracy_batch(capacity_rps: np.ndarray, accuracy: np.ndarray, rate_rps: np.ndarray) -> np.ndarray:
    """``objective.average_accuracy`` for N deployments at once: capacity (N, V), rates (N,)."""
    out = np.empty(rate_rps.size)
    for n in range(rate_rps.size):
        out[n] = average_accuracy_row(capacity_rps[n], accuracy, rate_rps[n])
    return out


# ``report``'s inputs, grouped by meaning: each a plain tuple at the call, in its fields' order,
# named in the kernel (numba types a named tuple argument in Python, about 0.1 us per field, and
# converts only plain tuples to the signature's tuple types).
class IntervalArrays(NamedTuple):
    """An interval's result as ``sim.cluster.IntervalResult`` packs it."""

    by_env: np.ndarray  # (7, N): ``IntervalResult.ENV_FIELDS``
    by_variant: np.ndarray  # (5, N, V): ``IntervalResult.VARIANT_FIELDS``


class DeploymentArrays(NamedTuple):
    """Per environment and variant, (N, V) each: the deployment asked for, the quotas routing at the
    interval's end, and the state after the interval."""

    replicas: np.ndarray  # (int64)
    cores: np.ndarray  # cores per replica (int64)
    routing: np.ndarray  # the quota dispatcher's quotas (NaN: none set)
    loading_left_s: np.ndarray
    backlog: np.ndarray


class Scoring(NamedTuple):
    """What a step is scored by, the same at every step: the profile's capacities and accuracies,
    the settings' interval, SLO and core budget, and the objective's alpha and gamma."""

    per_replica_rps: np.ndarray  # (V, C+1)
    accuracy: np.ndarray  # (V,) least accurate first
    interval_s: float
    slo_ms: float
    budget_cores: float
    alpha: float
    gamma: float


class EpisodeArrays(NamedTuple):
    """Each environment's decision and episode: the decision's loading cost, the episode's beta,
    the observation's minute peaks, and the steps done (of ``n_steps``)."""

    lc: np.ndarray  # (N,)
    beta: np.ndarray  # (N,)
    minute_peaks: np.ndarray  # (N, 10)
    steps_done: np.ndarray  # (N,) int64
    n_steps: int


class ObservationBounds(NamedTuple):
    """Where ``report`` writes the observation and its bounds: the position of each ``OBSERVED``
    field, and the observation's upper bounds (float32)."""

    starts: np.ndarray  # (len(OBSERVED),) int64
    high: np.ndarray  # (SIZE,)


class ReportOutputs(NamedTuple):
    """What ``report`` writes (arrays the caller allocates; their contents on entry do not matter)."""

    service: np.ndarray  # (len(SERVICE_FLOATS), N): the service as a whole
    by_variant: np.ndarray  # (len(VARIANT_FLOATS), N, V)
    obs: np.ndarray  # (N, SIZE) float32


# The kernels write into arrays the caller allocates (``sim.fast_kernels.INTERVAL_SIGNATURE`` says why).
INTERVAL_ARRAYS = numba.types.Tuple((_F2, readonly("float64", 3)))
DEPLOYMENT_ARRAYS = numba.types.Tuple((_I2, _I2, _F2, _F2, _F2))
SCORING = numba.types.Tuple((_F2, _F1, float64, float64, float64, float64, float64))
EPISODE_ARRAYS = numba.types.Tuple((_F1, _F1, _F2, _I1, int64))
OBSERVATION_BOUNDS = numba.types.Tuple((_I1, readonly("float32", 1)))
REPORT_OUTPUTS = numba.types.Tuple((float64[:, ::1], float64[:, :, ::1], float32[:, ::1]))
REPORT_SIGNATURE = numba.types.none(
    INTERVAL_ARRAYS, DEPLOYMENT_ARRAYS, SCORING, EPISODE_ARRAYS, OBSERVATION_BOUNDS, REPORT_OUTPUTS
)


@numba.njit(nogil=True, inline="always")  # inlined where called
def _check_outputs(out: ReportOutputs, n_env: int, n_var: int, size: int) -> None:
    """Refuse output arrays of the wrong shape."""
    if (
        out.service.shape != (len(SERVICE_FLOATS), n_env)
        or out.by_variant.shape != (len(VARIANT_FLOATS), n_env, n_var)
        or out.obs.shape != (n_env, size)
    ):
        raise ValueError("report: an output array has the wrong shape")


@numba.njit(nogil=True, inline="always")  # inlined where called
def _deployment_sums(
    n: int, in_slo: np.ndarray, deployment: DeploymentArrays, scoring: Scoring, capacity: np.ndarray
) -> tuple[float, float, float, float, float]:
    """Environment ``n``'s capacity per variant (into ``capacity``), and its sums over the variants:
    the accuracy of the requests answered within the SLO (``in_slo`` (N, V)), those requests, the
    cores, and the quota weights of the variants with capacity and their accuracy."""
    replicas, cores, routing = deployment.replicas, deployment.cores, deployment.routing
    per_replica_rps, accuracy = scoring.per_replica_rps, scoring.accuracy
    answered = 0.0
    in_slo_total = 0.0
    total_cores = 0.0
    weight_total = 0.0
    weighted = 0.0
    for v in range(capacity.size):
        capacity[v] = replicas[n, v] * per_replica_rps[v, cores[n, v]]
        answered += in_slo[n, v] * accuracy[v]
        in_slo_total += in_slo[n, v]
        total_cores += replicas[n, v] * cores[n, v]
        quota = routing[n, v]
        if capacity[v] > 0.0 and not np.isnan(quota):
            weight = np.rint(quota)
            weight_total += weight
            weighted += weight * accuracy[v]
    return answered, in_slo_total, total_cores, weight_total, weighted


@numba.njit(nogil=True, inline="always")  # inlined where called
def _write_variant_rows(
    n: int, result_by_variant: np.ndarray, capacity: np.ndarray, deployment: DeploymentArrays, by_variant: np.ndarray
) -> None:
    """Environment ``n``'s ``VARIANT_FLOATS`` rows: in SLO, P50, P99, capacity, loading left,
    utilisation and backlog per variant."""
    in_slo, busy, p50_ms, p99_ms = (
        result_by_variant[0],
        result_by_variant[2],
        result_by_variant[3],
        result_by_variant[4],
    )
    loading_left_s, backlog = deployment.loading_left_s, deployment.backlog
    for v in range(capacity.size):
        by_variant[0, n, v] = in_slo[n, v]
        by_variant[1, n, v] = p50_ms[n, v]
        by_variant[2, n, v] = p99_ms[n, v]
        by_variant[3, n, v] = capacity[v]
        by_variant[4, n, v] = loading_left_s[n, v]
        by_variant[5, n, v] = busy[n, v]
        by_variant[6, n, v] = backlog[n, v]


@numba.njit(nogil=True, inline="always")  # inlined where called
def _observe_variants(
    n: int, interval: IntervalArrays, deployment: DeploymentArrays, slo_ms: float, starts: np.ndarray, o: np.ndarray
) -> None:
    """Environment ``n``'s per-variant fields of its observation ``o`` (``OBSERVED`` at ``starts``):
    cores, replicas, loading left, utilisation, backlog, and the P99 over the SLO."""
    replicas, cores = deployment.replicas, deployment.cores
    loading_left_s, backlog = deployment.loading_left_s, deployment.backlog
    busy, p99_ms = interval.by_variant[2], interval.by_variant[4]
    for v in range(replicas.shape[1]):
        o[starts[3] + v] = cores[n, v]
        o[starts[4] + v] = replicas[n, v]
        o[starts[5] + v] = loading_left_s[n, v]
        o[starts[6] + v] = busy[n, v]
        o[starts[7] + v] = backlog[n, v]
        o[starts[11] + v] = p99_ms[n, v] / slo_ms


@compiled(REPORT_SIGNATURE)
def report(
    interval: IntervalArrays,
    deployment: DeploymentArrays,
    scoring: Scoring,
    episode: EpisodeArrays,
    bounds: ObservationBounds,
    out: ReportOutputs,
) -> None:
    """The info's numbers and the observations of N environments after an interval: writes
    ``out.service`` (``SERVICE_FLOATS`` (K, N)), ``out.by_variant`` (``VARIANT_FLOATS`` (K, N, V)) and
    ``out.obs`` (N, SIZE), the observations clipped to the bounds. Each group comes as a plain
    tuple in its named tuple's field order and is named here.

    Per environment: the deployment's capacity and sums (``_deployment_sums``); AA effective, the
    accuracy of the requests answered within the SLO over all arrivals (an interval without
    arrivals scores the AA of rate 0); AA planned, the deployment's AA at the interval's mean rate,
    or with quotas routing the quota-weighted accuracy of the variants with capacity; the
    objective with each (``weighted_objective``); the per-variant rows (``_write_variant_rows``);
    and the observation, its per-variant fields from ``_observe_variants``."""
    interval, deployment, scoring = IntervalArrays(*interval), DeploymentArrays(*deployment), Scoring(*scoring)
    episode, bounds, out = EpisodeArrays(*episode), ObservationBounds(*bounds), ReportOutputs(*out)
    n_env, n_var = deployment.replicas.shape
    _check_outputs(out, n_env, n_var, bounds.high.size)
    service, by_variant, obs = out.service, out.by_variant, out.obs
    result_by_env, result_by_variant = interval.by_env, interval.by_variant
    arrivals, over_slo, dropped, lost = result_by_env[0], result_by_env[2], result_by_env[3], result_by_env[4]
    accuracy, alpha, gamma = scoring.accuracy, scoring.alpha, scoring.gamma
    lc, beta, minute_peaks, steps_done = episode.lc, episode.beta, episode.minute_peaks, episode.steps_done
    starts, high = bounds.starts, bounds.high
    obs[:] = 0.0
    capacity = np.empty(n_var)
    for n in range(n_env):
        answered, in_slo_total, total_cores, weight_total, weighted = _deployment_sums(
            n, result_by_variant[0], deployment, scoring, capacity
        )
        total = arrivals[n]
        mean_rate = total / scoring.interval_s
        violated = over_slo[n] + dropped[n]
        if total > 0.0:
            aa_effective = answered / total
            violation_rate = violated / total
            drop_rate = dropped[n] / total
        else:
            aa_effective = average_accuracy_row(capacity, accuracy, 0.0)
            violation_rate = 0.0
            drop_rate = 0.0
        if weight_total > 0.0:
            aa_planned = weighted / weight_total
        else:
            aa_planned = average_accuracy_row(capacity, accuracy, mean_rate)
        row = service[:, n]
        row[0], row[1], row[2], row[3] = total, mean_rate, result_by_env[1, n], in_slo_total
        row[4], row[5], row[6], row[7] = violated, over_slo[n], dropped[n], lost[n]
        row[8], row[9], row[10], row[11] = violation_rate, drop_rate, result_by_env[5, n], result_by_env[6, n]
        rc = resource_cost(total_cores, scoring.budget_cores)
        row[12], row[13], row[14], row[15], row[16] = aa_effective, aa_planned, total_cores, rc, lc[n]
        row[17] = weighted_objective(aa_effective, rc, lc[n], alpha, beta[n], gamma)
        row[18] = weighted_objective(aa_planned, rc, lc[n], alpha, beta[n], gamma)
        _write_variant_rows(n, result_by_variant, capacity, deployment, by_variant)
        o = obs[n]
        for m in range(minute_peaks.shape[1]):
            o[starts[0] + m] = minute_peaks[n, m]
        o[starts[1]] = mean_rate
        o[starts[2]] = result_by_env[1, n]  # the peak rate
        _observe_variants(n, interval, deployment, scoring.slo_ms, starts, o)
        o[starts[8]] = violation_rate
        o[starts[9]] = drop_rate
        o[starts[10]] = steps_done[n] / episode.n_steps
        o[starts[12]] = rc
        for i in range(high.size):
            o[i] = min(o[i], high[i])


DECODE_SIGNATURE = numba.types.none(_I2, int64, _I2, int64, int64, _I1, int64, _I2, _I2, int64[:, :, ::1], int8[:, ::1])


@compiled(DECODE_SIGNATURE)
def decode(
    values: np.ndarray,
    mode: int,
    table: np.ndarray,
    n_var: int,
    min_cores: int,
    budget: np.ndarray,
    raised: int,
    previous_replicas: np.ndarray,
    previous_cores: np.ndarray,
    deployment: np.ndarray,
    flags: np.ndarray,
) -> None:
    """Writes into ``deployment`` the deployments (replicas, cores: (2, N, V)) that checked actions
    ``values`` (N, entries) of action mode ``mode`` (``deployment.ACTION_MODES`` index; ``table``:
    the ``deployment`` mode's rows) ask for, an active replica below ``min_cores`` raised to it
    (``fix`` = ``raised``); and into ``flags`` three flags per environment (3, N): ``fix``, whether
    it needs more than ``budget`` (N,) cores (the over-budget rule is the caller's) and whether it
    differs from the previous deployment. (Their contents on entry do not matter.)"""
    n_env = values.shape[0]
    if deployment.shape != (2, n_env, n_var) or flags.shape != (3, n_env):
        raise ValueError("decode: an output array has the wrong shape")
    replicas, cores = deployment[0], deployment[1]
    flags[:] = 0
    fix, over, changed = flags[0], flags[1], flags[2]
    for n in range(n_env):
        total = 0
        for v in range(n_var):
            if mode == 2:  # deployment: a row of the table, one replica per variant
                c = table[values[n, 0], v]
                r = 1 if c > 0 else 0
            elif mode == 0:  # cores: one replica per variant
                c = values[n, v]
                r = 1 if c > 0 else 0
            else:  # replicas: replicas, then cores per replica; off when either is 0
                r = values[n, v]
                c = values[n, n_var + v]
                if r <= 0 or c <= 0:
                    r = 0
                    c = 0
            if 0 < c < min_cores:
                c = min_cores
                fix[n] = raised
            replicas[n, v] = r
            cores[n, v] = c
            total += r * c
            if r != previous_replicas[n, v] or c != previous_cores[n, v]:
                changed[n] = 1
        over[n] = total > budget[n]
