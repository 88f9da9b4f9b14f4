"""Hold the fast simulator to the request-level reference, episode by episode
(``infadapter validate-fast``).

    infadapter validate-fast                       (or: python -m infadapter_scripts.validate_fast)
    infadapter validate-fast --agents infadapter vpa-50 --windows 5 --cases agents

Two sets of episodes (``--cases``), each played on the fast simulator and replayed on the
request-level one with Poisson arrivals under ``REFERENCE_SEEDS`` (the reference's own spread over
them is its noise floor):

- ``agents``: every agent (beta 0.05) under each dispatcher of ``--dispatchers`` on the paper slice,
  ``--windows`` held-out windows of the test days (seed ``--window-seed``), the busiest 1,260-s
  window of the test days, and three synthetic traces (``synthetic_scenarios``): a 3x spike held two
  minutes, a ramp from 20 req/s to the budget's reach, a square wave between 40 and 200 req/s. The
  agent plays on the fast simulator; its recorded actions (and quotas) are replayed on both.
- ``stress``: fixed deployments (``STRESS_SERVERS``: three variants on three core sizes) of 1, 2, 5
  and 10 replicas at a constant load of 0.8, 0.95, 1.05, 1.2 and 1.5 times the deployment's capacity
  at the SLO, ``STRESS_INTERVALS`` intervals each.

Each set runs under every replica routing of ``--routings`` (``random``, ``round_robin``; the agents'
episodes under ``round_robin`` with the ``accuracy_first`` dispatcher only).

Per episode: the SLO-violation % of the fast model and the reference's mean over its seeds, their
difference, the reference's half-range (noise floor); per interval the relative error of the fast
P99 against the reference's median P99 (where both served). An episode holds when its difference is
within ``VIOLATION_TOLERANCE_PTS`` or inside the reference's own range over its seeds, and the
median of its P99 errors is within ``P99_TOLERANCE``. Writes ``episodes.csv`` and ``summary.md``
into ``--out`` (and with ``--docs`` a page that says how the comparison is made) and prints the
summary; exits 1 if an episode misses.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import infadapter_env
from infadapter_env.core import agent_registry
from infadapter_env.core.rollout import play, replay
from infadapter_env.leaderboard.protocol import EPISODE_S, Scenario, env_kwargs
from infadapter_env.options import option
from infadapter_env.provenance import git_commit
from infadapter_env.sim.cluster import DISPATCHERS, REPLICA_ROUTINGS
from infadapter_env.world.profiles import load_profile
from infadapter_env.world.traces import scenario as load_scenario
from infadapter_env.world.traces import synthetic, valid_window_starts, window_means, write_counts

VIOLATION_TOLERANCE_PTS = 2.0
P99_TOLERANCE = 0.15
BETA = 0.05
REFERENCE_SEEDS = (0, 1, 2, 3, 4)
# The stress grid: (variant index, cores per replica) of the shipped world, replicas, loads.
STRESS_SERVERS = ((0, 2), (2, 4), (4, 8))
STRESS_REPLICAS = (1, 2, 5, 10)
STRESS_LOADS = (0.8, 0.95, 1.05, 1.2, 1.5)
STRESS_INTERVALS = 10
SYNTHETIC_KINDS = ("spike", "ramp", "square")
DOCS_INTRO = """# The fast simulator against the request-level reference

The fast simulator (`simulator="fast"`, used for training) is held to the request-level reference
(`simulator="request"`, every request simulated) episode by episode: an episode is played on the fast
simulator and its actions (and quotas) are replayed on both, the reference under five arrival seeds.
The reference's spread over its seeds is its own noise floor; an episode *holds* when the fast
model's violation % is within 2 points of the reference's mean or inside the reference's own range,
and the median over its intervals of the fast P99's relative error (against the reference's median
P99) is within 15 %.

**How a request reaches a replica.** Both simulators route a request to one of its variant's
replicas in the same way, set by `replica_routing`:

