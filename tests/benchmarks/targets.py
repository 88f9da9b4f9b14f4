"""Targets a benchmark checks: each is recorded in the benchmark's ``extra_info["targets"]`` (the
performance page shows it, met or not) before the benchmark fails on the ones not met, so that a run
with a missed target still writes every figure."""

from __future__ import annotations

from typing import Any, NamedTuple


class Target(NamedTuple):
    name: str
    value: float
    bound: float
    at_most: bool  # the value must be <= bound (else >= bound)

    @property
    def met(self) -> bool:
        return self.value <= self.bound if self.at_most else self.value >= self.bound

    def __str__(self) -> str:
        sign = "<=" if self.at_most else ">="
        return f"{self.name} {self.value:.3g} (target {sign} {self.bound:g}): {'met' if self.met else 'NOT met'}"


def at_most(name: str, value: float, bound: float) -> Target:
    return Target(name, float(value), float(bound), True)


def at_least(name: str, value: float, bound: float) -> Target:
    return Target(name, float(value), float(bound), False)


def check(benchmark: Any, *targets: Target) -> None:
    """Record every target in ``benchmark.extra_info["targets"]``, then fail on the missed ones."""
    benchmark.extra_info.setdefault("targets", []).extend(str(target) for target in targets)
    missed = [str(target) for target in targets if not target.met]
    assert not missed, "; ".join(missed)
