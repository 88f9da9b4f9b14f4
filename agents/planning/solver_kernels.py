"""The two per-state loops of the fast solver's branch and bound, compiled by numba.

Branch and bound (``infadapter_agents.planning.solver``) handles thousands of partial deployments per level
as numpy arrays. Two steps are loops over states with an early exit, which numpy can only do by
building (states x something) matrices: the bound of each state (a minimum over tens of dual
multipliers, most states pruned after a few) and the dominance filter (a prefix maximum over the
states in order of capacity and over cores). Written as loops and compiled, both cost a fraction
of the matrices (10 variants on 64 cores: on 1,800 random decisions the worst went from 47-65 ms to
about 6 ms per 600). Only branch and bound imports this module: the shipped world's
solver enumerates and never pays numba's import (about 0.3 s) or its first compile (cached on disk).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numba
import numpy as np

from infadapter_env.jit import compiled

REACH_TOLERANCE = 1e-12  # relative: a deployment within it of the rate serves it


class States(NamedTuple):
    """The partial deployments one level of branch and bound extends, (S,) each."""

    used: np.ndarray  # cores (int64)
    capacity: np.ndarray  # req/s
    value: np.ndarray  # objective so far, without LC
    loading: np.ndarray  # LC so far


class Choices(NamedTuple):
    """The level variant's choices, in order of cores, (C,) each."""

    cores: np.ndarray  # (int64)
    more: np.ndarray  # capacity (req/s)
    cost: np.ndarray  # its loading cost (LC)
    gain: np.ndarray  # its objective at full capacity


class Decision(NamedTuple):
    """The decision's numbers at this level: the rate, the core budget, the level variant's
    objective per req/s served, the objective per core and the weight of LC."""

    rate: float
    budget: int
    accuracy: float
    per_core: float
    gamma: float


class RestBounds(NamedTuple):
    """What bounds the objective the variants below the level's (0..u) can earn on a rest of the
    rate: the dual of the linear relaxation (``mu`` (J,), ``h`` (J,), and ``tail`` (J, C): each
    choice's part of the dual screen), the least loading cost still ahead, the best objective per
    req/s, ``reach`` (the most capacity of variants 0..u within c cores, non-decreasing) and the
    Lagrangian knapsack bound (``multipliers`` (L,), ``knapsack`` (L, budget + 1))."""

    mu: np.ndarray
    h: np.ndarray
    tail: np.ndarray
    least_load: float
    best_accuracy: float
    reach: np.ndarray
    knapsack: np.ndarray
    multipliers: np.ndarray


@lru_cache(maxsize=1)
def warm_up() -> None:
    """Compile both loops (about 4 s, once per machine: numba caches them beside this file or in
    its user cache) or load them from the cache (well under a second), on inputs of the types
    branch and bound passes, so that no decision pays for it."""
    ints, floats = np.zeros(1, dtype=np.int64), np.zeros(1)
    states, choices = (ints, floats, floats, floats), (ints, floats, floats, floats)
    bounds = (floats, floats, np.zeros((1, 1)), 0.0, 1.0, floats, np.zeros((1, 2)), floats)
    expand(states, choices, (1.0, 1, 1.0, 0.0, 0.0), -np.inf, True, bounds)
    undominated(ints, floats, floats, floats)


@numba.njit(nogil=True, inline="always")  # inlined where called
def _best_completion(states: States, choices: Choices, decision: Decision) -> tuple[float, int, int]:
    """The best completion of the level: an extension that reaches the rate (within
    REACH_TOLERANCE), the level's variant serving what is left, as (value, state, choice); -inf and
    -1 where none does."""
    used, capacity, value, loading = states.used, states.capacity, states.value, states.loading
    cores, more, cost = choices.cores, choices.more, choices.cost
    rate, budget, accuracy, per_core, gamma = decision
    # A deployment reaches the rate within a relative 1e-12: its capacities summed most accurate
    # first may land an ulp below the same sum in another order (``reach``, the ILP's).
    target = rate - rate * REACH_TOLERANCE
    best_final, best_state, best_choice = -np.inf, -1, -1
    for s in range(used.size):
        for c in range(cores.size):
            if used[s] + cores[c] > budget:  # choices come in order of cores
                break
            if capacity[s] + more[c] >= target:
                final = (
                    value[s] + accuracy * (rate - capacity[s]) - per_core * cores[c] - gamma * max(loading[s], cost[c])
                )
                if final > best_final:
                    best_final, best_state, best_choice = final, s, c
    return best_final, best_state, best_choice


