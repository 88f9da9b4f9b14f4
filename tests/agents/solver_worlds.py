"""Worlds larger than the shipped 5 variants x 20 cores, for the solver's tests and benchmark.

Both have 10 variants, a 64-core budget and capacity tables up to 64 cores per replica (one variant
may take the whole budget), so the fast solver runs branch and bound on them (about 10^11
deployments). Capacity is not monotone in cores, as in the measured table.
"""

from __future__ import annotations

import numpy as np

from infadapter_agents.planning.solver import PlanningModel
from infadapter_env.core.objective import Weights
from infadapter_env.world.profiles import CapacityProfile, Variant

VARIANTS = 10
CORES = 64


def synthetic_world(variants: int = VARIANTS, cores: int = CORES) -> PlanningModel:
    """The benchmark's world, fixed: accuracies from ResNet18's to 0.83, load times from 6.4 s to
    12 s, capacity per core falling geometrically from ResNet18's (24 req/s) to ResNet152's (3) with
    5 % measurement noise per (variant, cores), less 4 req/s."""
    rng = np.random.default_rng(10)
    accuracy = np.linspace(0.69758, 0.83, variants)
    load = np.linspace(6.44, 12.0, variants)
    per_core = 24.0 * (3.0 / 24.0) ** (np.arange(variants) / (variants - 1))
    size = np.arange(cores + 1)
    table = np.maximum(per_core[:, None] * size * rng.normal(1.0, 0.05, (variants, cores + 1)) - 4.0, 0.0)
    table[:, 0] = 0.0
    names = tuple(Variant(f"synthetic{v}", v, float(accuracy[v]), float(load[v])) for v in range(variants))
    return PlanningModel(CapacityProfile(names, 750, "synthetic", table, 2), cores)


def benchmark_decisions(model: PlanningModel, n: int = 40) -> list[tuple[float, tuple[int, ...], Weights]]:
    """Rates over 0.9 of the fastest variant's capacity on the whole budget, three variants running
    before, the paper's alpha and gamma, beta as in the leaderboard."""
    rng = np.random.default_rng(0)
    top = float(model.profile.per_replica_rps[:, model.max_cores].max())
    out = []
    for _ in range(n):
        previous = np.zeros(model.n_variants, dtype=int)
        for v in rng.choice(model.n_variants, 3, replace=False):
            previous[v] = rng.integers(2, 24)
        beta = float(rng.choice([0.01, 0.02, 0.05, 0.1, 0.2]))
        out.append((float(rng.uniform(5, 0.9 * top)), tuple(int(c) for c in previous), Weights(1.0, beta, 0.001)))
    return out


def random_world(rng: np.random.Generator, variants: int = VARIANTS, cores: int = CORES) -> PlanningModel:
    """Random accuracies (sorted, as profiles are), load times, ``min_cores`` in 1..3, and capacity:
    a line per variant (slower for the more accurate) with 20 % noise per cell, an intercept of
    -5..5 req/s, and plateaus (a cell equal to the one before) in one cell out of ten."""
    accuracy = np.sort(rng.uniform(0.5, 0.9, variants))
    load = rng.uniform(1.0, 12.0, variants)
    slope = np.sort(rng.uniform(0.5, 20.0, variants))[::-1]
    size = np.arange(cores + 1)
    noise = rng.uniform(0.8, 1.2, (variants, cores + 1))
    table = np.maximum(slope[:, None] * size * noise + rng.uniform(-5.0, 5.0, (variants, 1)), 0.0)
    plateau = rng.random((variants, cores + 1)) < 0.1
    for v, c in zip(*np.nonzero(plateau), strict=True):
        if c > 1:
            table[v, c] = table[v, c - 1]
    table[:, 0] = 0.0
    names = tuple(Variant(f"random{v}", v, float(accuracy[v]), float(load[v])) for v in range(variants))
    return PlanningModel(CapacityProfile(names, 750, "random", table, int(rng.integers(1, 4))), cores)


def random_decision(rng: np.random.Generator, model: PlanningModel) -> tuple[float, tuple[int, ...], Weights]:
    """A rate up to 1.1x the most the budget serves (a share unservable; 5 % zero), up to four
    variants running before with 0..30 cores (some below ``min_cores``), and random weights."""
    rate = 0.0 if rng.random() < 0.05 else float(rng.uniform(0.0, 1.1 * model.max_capacity_rps))
    previous = np.zeros(model.n_variants, dtype=int)
    for v in rng.choice(model.n_variants, int(rng.integers(0, 5)), replace=False):
        previous[v] = rng.integers(0, 31)
    weights = Weights(
        float(rng.choice([0.5, 1.0, 2.0])),
        float(rng.choice([0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5])),
        float(rng.choice([0.0, 0.001, 0.01, 0.1, 0.5])),
    )
    return rate, tuple(int(c) for c in previous), weights
