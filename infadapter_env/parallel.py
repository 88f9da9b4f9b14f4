"""Tasks on Ray: a session started here or joined, and results as they finish; and the CPUs this
process may use (``usable_cpus``).

The leaderboard's sweeps and the trainings of ``infadapter_agents.learned.training`` both run their tasks
this way with ``--backend ray``; Ray is an extra (``pip install 'infadapter-gym[ray]'``) and is
imported only when a session starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity where the platform says, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@contextmanager
def ray_session(workers: int, address: str | None) -> Iterator[Any]:
    """The ``ray`` module, with Ray started here (``workers`` CPUs) or joined at ``address``, unless
    this process runs it already; a Ray started here is shut down on leaving."""
    try:
        import ray
    except ImportError:
        raise ValueError("the ray backend needs Ray: pip install 'infadapter-gym[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def ray_results(ray: Any, pending: list[Any]) -> Iterator[Any]:
    """The results of Ray tasks, each as it finishes."""
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