@numba.njit(nogil=True, inline="always")  # inlined where called
def _dual_head(s: int, states: States, decision: Decision, mu: np.ndarray, h: np.ndarray) -> tuple[int, float]:
    """State ``s``'s part of the dual screen, ``head_s(mu)``, at its tightest ``mu``: that
    multiplier's position and the value."""
    rate, budget, gamma = decision.rate, decision.budget, decision.gamma
    used, capacity, value, loading = states.used, states.capacity, states.value, states.loading
    tightest, head = 0, np.inf
    for j in range(mu.size):
        at = value[s] - gamma * loading[s] + (rate - capacity[s]) * h[j] + (budget - used[s]) * mu[j]
        if at < head:
            tightest, head = j, at
    return tightest, head


@numba.njit(nogil=True, inline="always")  # inlined where called
def _fewest_cores(reach: np.ndarray, rest: float, slack: float, need: int) -> int:
    """The fewest cores in which the variants below reach ``rest`` (np.searchsorted's 'left' on
    ``reach``, within ``slack``), walked from the last choice's ``need``: the rest falls as the
    choices grow, so a step or two."""
    while need < reach.size and reach[need] < rest - slack:
        need += 1
    while need > 0 and reach[need - 1] >= rest - slack:
        need -= 1
    return need


@numba.njit(nogil=True, inline="always")  # inlined where called
def _knapsack_bound(
    b: float, exact: float, rest: float, room: int, multipliers: np.ndarray, knapsack: np.ndarray, best_value: float
) -> float:
    """Bound ``b`` lowered to the Lagrangian knapsack bound ``min_l multipliers[l] * rest +
    knapsack[l, room]`` above ``exact``, stopping once it falls below ``best_value``."""
    k = 0
    while b >= best_value and k < multipliers.size:
        b = min(b, exact + multipliers[k] * rest + knapsack[k, room])
        k += 1
    return b


@numba.njit(nogil=True, inline="always")  # inlined where called
def _dual_bound(
    b: float, exact: float, rest: float, room: int, mu: np.ndarray, h: np.ndarray, best_value: float
) -> float:
    """Bound ``b`` lowered to the dual of the linear relaxation ``min_j h[j] * rest + mu[j] *
    room`` above ``exact``, stopping once it falls below ``best_value``."""
    j = 0
    while b >= best_value and j < mu.size:
        b = min(b, exact + h[j] * rest + mu[j] * room)
        j += 1
    return b


