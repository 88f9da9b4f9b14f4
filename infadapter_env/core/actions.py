"""Deployments (replicas x cores per variant) and how an action becomes one.

Action modes:

``cores``
    ``MultiDiscrete([max_cores + 1] * V)``: cores of the single replica of each variant, 0 = off
    (the paper's vertical setting).
``replicas``
    ``MultiDiscrete([max_replicas + 1] * V + [max_cores + 1] * V)``: replicas of each variant, then
    cores per replica; a variant is off when either is 0 (horizontal scaling).
``deployment``
    ``Discrete(N)`` over every single-replica deployment that fits the budget with 0 or at least
    ``min_cores`` cores per variant (20,529 with the defaults), in lexicographic order.

The rule for an action that breaks a constraint (reported in ``info["action_fix"]``):

1. an active replica with fewer than ``min_cores`` cores is raised to ``min_cores``;
2. if the deployment then needs more than ``budget_cores`` cores (``over_budget``):
   - ``"reject"`` (default): it is rejected and the previous target deployment is kept;
   - ``"scale"``: every active variant's cores per replica are scaled down by budget / total
     (rounded down, at least ``min_cores``); then, while it is still over, the variant with the most
     cores in total (the first of equals) gives up one core per replica. If every replica is at
     ``min_cores`` and it is still over, it is rejected as above. Random exploration then reaches
     deployments instead of keeping the previous one (98.9 % of uniformly random ``cores`` actions
     are over the budget).
"""

from __future__ import annotations

import enum
import math
import operator
from dataclasses import dataclass, field

import numpy as np

from infadapter_env.arrays import filled, row_any, row_sum
from infadapter_env.core.pipeline_kernels import decode

ACTION_MODES = ("cores", "replicas", "deployment")
OVER_BUDGET_MODES = ("reject", "scale")
_NO_TABLE = np.zeros((0, 0), dtype=np.int64)  # the table argument of modes without one


def enumerate_deployments(n_variants: int, min_cores: int, max_cores: int, budget_cores: int) -> np.ndarray:
    """Every single-replica deployment within the budget, as rows of cores (lexicographic order)."""
    sizes = [0, *range(min_cores, max_cores + 1)]
    rows: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], left: int) -> None:
        if len(prefix) == n_variants:
            rows.append(prefix)
            return
        for size in sizes:
            if size > left:
                break
            extend((*prefix, size), left - size)

    extend((), budget_cores)
    return np.array(rows, dtype=np.int64)


def scale_to_budget(replicas: np.ndarray, cores: np.ndarray, budget: int, min_cores: int) -> np.ndarray | None:
    """Cores per replica (V,) scaled into the budget (the ``over_budget="scale"`` rule in the module
    docstring), or None when even ``min_cores`` everywhere does not fit."""
    active = (replicas > 0) & (cores > 0)
    total = int((replicas * cores).sum())
    if total <= budget:
        return cores.copy()
    scaled = np.where(active, np.maximum(np.floor(cores * budget / total), min_cores), 0).astype(np.int64)
    while int((replicas * scaled).sum()) > budget:
        reducible = active & (scaled > min_cores)
        if not reducible.any():
            return None
        largest = int(np.argmax(np.where(reducible, replicas * scaled, -1)))
        scaled[largest] -= 1
    return scaled


def cut_to_budget(
    replicas: np.ndarray, cores: np.ndarray, budget: int, min_cores: int
) -> tuple[np.ndarray, np.ndarray]:
    """A deployment cut into ``budget`` cores, as evicted pods would leave it: scaled down
    (``scale_to_budget``), and where even ``min_cores`` everywhere does not fit, replicas removed
    from the least accurate variant first (index 0) until it does; possibly nothing."""
    replicas, cores = replicas.copy(), cores.copy()
    while True:
        scaled = scale_to_budget(replicas, cores, budget, min_cores)
        if scaled is not None:
            return replicas, scaled
        active = np.flatnonzero((replicas > 0) & (cores > 0))
        replicas[active[0]] -= 1
        if replicas[active[0]] == 0:
            cores[active[0]] = 0


class ActionFix(enum.IntEnum):
    """The rule applied to an action that breaks a constraint; ``info["action_fix"]`` is its ``label``."""

    NONE = 0
    RAISED_TO_MIN_CORES = 1  # an active replica below min_cores is raised to min_cores
    OVER_BUDGET_KEPT_PREVIOUS = 2  # a deployment over the budget is rejected, the previous one kept
    OVER_BUDGET_SCALED = 3  # a deployment over the budget is scaled down to fit (over_budget="scale")
    BUDGET_CUT = 4  # the available cores fell below the deployment kept: it was cut to fit (budget_trace)

    @property
    def label(self) -> str | None:
        return None if self is ActionFix.NONE else self.name.lower()


_RAISED = int(ActionFix.RAISED_TO_MIN_CORES)  # the decode kernel's code for it


