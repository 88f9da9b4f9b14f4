"""A leaderboard sweep: every (contender, beta, scenario, seed) of a protocol, run on local
processes, in this process, or on Ray; rows appended to the CSV as they finish, so that an
interrupted sweep keeps them and the same call resumes it."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from infadapter_env.leaderboard.episode import Task, run_task
from infadapter_env.leaderboard.protocol import get_protocol
from infadapter_env.leaderboard.store import CSV_NAME, ResultsError, append, read_rows, rewrite, row_key, to_frame

BACKENDS = ("local", "serial", "ray")


def run_sweep(
    protocol: str,
    agents: Sequence[str],
    scenarios: Sequence[str],
    betas: Sequence[float],
    seeds: Sequence[int],
    out: Path,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    log: Any = print,
) -> pd.DataFrame:
    """Run the missing rows of the sweep into ``out/leaderboard.csv`` and return the sweep's rows.

    ``KeyboardInterrupt`` propagates after the finished rows are saved."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    get_protocol(protocol)  # a clear error for an unknown name
    path = out / CSV_NAME
    rows, dropped = read_rows(path)
    others = sorted({row["protocol"] for row in rows} - {protocol})
    if others:
        raise ResultsError(
            f"{path} holds rows of protocol {', '.join(others)}; one folder holds one protocol: choose another --out"
        )
    if dropped:
        log(f"dropped {dropped} half-written, edited or duplicate row(s) of {path}; they will be redone")
    rewrite(path, rows)
    done = {row_key(row) for row in rows}
    wanted = [(protocol, a, float(b), s, int(seed)) for b in betas for s in scenarios for seed in seeds for a in agents]
    tasks = [Task(*key) for key in wanted if key not in done]
    if done:
        log(f"resuming: {len(wanted) - len(tasks)} of {len(wanted)} rows already in {path}")
    with tqdm(total=len(tasks), desc="leaderboard", unit="episode", file=sys.stderr) as bar:
        for row in execute(tasks, backend, workers, address):
            append(path, row)
            bar.update()
    all_rows, _ = read_rows(path)
    wanted_keys = set(wanted)
    return to_frame([row for row in all_rows if row_key(row) in wanted_keys])


def execute(tasks: list[Task], backend: str, workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    """Rows of ``tasks`` in the order they finish."""
    if backend == "serial" or (workers <= 1 and backend == "local"):
        for task in tasks:
            yield run_task(task)
    elif backend == "local":
        yield from _execute_processes(tasks, workers)
    else:
        yield from _execute_ray(tasks, workers, address)


def _execute_processes(tasks: list[Task], workers: int) -> Iterator[dict[str, Any]]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # torch and threads do not survive fork well
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(run_task, task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _execute_ray(tasks: list[Task], workers: int, address: str | None) -> Iterator[dict[str, Any]]:
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
    remote = ray.remote(run_task)
    try:
        pending = [remote.remote(task) for task in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()