- `"random"` (the default): a replica drawn uniformly at random. The original deployment puts a
  Kubernetes Service in front of each variant's TF-Serving pods and its dispatcher posts to that
  Service (`auto_tuner/dispatcher/main.py`, `auto_tuner/utils/tfserving/deploy_ml_service.py`);
  kube-proxy's default iptables mode picks a pod at random for each new connection, and the
  dispatcher's pooled connections each went to a random pod.
- `"round_robin"`: each replica in turn, as kube-proxy's IPVS mode does by default.

A full replica drops the request (it is not passed to another replica of the same variant; under
`accuracy_first` it goes on to the other variants). The paper ran one replica per variant, where
the two rules agree; with several replicas they differ most just past saturation, where a random
share lets each replica's queue fall below its bound at times and turns keep every replica full
(ten ResNet18 replicas at 1.2 times their capacity: about 65 % against 91 % of requests over the
SLO, in both simulators).

**What the fast model does** (`infadapter_env/sim/fast.py`'s docstring): it follows one replica's
queue, the fluid share of its variant's queue and around it a diffusion fed by the replica's random
share of each second's count and its random completions, reflected at empty and at full; just past
saturation, where that queue spreads over its bound quickly, it is in the bounded diffusion's steady
state; under the `quota` dispatcher a variant receives its round robin's cycle in part of the cycle
and queues it there.

**Known limits** (the episodes that miss, listed at the end of the last run):

- *P99 of one replica near its saturation, at low violation %*: a replica that receives all (or, in
  turn, a fixed share) of each second's count gets a stream whose count the trace fixes; the fast
  model reads its latency table at a utilisation made effective for that smoothness, weighted by how
  long the queue remembers, which puts the P99 15-30 % low there. The violation % of these episodes
  agrees (it is set by the loads, not the tail).
- *Just past saturation with several replicas on a real trace*: the reference's own range over
  seeds is several points wide there (a replica's queue wanders for minutes), and the fast model
  sits outside it in a few episodes, low: since physics v3's slower servers (common speed 0.975)
  more episodes run there, and the fast model reads mark on the paper slice 4.8 points low (3.8 %
  against 8.6 %), hpa 3.2 points low and ppo-forecast on the busiest window 2.7 points low. Two
  replicas of ResNet50 at 1.2 x capacity have their P99 32 % off. These are open (issue 26).

Regenerate this page with
`infadapter validate-fast --out results/fast_vs_request --docs docs/validation.md`.

"""


@dataclass
class ValidationOptions:
    """Validate the fast simulator against the request-level simulator."""

    out: str = option("results/fast_vs_request", "output folder")
    agents: list[str] = option([], "agents (default: every registered agent)")
    windows: int = option(3, "held-out test-day windows besides the other agent scenarios")
    window_seed: int = option(7, "seed of the window draw")
    dispatchers: list[str] = option(list(DISPATCHERS), "dispatchers the agents' episodes run under")
    routings: list[str] = option(list(REPLICA_ROUTINGS), "replica routings the episodes run under")
    cases: list[str] = option(["agents", "stress"], "which sets of episodes: agents, stress")
    workers: int = option(2, "parallel processes")
    docs: str | None = option(None, "also write the report here as a docs page (e.g. docs/validation.md)")


def validation_scenarios(windows: int, seed: int) -> list[Scenario]:
    """The paper slice and ``windows`` held-out windows of the test days (a fixed draw)."""
    starts = valid_window_starts(load_scenario("test"), EPISODE_S)
    chosen = sorted(int(s) for s in np.random.default_rng(seed).choice(starts, size=windows, replace=False))
    return [Scenario("paper", {"scenario": "paper"})] + [Scenario(f"test@{s}", window_kwargs(s)) for s in chosen]


def window_kwargs(start: int) -> dict[str, Any]:
    """The env settings of the 1,260-s window of the test days starting at second ``start``."""
    return {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}


def busiest_window() -> Scenario:
    """The busiest 1,260-s window of the test days (by mean rate)."""
    test = load_scenario("test")
    starts = valid_window_starts(test, EPISODE_S)
    start = int(starts[int(np.argmax(window_means(test, starts, EPISODE_S)))])
    return Scenario(f"busiest@{start}", window_kwargs(start))


def budget_reach_rps(budget_cores: int = 20) -> float:
    """The most requests per second the shipped world serves within the SLO on ``budget_cores``
    cores: the best variant and core size, replicated as often as the budget allows."""
    profile = load_profile()
    best = 0.0
    for cores in range(profile.min_cores, min(budget_cores, profile.max_cores_per_replica) + 1):
        best = max(best, (budget_cores // cores) * float(profile.per_replica_rps[:, cores].max()))
    return best


def synthetic_scenarios(folder: Path) -> list[Scenario]:
    """The synthetic traces (1,260 s each), written into ``folder`` as trace files so that their
    episodes replay from their recorded settings: a 3x spike of the paper slice's mean (60 req/s)
    held two minutes, a ramp from 20 req/s to the budget's reach, a square wave of 40 and 200 req/s."""
    params: dict[str, dict[str, float]] = {"spike": {}, "ramp": {"low": 20.0, "high": round(budget_reach_rps(), 1)}}
    out = []
    for kind in SYNTHETIC_KINDS:
        trace = synthetic(kind, EPISODE_S, **params.get(kind, {}))
        path = write_counts(trace.arrivals, folder, kind)
        out.append(Scenario(kind, {"trace": str(path.resolve())}))
    return out


def violation_pct(infos: list[dict[str, Any]]) -> float:
    """An episode's requests over the SLO or dropped, in % of its arrivals."""
    return 100 * sum(i["violated"] for i in infos) / max(sum(i["arrivals"] for i in infos), 1e-12)


def episode_row(fast: list[dict[str, Any]], references: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """What one episode gives: violation % of the fast model and of the reference (mean and
    half-range over its seeds), their difference, whether it holds, and the per-interval P99
    relative errors against the reference's median P99."""
    fast_pct = violation_pct(fast)
    ref_pcts = [violation_pct(r) for r in references]
    ref_mean = statistics.fmean(ref_pcts)
    errors = []
    for k, interval in enumerate(fast):
        ref_p99 = statistics.median(r[k]["latency_p99_ms"] for r in references)
        if ref_p99 > 0 and interval["latency_p99_ms"] > 0:
            errors.append(abs(interval["latency_p99_ms"] / ref_p99 - 1.0))
    diff = fast_pct - ref_mean
    median_error = statistics.median(errors) if errors else 0.0
    within_noise = min(ref_pcts) <= fast_pct <= max(ref_pcts)
    return {
        "violation_pct_fast": fast_pct,
        "violation_pct_request": ref_mean,
        "violation_diff_pts": diff,
        "reference_noise_pts": (max(ref_pcts) - min(ref_pcts)) / 2,
        "holds": (abs(diff) <= VIOLATION_TOLERANCE_PTS or within_noise) and median_error <= P99_TOLERANCE,
        "p99_median_rel_error": median_error,
        "p99_intervals": len(errors),
        "p99_rel_errors": json.dumps([round(e, 6) for e in errors]),
    }


def compare(
    agent_name: str, scenario: Scenario, dispatcher: str = "accuracy_first", routing: str = "random"
) -> dict[str, Any]:
    """One agent's episode on the fast simulator, replayed on both simulators (the reference under
    each of ``REFERENCE_SEEDS``)."""
    import torch

    torch.set_num_threads(1)
    # The protocol's own simulator may be the request-level one: the agent plays on the fast one here.
    kwargs = env_kwargs(scenario, BETA) | {"simulator": "fast", "dispatcher": dispatcher, "replica_routing": routing}
    metrics, actions, quotas, settings = play(agent_registry.make(agent_name), kwargs, 0)
    fast = replay(settings | {"seed": 0, "simulator": "fast"}, actions, quotas)
    references = [replay(settings | {"seed": s, "simulator": "request"}, actions, quotas) for s in REFERENCE_SEEDS]
    return {
        "case": "agent",
        "group": agent_name,
        "agent": agent_name,
        "scenario": scenario.name,
        "dispatcher": dispatcher,
        "routing": routing,
        **episode_row(fast, references),
        "objective_fast": metrics["objective"],
    }


def fixed_episode(
    simulator: str, variant: int, cores: int, replicas: int, rate: float, seed: int, routing: str = "random"
) -> list[dict[str, Any]]:
    """The infos of ``STRESS_INTERVALS`` intervals of one fixed deployment (``replicas`` x
    ``cores`` of ``variant``) at a constant ``rate``, from an empty cluster."""
    env = gym.make(
        "InfAdapter-v0",
        trace=np.full(STRESS_INTERVALS * 30, rate),
        simulator=simulator,
        action_mode="replicas",
        budget_cores=max(20, replicas * cores),
        replica_routing=routing,
        disable_env_checker=True,
    )
    env.reset(seed=seed)
    n_var = len(load_profile().variants)
    action = np.zeros(2 * n_var, dtype=np.int64)
    action[variant], action[n_var + variant] = replicas, cores
    return [env.step(action)[4] for _ in range(STRESS_INTERVALS)]


def stress_cases() -> list[tuple[int, int, int, float]]:
    """The stress grid: (variant, cores, replicas, load as a multiple of capacity at the SLO)."""
    return [(v, c, r, load) for v, c in STRESS_SERVERS for r in STRESS_REPLICAS for load in STRESS_LOADS]


def compare_fixed(variant: int, cores: int, replicas: int, load: float, routing: str = "random") -> dict[str, Any]:
    """One stress case on both simulators."""
    profile = load_profile()
    rate = load * replicas * float(profile.per_replica_rps[variant, cores])
    fast = fixed_episode("fast", variant, cores, replicas, rate, 0, routing)
    references = [fixed_episode("request", variant, cores, replicas, rate, s, routing) for s in REFERENCE_SEEDS]
    server = f"{profile.names[variant]}@{cores}"
    return {
        "case": "stress",
        "group": server,
        "agent": f"{replicas} x {server}",
        "scenario": f"load {load:g} ({rate:.0f} req/s)",
        "dispatcher": "accuracy_first",
        "routing": routing,
        **episode_row(fast, references),
        "objective_fast": float("nan"),
    }


def summarise(rows: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """The summary (markdown lines): per agent (or stress server) and dispatcher, then every
    episode that misses; and whether every episode holds."""
    lines = [
        "| case | dispatcher | replica routing | episodes | violation % (request, mean over seeds) | "
        "violation % (fast) | worst abs. difference (pts) | reference noise there (pts) | "
        "worst episode's median P99 error | holding |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in dict.fromkeys((r["case"], r["group"], r["dispatcher"], r["routing"]) for r in rows):
        mine = [r for r in rows if (r["case"], r["group"], r["dispatcher"], r["routing"]) == key]
        worst = max(mine, key=lambda r: abs(r["violation_diff_pts"]))
        name = key[1] if key[0] == "agent" else f"stress: {key[1]}"
        lines.append(
            f"| {name} | {key[2]} | {key[3]} | {len(mine)} | "
            f"{statistics.fmean(r['violation_pct_request'] for r in mine):.2f} | "
            f"{statistics.fmean(r['violation_pct_fast'] for r in mine):.2f} | {abs(worst['violation_diff_pts']):.2f} | "
            f"{worst['reference_noise_pts']:.2f} | {100 * max(r['p99_median_rel_error'] for r in mine):.1f} % | "
            f"{sum(bool(r['holds']) for r in mine)} of {len(mine)} |"
        )
    misses = [r for r in rows if not r["holds"]]
    within = sum(abs(r["violation_diff_pts"]) <= VIOLATION_TOLERANCE_PTS for r in rows)
    lines += [
        "",
        f"{len(rows) - len(misses)} of {len(rows)} episodes hold; {within} are within "
        f"{VIOLATION_TOLERANCE_PTS:g} points of the reference's mean (the others inside its own range over "
        f"seeds {list(REFERENCE_SEEDS)}, or missing). An episode's P99 error is the median over its intervals "
        f"(tolerance {100 * P99_TOLERANCE:.0f} %).",
    ]
    if misses:
        lines += ["", "Episodes that miss:", ""]
        lines += [
            f"- {r['agent']} on {r['scenario']} ({r['dispatcher']}, {r['routing']} routing): "
            f"fast {r['violation_pct_fast']:.2f} %, "
            f"reference {r['violation_pct_request']:.2f} % (noise {r['reference_noise_pts']:.2f} pts), "
            f"median P99 error {100 * r['p99_median_rel_error']:.1f} %"
            for r in misses
        ]
    return lines, not misses


def run_case(case: tuple[Any, ...]) -> dict[str, Any]:
    """One episode of either set: ("agent", name, scenario, dispatcher, routing) or ("stress", v, c, r,
    load, routing)."""
    return compare(*case[1:]) if case[0] == "agent" else compare_fixed(*case[1:])


def run(cases: Iterable[tuple[Any, ...]], workers: int) -> list[dict[str, Any]]:
    """Every case's row, in order, with progress and the time left on stderr."""
    cases = list(cases)
    rows = []
    started = time.perf_counter()

    def progress(n: int) -> None:
        left = (time.perf_counter() - started) / n * (len(cases) - n)
        print(f"\r{n}/{len(cases)} episodes, about {left / 60:.0f} min left ", end="", file=sys.stderr, flush=True)

    if workers <= 1:
        for n, case in enumerate(cases, start=1):
            rows.append(run_case(case))
            progress(n)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for n, row in enumerate(pool.map(run_case, cases), start=1):
                rows.append(row)
                progress(n)
    print(file=sys.stderr)
    return rows


def validation_cases(args: ValidationOptions, names: list[str]) -> list[tuple[Any, ...]]:
    """The episodes ``args`` asks for (``--cases``)."""
    cases: list[tuple[Any, ...]] = []
    if "agents" in args.cases:
        scenarios = [
            *validation_scenarios(args.windows, args.window_seed),
            busiest_window(),
            *synthetic_scenarios(Path(args.out) / "traces"),
        ]
        settings = [(d, "random") for d in args.dispatchers if "random" in args.routings]
        if "round_robin" in args.routings:
            settings.append(("accuracy_first", "round_robin"))
        cases += [("agent", n, sc, d, routing) for d, routing in settings for n in names for sc in scenarios]
    if "stress" in args.cases:
        cases += [("stress", *case, routing) for routing in args.routings for case in stress_cases()]
    return cases


def validate(args: ValidationOptions, names: list[str], command: str) -> tuple[str, bool]:
    """Run the episodes of ``args.cases``, write ``episodes.csv`` and ``summary.md`` into
    ``args.out``; the summary and whether every episode held."""
    started = time.perf_counter()
    rows = run(validation_cases(args, names), args.workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "episodes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table, ok = summarise(rows)
    sets = []
    if "agents" in args.cases:
        sets.append(
            f"agents at beta {BETA} under {', '.join(args.dispatchers)} on the paper slice, {args.windows} "
            f"held-out windows (seed {args.window_seed}), the busiest window of the test days and the synthetic "
            f"traces {', '.join(SYNTHETIC_KINDS)} (random replica routing; round robin under accuracy_first)"
        )
    if "stress" in args.cases:
        sets.append(
            f"the stress grid's {len(stress_cases())} fixed deployments ({STRESS_INTERVALS} intervals each) under "
            f"{' and '.join(args.routings)} replica routing"
        )
    text = [
        "# Fast simulator against the request-level reference",
        "",
        f"Command: `{command.strip()}` ({time.perf_counter() - started:.0f} s; commit {git_commit()}, "
        f"infadapter-gym {infadapter_env.__version__}). Episodes: {'; '.join(sets)}. Request-level replays "
        f"with Poisson arrivals, seeds {list(REFERENCE_SEEDS)}.",
        "",
        *table,
    ]
    (out / "summary.md").write_text("\n".join(text) + "\n")
    if args.docs:
        page = ["## The last run", "", *text[2:]]
        Path(args.docs).write_text(DOCS_INTRO + "\n".join(page) + "\n")
    return "\n".join(text), ok