@dataclass(frozen=True)
class ActionDecoder:
    """Checks actions of one mode and turns them into validated (replicas, cores) tuples."""

    mode: str
    n_variants: int
    min_cores: int
    max_cores: int
    max_replicas: int
    budget_cores: int
    table: np.ndarray | None = None  # rows of the ``deployment`` mode
    over_budget: str = "reject"
    upper: tuple[int, ...] = field(init=False)  # largest value of each action entry
    _upper_array: np.ndarray = field(init=False, repr=False)
    _rows: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    _row_cores: np.ndarray | None = field(init=False, repr=False, compare=False)  # total cores per deployment row

    def __post_init__(self) -> None:
        n = self.n_variants
        if self.mode == "cores":
            upper: tuple[int, ...] = (self.max_cores,) * n
        elif self.mode == "replicas":
            upper = (self.max_replicas,) * n + (self.max_cores,) * n
        else:
            upper = (len(self.table) - 1,) if self.table is not None else (0,)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "_upper_array", np.asarray(upper))
        rows = tuple(map(tuple, self.table.tolist())) if self.table is not None else ()
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(self, "_row_cores", self.table.sum(axis=1) if self.table is not None else None)

    def check(self, action: object) -> list[int]:
        """The action as a list of ints, or a ``ValueError`` naming why it is outside the space."""
        try:
            array = np.asarray(action)
            values = array.reshape(-1).tolist()
        except (TypeError, ValueError):
            values = None
        if values is not None and array.ndim != (0 if self.mode == "deployment" else 1):
            values = None  # a (1, 5) array is not quietly flattened
        for index, value in enumerate(values or []):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"action {action!r}: entry {index} is {value}; actions of mode {self.mode!r} are whole numbers"
                )
        ok = values is not None and len(values) == len(self.upper)
        if ok:
            for value, high in zip(values, self.upper, strict=True):  # type: ignore[arg-type]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or value != int(value)
                    or not 0 <= value <= high
                ):
                    ok = False
        if not ok:
            shape = "one integer" if self.mode == "deployment" else f"{len(self.upper)} integers (a 1-D array)"
            dims = np.asarray(action, dtype=object).shape
            given = f" (got shape {dims})" if len(dims) > 1 else ""
            raise ValueError(
                f"action {action!r} is outside the action space of mode {self.mode!r}: "
                f"expected {shape}, entry i in 0..{list(self.upper)}[i]{given}"
            )
        return [int(v) for v in values]  # type: ignore[union-attr]

    def check_one(self, action: object) -> np.ndarray:
        """``check(action)`` as a (1, entries) int64 array (a batch of one). Integer arrays of the
        space's shape and, in ``deployment`` mode, integers take a short path."""
        if type(action) is np.ndarray and action.dtype.kind in "iu" and action.ndim == 1 and self.mode != "deployment":
            values = action.tolist()
            if len(values) == len(self.upper) and min(values) >= 0 and all(map(operator.le, values, self.upper)):
                return action[None].astype(np.int64)  # a copy
        elif (
            (type(action) is int or isinstance(action, np.integer))
            and self.mode == "deployment"
            and 0 <= action <= self.upper[0]
        ):
            return np.array([[action]], dtype=np.int64)
        return np.array([self.check(action)], dtype=np.int64)

    def check_batch(self, actions: object, n_envs: int) -> np.ndarray:
        """A batch of actions as an (N, entries) int array, or a ``ValueError`` naming the first bad one."""
        try:
            array = np.asarray(actions)
        except (TypeError, ValueError):
            array = np.asarray([None])
        expected = (n_envs,) if self.mode == "deployment" else (n_envs, len(self.upper))
        if array.shape == expected and np.issubdtype(array.dtype, np.floating):
            bad = ~np.isfinite(array) | (np.mod(np.nan_to_num(array), 1) != 0)
            if bad.any():
                first = np.argwhere(bad)[0]
                env, *entry = first.tolist()
                where = f"entry {entry[0]} " if entry else ""
                raise ValueError(
                    f"action of environment {env}: {where}is {float(array[tuple(first)])}; actions of mode "
                    f"{self.mode!r} are whole numbers"
                )
        integral = np.issubdtype(array.dtype, np.integer) or (
            np.issubdtype(array.dtype, np.floating) and bool(np.all(np.mod(array, 1) == 0))
        )
        if array.shape != expected or not integral:
            raise ValueError(
                f"actions must be an array of shape {expected} of integers for action mode {self.mode!r}, "
                f"got shape {array.shape} and dtype {array.dtype}"
            )
        values = array.astype(np.int64, copy=False).reshape(n_envs, -1)
        outside = (values < 0) | (values > self._upper_array)
        if outside.any():
            bad = np.flatnonzero(row_any(outside))
            raise ValueError(
                f"action {values[bad[0]].tolist()} of environment {bad[0]} is outside the action space of mode "
                f"{self.mode!r}: entry i in 0..{list(self.upper)}[i]"
            )
        return values

    def decode_batch(
        self,
        values: np.ndarray,
        previous_replicas: np.ndarray,
        previous_cores: np.ndarray,
        available: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The deployments a batch of checked actions asks for: replicas, cores (N, V), the rule
        applied per environment (``ActionFix`` values) and whether it differs from the previous
        deployment (N,). ``available`` (N,): the cores available now where a ``budget_trace`` makes
        them fewer than the budget (None: the budget)."""
        n_env = len(values)
        budget = filled(n_env, self.budget_cores, np.int64) if available is None else np.asarray(available, np.int64)
        table = self.table if self.table is not None else _NO_TABLE
        previous_replicas = np.asarray(previous_replicas, dtype=np.int64)
        previous_cores = np.asarray(previous_cores, dtype=np.int64)
        deployment = np.empty((2, n_env, self.n_variants), dtype=np.int64)
        flags = np.empty((3, n_env), dtype=np.int8)
        decode(
            np.asarray(values, dtype=np.int64),
            ACTION_MODES.index(self.mode),
            table,
            self.n_variants,
            self.min_cores,
            budget,
            _RAISED,
            previous_replicas,
            previous_cores,
            deployment,
            flags,
        )
        replicas, cores, fix = deployment[0], deployment[1], flags[0]
        changed = flags[2].view(np.bool_)
        if np.count_nonzero(flags[1]):  # over the budget (a fraction of ndarray.any's time on a few elements)
            over = flags[1].view(np.bool_)
            replicas, cores, fix = self._fit(replicas, cores, fix, over, budget, previous_replicas, previous_cores)
            changed = row_any((replicas != previous_replicas) | (cores != previous_cores))
        return replicas, cores, fix, changed

    def _fit(
        self,
        replicas: np.ndarray,
        cores: np.ndarray,
        fix: np.ndarray,
        over: np.ndarray,
        budget: np.ndarray,
        previous_replicas: np.ndarray,
        previous_cores: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The over-budget rule (``over_budget``) for the deployments ``over`` (N,) their ``budget``
        (N,); a previous deployment kept that no longer fits the cores available is cut to fit
        (``cut_to_budget``)."""
        over = over.copy()
        if self.over_budget == "scale":
            cores = cores.copy()
            for row in np.flatnonzero(over):
                scaled = scale_to_budget(replicas[row], cores[row], int(budget[row]), self.min_cores)
                if scaled is not None:
                    cores[row], over[row], fix[row] = scaled, False, ActionFix.OVER_BUDGET_SCALED
        if over.any():
            fix[over] = ActionFix.OVER_BUDGET_KEPT_PREVIOUS
            replicas = np.where(over[:, None], previous_replicas, replicas)
            cores = np.where(over[:, None], previous_cores, cores)
            cut = over & (row_sum(replicas * cores) > budget)
            if cut.any():
                replicas, cores = replicas.copy(), cores.copy()
                for row in np.flatnonzero(cut):
                    replicas[row], cores[row] = cut_to_budget(
                        replicas[row], cores[row], int(budget[row]), self.min_cores
                    )
                fix[cut] = ActionFix.BUDGET_CUT
        return replicas, cores, fix

    def masks(self, available: int) -> np.ndarray:
        """Which actions fit ``available`` cores: per deployment (``deployment`` mode), or per entry
        value, concatenated over the entries (MultiDiscrete modes; a replica count is allowed if one
        replica of ``min_cores`` fits, a core count if it fits alone)."""
        if self.mode == "deployment":
            assert self._row_cores is not None
            return self._row_cores <= available  # every env step of MaskablePPO asks: summed once
        values = [np.arange(high + 1) for high in self.upper]
        if self.mode == "cores":
            return np.concatenate([v <= available for v in values])
        n = self.n_variants
        replicas = [v * self.min_cores <= available for v in values[:n]]
        return np.concatenate([*replicas, *(v <= available for v in values[n:])])

    def encode(self, replicas: np.ndarray, cores: np.ndarray) -> np.ndarray | int:
        """The action of this mode that asks for (replicas, cores); the inverse of ``decode``."""
        replicas = np.asarray(replicas, dtype=np.int64)
        cores = np.asarray(cores, dtype=np.int64)
        if self.mode == "cores":
            if np.any(replicas > 1):
                raise ValueError("the 'cores' action mode has one replica per variant; use action_mode='replicas'")
            return np.where(replicas > 0, cores, 0)
        if self.mode == "replicas":
            return np.concatenate([replicas, np.where(replicas > 0, cores, 0)])
        assert self.table is not None
        wanted = np.where(replicas > 0, cores, 0)
        if np.any(replicas > 1):
            raise ValueError("the 'deployment' action mode has one replica per variant")
        matches = np.flatnonzero((self.table == wanted).all(axis=1))
        if matches.size == 0:
            raise ValueError(f"deployment {wanted.tolist()} is not in the feasible table (budget or min cores)")
        return int(matches[0])
