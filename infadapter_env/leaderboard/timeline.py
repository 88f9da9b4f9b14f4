"""One episode interval by interval: the rows ``infadapter play`` writes and its timeline draws.

A row is one decision interval of one agent, read from the env's step ``info``: the requests that
arrived, the deployment that served them (replicas, cores and target capacity per variant), the
latency and SLO violations, and the reward with its terms (``reward = alpha * aa_effective -
beta * rc - gamma * lc``). ``play_contender`` plays a protocol's contender as the leaderboard
plays it (same agent options, env settings and hold), with env settings of one's own on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infadapter_env.core import agent_registry
from infadapter_env.core.rollout import Played, play_steps
from infadapter_env.leaderboard.protocol import Protocol, Scenario, env_kwargs, get_protocol

# Per-variant columns are named by the variant: replicas_resnet18, cores_resnet18, capacity_rps_resnet18, ...
PER_VARIANT = ("replicas", "cores", "capacity_rps")
LEADING = ("agent", "step", "start_s", "end_s", "arrivals", "mean_rate_rps", "peak_rate_rps", "capacity_rps", "cores")
TRAILING = (
    "served_in_slo",
    "violated",
    "slo_violation_pct",
    "dropped",
    "latency_p50_ms",
    "latency_p99_ms",
    "aa_effective",
    "aa_planned",
    "rc",
    "lc",
    "reward",
    "action_fix",
)


def interval_columns(variants: Sequence[str]) -> list[str]:
    """The columns of the rows, in order, for the env's variants (``reset`` info ``variants``)."""
    return [*LEADING, *(f"{what}_{name}" for what in PER_VARIANT for name in variants), *TRAILING]


def interval_rows(
    agent: str, infos: Sequence[Mapping[str, Any]], interval_s: int, variants: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per step info. ``start_s``/``end_s``: the interval's seconds from the episode start;
    ``capacity_rps`` and ``cores``: totals over the variants; ``cores_<variant>``: replicas x cores
    per replica; ``slo_violation_pct``: violated requests as a share of the interval's arrivals;
    ``action_fix``: the rule the env applied to the action (empty if none)."""
    rows = []
    for info in infos:
        end_s = int(info["time_s"])
        row: dict[str, Any] = {
            "agent": agent,
            "step": int(info["step"]),
            "start_s": end_s - interval_s,
            "end_s": end_s,
            "arrivals": info["arrivals"],
            "mean_rate_rps": info["mean_rate_rps"],
            "peak_rate_rps": info["peak_rate_rps"],
            "capacity_rps": float(sum(info["capacity_rps"])),
            "cores": info["cores"],
        }
        per_variant = {
            "replicas": info["replicas"],
            "cores": [r * c for r, c in zip(info["replicas"], info["cores_per_replica"], strict=True)],
            "capacity_rps": info["capacity_rps"],
        }
        for what in PER_VARIANT:
            row |= {f"{what}_{name}": value for name, value in zip(variants, per_variant[what], strict=True)}
        row |= {key: info[key] for key in TRAILING if key in info}
        row["slo_violation_pct"] = 100 * info["slo_violation_rate"]
        row["action_fix"] = info["action_fix"] or ""
        rows.append({column: row[column] for column in interval_columns(variants)})
    return rows


def played_rows(agent: str, played: Played) -> list[dict[str, Any]]:
    """The rows of a played episode."""
    return interval_rows(agent, played.infos, int(played.settings["interval_s"]), played.reset_info["variants"])


def play_contender(
    protocol: str | Protocol,
    label: str,
    scenario: Scenario,
    beta: float,
    seed: int,
    env: Mapping[str, Any] | None = None,
) -> Played:
    """Play contender ``label`` of ``protocol`` on ``scenario`` at ``beta`` with ``seed`` as the
    leaderboard does; ``env``: settings that replace the protocol's (e.g. ``simulator``)."""
    from infadapter_env.leaderboard.episode import contender as find_contender

    chosen = get_protocol(protocol)
    contender = find_contender(chosen, label)  # a contender, or any other agent as evaluate starts it

    agent = agent_registry.make(contender.agent, **contender.options)
    kwargs = env_kwargs(scenario, beta, chosen, contender) | dict(env or {})
    return play_steps(agent, kwargs, seed, chosen.hold_s)