@compiled()
def expand(
    states: States, choices: Choices, decision: Decision, best_value: float, rest_ahead: bool, bounds: RestBounds
) -> tuple[float, int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level of branch and bound: every state extended by every choice of the level's variant
    v, in order of state then choice. Each group comes as a plain tuple in its named tuple's field
    order and is named here.

    Returns the best completion (``_best_completion``) as (value, state, choice), -inf and -1
    where none beats ``best_value``, then the
    extensions left open: their state, choice, cores, capacity, objective so far, LC so far and
    bound. ``rest_ahead`` is False where no variant below v can serve anything (nothing stays open).

    An extension stays open if it fits the budget, leaves a rest, and its bound reaches the best
    value (after the completions). First the dual screen ``head_s(mu) + tail[mu, c]`` at the
    state's tightest mu (``_dual_head``); then the bound: ``exact`` (the objective so far less the
    least loading cost still ahead) plus the smallest of (a) the rest at ``best_accuracy`` on the
    fewest cores that reach it (``_fewest_cores``; closed where those do not fit the room left),
    (b) the Lagrangian knapsack bound (``_knapsack_bound``) and (c) the dual of the linear
    relaxation (``_dual_bound``). Each is a valid upper bound on what the rest can earn, so
    stopping at the first that closes an extension changes nothing but the time.
    """
    states, choices, decision, bounds = States(*states), Choices(*choices), Decision(*decision), RestBounds(*bounds)
    used, capacity, value, loading = states.used, states.capacity, states.value, states.loading
    cores, more, cost, gain = choices.cores, choices.more, choices.cost, choices.gain
    rate, budget, gamma, per_core = decision.rate, decision.budget, decision.gamma, decision.per_core
    mu, h, tail, reach = bounds.mu, bounds.h, bounds.tail, bounds.reach
    slack = rate * REACH_TOLERANCE
    target = rate - slack
    best_final, best_state, best_choice = _best_completion(states, choices, decision)
    if best_final > best_value:
        best_value = best_final
    else:
        best_final, best_state, best_choice = -np.inf, -1, -1
    n_states = used.size if rest_ahead else 0  # without a variant below, no extension stays open
    size = n_states * cores.size
    parent = np.empty(size, dtype=np.int64)
    pick = np.empty(size, dtype=np.int64)
    total = np.empty(size, dtype=np.int64)
    reached = np.empty(size)
    so_far = np.empty(size)
    lc = np.empty(size)
    bound = np.empty(size)
    n = 0
    for s in range(n_states):
        tightest, head = _dual_head(s, states, decision, mu, h)
        need = 0
        for c in range(cores.size):
            t = used[s] + cores[c]
            if t > budget:  # choices come in order of cores
                break
            r = capacity[s] + more[c]
            if r >= target or head + tail[tightest, c] < best_value:
                continue
            rest, room = rate - r, budget - t
            need = _fewest_cores(reach, rest, slack, need)
            if need > room:
                continue
            extended = value[s] + gain[c]
            loaded = max(loading[s], cost[c])
            exact = extended - gamma * max(loaded, bounds.least_load)
            b = exact + bounds.best_accuracy * rest - per_core * need  # (a)
            b = _knapsack_bound(b, exact, rest, room, bounds.multipliers, bounds.knapsack, best_value)  # (b)
            b = _dual_bound(b, exact, rest, room, mu, h, best_value)  # (c)
            if b < best_value:
                continue
            parent[n], pick[n], total[n], reached[n] = s, c, t, r
            so_far[n], lc[n], bound[n] = extended, loaded, b
            n += 1
    return (
        best_final,
        best_state,
        best_choice,
        parent[:n],
        pick[:n],
        total[:n],
        reached[:n],
        so_far[:n],
        lc[:n],
        bound[:n],
    )


def undominated(cores: np.ndarray, capacity: np.ndarray, slack: np.ndarray, loading: np.ndarray) -> np.ndarray:
    """Positions of the states no other state dominates, in order of capacity (most first); a
    dominated state may stay where only ties of capacity separate it from its dominator.

    State j dominates i when it has no more cores, no less capacity, and ``slack_j - slack_i >=
    max(loading_j - loading_i, 0)`` (``loading`` is gamma times LC so far): any completion of i then
    completes j at least as well, because the rest of the rate j leaves is smaller by ``capacity_j -
    capacity_i``, which the remaining variants would have served at no better than the accuracy
    ``slack`` is reduced by, and a later variant's load can raise j's LC by ``loading_j - loading_i``
    at most over i's. One sweep over the states
    in order of capacity (``_sweep``) tests two sufficient forms: equal loading (``slack_j >=
    slack_i``), and j's loading charged in full above the lowest of all states (``slack_j -
    (loading_j - lowest) >= slack_i``). The order comes from numpy, whose sort is several times
    faster than numba's."""
    return _sweep(np.argsort(-capacity), cores, slack, loading)


@compiled()
def _sweep(order: np.ndarray, cores: np.ndarray, slack: np.ndarray, loading: np.ndarray) -> np.ndarray:
    """``undominated`` over the states in ``order``. A dominated state need not be remembered:
    whatever it dominates, the state that dominates it does too (both forms are transitive, and
    mix). ``best[g, c]``, the most slack among the kept states of loading g with at most c cores
    (the last row: the most charged slack of all), is non-decreasing in c, so adding a state stops
    at the first core count where it gains nothing. O(states x cores) at worst. Loadings take a
    few values (gamma times a load time), found by a linear search."""
    n = cores.size
    levels = np.empty(n)
    group = np.empty(n, dtype=np.int64)
    groups = 0
    width = 1
    for i in range(n):
        g = 0
        while g < groups and levels[g] != loading[i]:
            g += 1
        if g == groups:
            levels[g] = loading[i]
            groups += 1
        group[i] = g
        width = max(width, cores[i] + 1)
    lowest = levels[:groups].min() if n else 0.0
    best = np.full((groups + 1, width), -np.inf)
    kept = np.empty(n, dtype=np.int64)
    m = 0
    for i in order:
        c, g = cores[i], group[i]
        if best[g, c] >= slack[i] or best[groups, c] >= slack[i]:
            continue
        kept[m] = i
        m += 1
        for k in range(c, width):
            if best[g, k] >= slack[i]:
                break
            best[g, k] = slack[i]
        charged = slack[i] - (loading[i] - lowest)
        for k in range(c, width):
            if best[groups, k] >= charged:
                break
            best[groups, k] = charged
    return kept[:m]
