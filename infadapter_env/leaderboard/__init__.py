"""The benchmark harness as a library: protocols, one episode, metrics, replay, checksums, sweeps.

    from infadapter_env.leaderboard import evaluate, load_results

    results = evaluate(lambda: MyAgent(), protocol="default", betas=[0.05])   # a pandas DataFrame
    results.groupby("beta")[["objective", "slo_violation_pct", "mean_cores"]].mean()

    board = load_results("results/leaderboard")    # the rows `infadapter leaderboard` wrote

``evaluate`` plays an agent (anything with ``reset(info)`` and ``act(observation, info)``, see
``infadapter_agents.Agent``) on a protocol's scenarios, betas and seeds, exactly as the leaderboard
plays its contenders, and returns one row per episode with the leaderboard's columns
(``COLUMNS``), ready to compare with ``load_results``. The modules: ``protocol`` (what a protocol
fixes), ``episode`` (a row and its checksum; playing, metrics and replay come from
``infadapter_env.core.rollout``), ``store`` (the CSV), ``sweep`` (the
backends), ``summary`` (``summary.md`` and the paper's headline), ``figures``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from infadapter_env.core.rollout import episode_metrics, play, replay
from infadapter_env.leaderboard.episode import COLUMNS, METRIC_COLUMNS, Task, episode_row, row_digest
from infadapter_env.leaderboard.protocol import DEFAULT_BETAS, PROTOCOLS, Protocol, env_kwargs, get_protocol
from infadapter_env.leaderboard.store import load_results, to_frame
from infadapter_env.provenance import git_commit


def evaluate(
    agent_factory: Callable[[], Any],
    protocol: str | Protocol = "default",
    betas: Sequence[float] = DEFAULT_BETAS,
    scenarios: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Play a new agent from ``agent_factory()`` on every (beta, scenario, seed) of ``protocol`` (a
    name, or a ``Protocol`` of your own; its scenarios and seeds unless given) with the protocol's
    env settings for a submitted agent and its hold, and return the rows as a DataFrame. ``name``
    labels the rows (default: the agent's ``name`` attribute, else its class name)."""
    chosen = get_protocol(protocol)
    names = list(scenarios) if scenarios is not None else list(chosen.scenarios)
    unknown = [s for s in names if s not in chosen.scenarios]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {unknown} of protocol {chosen.name!r}; valid: {', '.join(chosen.scenarios)}"
        )
    rows, commit = [], git_commit()  # the commit: read once for all the rows
    for beta in betas:
        for scenario in names:
            for seed in seeds if seeds is not None else chosen.seeds:
                agent = agent_factory()
                label = name or str(getattr(agent, "name", "") or type(agent).__name__)
                task = Task(chosen.name, label, float(beta), scenario, int(seed), commit=commit)
                kwargs = env_kwargs(chosen.scenarios[scenario], float(beta), chosen)
                options = {"agent": label, "factory": getattr(agent_factory, "__qualname__", repr(agent_factory))}
                rows.append(episode_row(task, agent, kwargs, options, chosen.hold_s))
    return to_frame(rows)


__all__ = [
    "COLUMNS",
    "DEFAULT_BETAS",
    "METRIC_COLUMNS",
    "PROTOCOLS",
    "Protocol",
    "episode_metrics",
    "evaluate",
    "load_results",
    "play",
    "replay",
    "row_digest",
]
