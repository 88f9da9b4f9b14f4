"""What every backend shares: the state of N clusters, the deployment rule, the ``quota``
dispatcher's quota plan and the packed result of one interval.

The fast model (``sim.fast``), the request-level model (``sim.request``) and live mode
(``serving.live``) each simulate or play an interval from a ``ClusterState`` and return an
``IntervalResult``; the step pipeline (``core.pipeline``) deploys with ``deploy`` and reads the
result whole. Rolling updates and make-before-break are ``deploy``'s rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np

from infadapter_env.arrays import row_any, row_max

DISPATCHERS = ("accuracy_first", "proportional", "quota")  # in the order of the kernel's dispatcher codes
# How a request reaches one of its variant's replicas (in the order of the kernels' codes): one drawn at
# random (a Kubernetes Service under kube-proxy's iptables mode, the default), or each in turn (its IPVS
# mode's default scheduler).
REPLICA_ROUTINGS = ("random", "round_robin")


class ClusterState(NamedTuple):
    """What N clusters run, per variant (arrays (N, V)): the target deployment, what serves now,
    the seconds until the target serves, and the waiting requests. (A named tuple: immutable, and
    made in a fraction of a frozen dataclass's time, which counts at every step.)"""

    replicas: np.ndarray  # target replicas (int)
    cores: np.ndarray  # target cores per replica (int)
    serving_replicas: np.ndarray  # (int)
    serving_cores: np.ndarray  # (int)
    loading_left_s: np.ndarray
    backlog: np.ndarray
    backlog_var: np.ndarray  # variance of one replica's queue around the fluid one (requests^2)

    def select(self, rows: np.ndarray) -> ClusterState:
        return ClusterState(*(column[rows] for column in self))

    def put(self, rows: np.ndarray, part: ClusterState) -> ClusterState:
        """This state with ``rows`` replaced by ``part``."""
        out = []
        for mine, theirs in zip(self, part, strict=True):
            column = mine.copy()
            column[rows] = theirs
            out.append(column)
        return ClusterState(*out)


def empty_state(n_envs: int, n_variants: int) -> ClusterState:
    ints = np.zeros((n_envs, n_variants), dtype=np.int64)
    zeros = np.zeros((n_envs, n_variants))
    return ClusterState(ints, ints, ints, ints, zeros, zeros.copy(), zeros.copy())


def loaded_state(replicas: np.ndarray, cores: np.ndarray) -> ClusterState:
    """A deployment (N, V) already loaded and serving, with empty queues."""
    zeros = np.zeros(replicas.shape)
    return ClusterState(replicas, cores, replicas.copy(), cores.copy(), zeros, zeros.copy(), zeros.copy())


class IntervalResult:
    """What happened in one interval in N environments (counts are requests), in two packed arrays
    that every simulator fills alike and the step's report kernel reads whole: ``by_env`` (7, N),
    rows ``ENV_FIELDS``, and ``by_variant`` (5, N, V), rows ``VARIANT_FIELDS``. Each row is also
    a property of its name; ``IntervalResult.of(name=array, ...)`` packs named arrays."""

    ENV_FIELDS = ("arrivals", "peak_rate_rps", "over_slo", "dropped", "lost", "p50_ms_all", "p99_ms_all")
    VARIANT_FIELDS = ("in_slo", "served", "busy", "p50_ms", "p99_ms")
    __slots__ = ("by_env", "by_variant")

    def __init__(self, by_env: np.ndarray, by_variant: np.ndarray) -> None:
        self.by_env = by_env
        self.by_variant = by_variant

    @classmethod
    def of(cls, **fields: np.ndarray) -> IntervalResult:
        """Pack arrays named by ``ENV_FIELDS`` ((N,) each) and ``VARIANT_FIELDS`` ((N, V) each)."""
        if set(fields) != set(cls.ENV_FIELDS + cls.VARIANT_FIELDS):
            raise TypeError(f"IntervalResult.of needs exactly {cls.ENV_FIELDS + cls.VARIANT_FIELDS}")
        by_env = np.array([fields[name] for name in cls.ENV_FIELDS], dtype=np.float64)
        by_variant = np.array([fields[name] for name in cls.VARIANT_FIELDS], dtype=np.float64)
        return cls(by_env, by_variant)

    @property
    def arrivals(self) -> np.ndarray:  # (N,)
        return self.by_env[0]

    @property
    def peak_rate_rps(self) -> np.ndarray:  # (N,)
        return self.by_env[1]

    @property
    def over_slo(self) -> np.ndarray:  # (N,) served with a latency over the SLO
        return self.by_env[2]

    @property
    def dropped(self) -> np.ndarray:  # (N,) turned away (full queues, nothing serving)
        return self.by_env[3]

    @property
    def lost(self) -> np.ndarray:  # (N,) waiting requests discarded when their variant stopped (already counted)
        return self.by_env[4]

    @property
    def p50_ms_all(self) -> np.ndarray:  # (N,)
        return self.by_env[5]

    @property
    def p99_ms_all(self) -> np.ndarray:  # (N,)
        return self.by_env[6]

    @property
    def in_slo(self) -> np.ndarray:  # (N, V) served within the SLO
        return self.by_variant[0]

    @property
    def served(self) -> np.ndarray:  # (N, V) admitted and served (in or over the SLO)
        return self.by_variant[1]

    @property
    def busy(self) -> np.ndarray:  # (N, V) fraction of the serving capacity (mu) used
        return self.by_variant[2]

    @property
    def p50_ms(self) -> np.ndarray:  # (N, V) 0 where a variant served nothing
        return self.by_variant[3]

    @property
    def p99_ms(self) -> np.ndarray:  # (N, V)
        return self.by_variant[4]


@dataclass(frozen=True)
class QuotaPlan:
    """The ``quota`` dispatcher's quotas of N environments, arrays (N, V) in req/s; a row of NaN
    means none set (the round robin then runs over ``round(cap)``). ``current`` route from the
    interval's start; ``planned`` (set with the step's deployment) replace them from the second
    every load is done, as the original adapter posts new quotas only after the new pods are ready."""

    current: np.ndarray
    planned: np.ndarray

    @staticmethod
    def switch_tick(loading_left_s: np.ndarray) -> np.ndarray:
        """(N,) the second of the interval from which the planned quotas route."""
        return np.ceil(row_max(loading_left_s))

    def effective(self, switched: np.ndarray) -> np.ndarray:
        """The quotas (N, V) that route once ``switched`` (bool, broadcast) says the switch happened."""
        planned_set = ~np.isnan(self.planned).all(axis=-1, keepdims=True)
        return np.where(switched & planned_set, self.planned, self.current)

    def select(self, rows: np.ndarray) -> QuotaPlan:
        return QuotaPlan(self.current[rows], self.planned[rows])

    @classmethod
    def unset(cls, n_envs: int, n_variants: int) -> QuotaPlan:
        """No quotas routing, none planned."""
        return cls(np.full((n_envs, n_variants), np.nan), np.full((n_envs, n_variants), np.nan))

    @cached_property
    def is_unset(self) -> bool:
        return bool(np.isnan(self.current).all() and np.isnan(self.planned).all())

    def plan(self, planned: np.ndarray) -> QuotaPlan:
        """This plan with ``planned`` (N, V) as the quotas to route once the loads in progress are done."""
        return QuotaPlan(self.current, planned)

    def after(self, loading_left_s: np.ndarray) -> QuotaPlan:
        """The plan at the end of an interval that left ``loading_left_s`` (N, V): where every load
        is done the planned quotas route, and nothing is planned any more."""
        switched = ~row_any(loading_left_s)[:, None]
        return QuotaPlan(self.effective(switched), np.where(switched, np.nan, self.planned))


def deploy(state: ClusterState, replicas: np.ndarray, cores: np.ndarray, load_time_s: np.ndarray) -> ClusterState:
    """Apply new target deployments (N, V).

    Unchanged variants keep their state. Started or resized variants load for their load time while
    the previous deployment serves. Removed variants serve until every variant started or resized by
    the same decision is ready (make before break), or stop at once if there is none.
    """
    active = (replicas > 0) & (cores > 0)
    replicas = np.where(active, replicas, 0)
    cores = np.where(active, cores, 0)
    changed = (replicas != state.replicas) | (cores != state.cores)
    if not changed.any():
        return state
    starting = changed & active
    handover_s = row_max(np.where(starting, load_time_s, 0.0))[:, None]
    loading = np.where(starting, load_time_s, np.where(changed, handover_s, state.loading_left_s))
    return ClusterState(
        replicas, cores, state.serving_replicas, state.serving_cores, loading, state.backlog, state.backlog_var
    )


@lru_cache(maxsize=8)
def no_quotas(n_envs: int, n_variants: int) -> QuotaPlan:
    """``QuotaPlan.unset`` with read-only arrays, made once per shape."""
    plan = QuotaPlan.unset(n_envs, n_variants)
    plan.current.setflags(write=False)
    plan.planned.setflags(write=False)
    return plan


def served_shares(capacity_rps: Sequence[float], rate_rps: float) -> list[float]:
    """Rate (req/s) each variant answers when the most accurate is filled first: the
    ``accuracy_first`` dispatcher's split, which the objective's AA assumes (``core.objective``).

    Variants are ordered from least to most accurate, as everywhere in this package.
    """
    shares = [0.0] * len(capacity_rps)
    remaining = rate_rps
    for index in range(len(capacity_rps) - 1, -1, -1):
        if remaining <= 0:
            break
        take = min(capacity_rps[index], remaining)
        shares[index] = take
        remaining -= take
    return shares
