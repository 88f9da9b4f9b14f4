"""The leaderboard protocols: fixed scenarios, contenders, weights, seeds and env settings; one
episode per row. ``infadapter leaderboard --protocol NAME`` picks one (``PROTOCOLS``).

``default`` (this benchmark's own choices):

- Scenarios: the sealed test split, ``test1``..``test40``: 40 windows of the test days (days
  14-21), 1,260 s each, drawn with seed ``TEST_WINDOW_SEED`` from the windows that avoid the daily
  data gap, stratified by load (``TEST_WINDOW_STRATA``: 9 windows from each of the three lower
  quartiles of the window means, 8 from the 75th-95th percentile and 5 from the busiest 5 %),
  none overlapping another, a validation window or the paper slice
  (``sealed_test_window_starts`` recomputes them; a test checks they still match). No tuning,
  checkpoint selection or design choice of this project looks at them: those use the train days
  and the ``validation`` protocol.
- Contenders: every registered agent with its default options, starting from an empty cluster;
  VPA as ``vpa-<m>/throttled`` and ``vpa-<m>/busy`` (both usage signals), and beside each VPA
  variant its reference row ``resnet<m>@20``: ResNet-m held at the whole budget, 20 cores, for the
  whole episode. VPA-m's violations minus those of ``resnet<m>@20`` are what its controller's lag
  adds; the rest is what one ResNet-m cannot carry at any size VPA may give it. InfAdapter and MS+
  forecast with ``lstm``, the shipped LSTM with the smaller one-step error on the test days
  (``lstm-scaled``: MAE 8.20 req/s, against 8.41 for the original's Keras model ``lstm-keras``).
- Env: ``InfAdapter-v0`` on the request-level simulator (``simulator="request"``: every request's
  arrival time inside its second is drawn, Poisson, and its service time, so seeds matter), with
  ``action_mode="replicas"`` (so that horizontal agents can act; the physics and the objective do
  not depend on the action mode), all other settings at their defaults (accuracy-first
  dispatcher). Seeds 0-4: 200 episodes per (agent, beta), aggregated over seeds (runs) and
  scenarios (tasks).
- An agent that does not read the objective's weights (``Agent.uses_weights`` False: the
  autoscalers, the learned policies that do not observe them) acts the same at every beta, so the
  sweep plays its episode once per (scenario, seed) and scores it at every beta (``Task.rescored_betas``);
  its rows are the rows the episode would give at each beta, and validate as such. An agent whose
  decisions read only what the arrival seed does not change (``Agent.seed_independent``: InfAdapter,
  MS+, the oracle, static provisioning) is played at the first seed and its decisions replayed at
  the others, each distinct decision sequence simulated once per seed and scored at every beta that
  made it (``Task.replayed_seeds``; not where the seed moves the counts,
  ``EnvSettings.seed_moves_counts``). The rows are the same as playing every episode
  (``infadapter leaderboard --no-reuse``; a test compares them).

``validation`` (for tuning; what the default protocol reported until the sealed split existed):

- Scenarios: ``paper`` (day 15, minutes 82-103) and ``val1``..``val30``, 30 windows of the test
  days drawn uniformly with seed ``VALIDATION_WINDOW_SEED`` (``validation_window_starts``). They
  have been looked at: shipped checkpoints were chosen and training choices settled on them.
- Contenders, env and seeds as ``default``.

``paper-2023`` (the experiment as the original code ran it, ``reconfigurable-ml-pipeline/InfAdapter``):

- The paper slice on the request-level simulator, arrivals from the original load generator
  (``"loadgen"``), the original dispatcher (``"quota"``, fed the planner's quotas), seeds 0-4.
- Contenders: ``infadapter`` and ``ms+`` start as ResNet152 at 20 cores, loaded before the load
  starts (``auto_tuner/starter.py``), make no decision for the first 2 minutes
  (``FIRST_DECIDE_DELAY_MINUTES``) and forecast from the run's own history only (EWM until 10
  minutes exist, then the original's Keras LSTM, forecaster ``lstm-keras``; +10 %).
  ``vpa-<m>/<usage>`` starts as ResNet-m at 20 cores, its VPA
  object is created after 60 s, samples once a minute, and the adapter applies its target from
  2 minutes on (the paper code's rule in ``agents.vpa``), under each usage signal
  (``throttled``, ``busy``); ``resnet<m>@20`` starts and stays as ResNet-m at 20 cores.

All: objective weights alpha 1 and gamma 0.001 fixed, beta swept over ``DEFAULT_BETAS``. The
harness checks that the env's settings are the same after the episode. Seeds go to
``env.reset(seed=...)``. Decision times are measured, not replayed: they are excluded when rows
are compared or validated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from infadapter_env.core import agent_registry
from infadapter_env.core.objective import PAPER_ALPHA, PAPER_GAMMA
from infadapter_env.world.traces import PAPER_SLICE_S, valid_window_starts, window_means
from infadapter_env.world.traces import scenario as load_scenario

DEFAULT_BETAS = (0.01, 0.02, 0.05, 0.1, 0.2)
ALPHA, GAMMA = PAPER_ALPHA, PAPER_GAMMA  # the paper's accuracy and loading-cost weights
EPISODE_S = 1260
VALIDATION_WINDOW_SEED = 2023
VALIDATION_WINDOWS = 30
VALIDATION_WINDOW_STARTS = (  # seconds into the test days (validation_window_starts)
    27_626, 41_742, 58_748, 75_506, 77_693, 103_617, 107_973, 124_909, 135_442, 150_073,
    160_487, 164_390, 176_320, 178_248, 196_077, 205_016, 225_601, 292_534, 304_538, 324_753,
    348_358, 357_179, 376_403, 402_239, 412_103, 421_245, 480_246, 526_301, 586_041, 619_152,
)  # fmt: skip
TEST_WINDOW_SEED = 2026
# The sealed test windows' load strata: (from, to) percentiles of the 1,260-s window means of the
# test days, and how many windows each gives; the busiest 5 % at 2.5 times its share.
TEST_WINDOW_STRATA = ((0, 25, 9), (25, 50, 9), (50, 75, 9), (75, 95, 8), (95, 100, 5))
TEST_WINDOW_STARTS = (  # seconds into the test days (sealed_test_window_starts)
    19_632, 53_579, 69_853, 95_775, 102_110, 130_046, 142_969, 145_949, 182_202, 211_179,
    217_446, 232_223, 243_825, 283_393, 285_639, 311_674, 327_298, 330_575, 341_284, 370_638,
    379_503, 384_466, 393_500, 406_121, 451_163, 453_074, 495_910, 505_889, 509_083, 538_816,
    567_936, 572_000, 574_571, 588_317, 590_989, 597_765, 633_405, 637_331, 642_088, 670_258,
)  # fmt: skip
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
ACTION_MODE = "replicas"
VPA_DEPTHS = (18, 34, 50, 101, 152)
VPA_USAGE_SIGNALS = ("throttled", "busy")
VPA_HELD_CORES = 20  # the budget: VPA's reference rows hold its variant there


@dataclass(frozen=True)
class Scenario:
    name: str
    env_kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class Contender:
    """One row label of a protocol: a registered agent, its options, and its own env settings."""

    label: str
    agent: str
    options: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    """Everything that fixes a leaderboard: scenarios, contenders, seeds and common env settings."""

    name: str
    scenarios: Mapping[str, Scenario]
    seeds: tuple[int, ...]
    env: Mapping[str, Any]
    contenders: Callable[[], dict[str, Contender]]
    default_out: str
    submitted_env: Mapping[str, Any] = field(default_factory=dict)  # the start of an agent given to ``evaluate``
    hold_s: int = 0  # before this second of an episode the deployment in place is kept, whatever the agent says


def validation_window_starts() -> tuple[int, ...]:
    """The validation windows, recomputed from the recorded seed: a uniform draw of 30 of the
    1,260-s windows of the test days that avoid the data gaps."""
    starts = valid_window_starts(load_scenario("test"), EPISODE_S)
    chosen = np.random.default_rng(VALIDATION_WINDOW_SEED).choice(starts, size=VALIDATION_WINDOWS, replace=False)
    return tuple(sorted(int(s) for s in chosen))


def sealed_test_window_starts() -> tuple[int, ...]:
    """The sealed test windows, recomputed from the recorded seed: per load stratum
    (``TEST_WINDOW_STRATA``), windows drawn uniformly from the gap-free 1,260-s windows of the test
    days whose mean rate falls in the stratum, each kept only if it overlaps neither a window kept
    before it nor a validation window nor the paper slice."""
    trace = load_scenario("test")
    starts = valid_window_starts(trace, EPISODE_S)
    means = window_means(trace, starts, EPISODE_S)
    taken = [*VALIDATION_WINDOW_STARTS, PAPER_SLICE_S[0] - trace.start_s]
    rng = np.random.default_rng(TEST_WINDOW_SEED)
    chosen: list[int] = []
    for low, high, count in TEST_WINDOW_STRATA:
        lower, upper = np.percentile(means, [low, high])
        inside = starts[(means >= lower) & ((means < upper) | (high == 100))]
        kept = 0
        for start in rng.permutation(inside):
            if all(abs(int(start) - other) >= EPISODE_S for other in taken):
                taken.append(int(start))
                chosen.append(int(start))
                kept += 1
                if kept == count:
                    break
        if kept < count:
            raise ValueError(f"load stratum {low}-{high} % holds only {kept} disjoint windows, {count} asked")
    return tuple(sorted(chosen))


def window_scenarios(prefix: str, starts: tuple[int, ...]) -> dict[str, Scenario]:
    """Scenarios ``<prefix>1``.. of the test days' windows starting at ``starts``."""
    out = {}
    for k, start in enumerate(starts, start=1):
        kwargs = {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}
        out[f"{prefix}{k}"] = Scenario(f"{prefix}{k}", kwargs)
    return out


def scenarios() -> dict[str, Scenario]:
    """The default protocol's scenarios: the sealed test windows."""
    return window_scenarios("test", TEST_WINDOW_STARTS)


def validation_scenarios() -> dict[str, Scenario]:
    """The validation protocol's scenarios: the paper slice and the validation windows."""
    return {"paper": Scenario("paper", {"scenario": "paper"}), **window_scenarios("val", VALIDATION_WINDOW_STARTS)}


def vpa_label(depth: int, usage: str) -> str:
    """A VPA contender's label: ``vpa-50/throttled``."""
    return f"vpa-{depth}/{usage}"


def held_label(depth: int) -> str:
    """The label of VPA-m's reference row: ResNet-m held at the whole budget, ``resnet50@20``."""
    return f"resnet{depth}@{VPA_HELD_CORES}"


def held_contender(k: int, depth: int) -> Contender:
    """ResNet-``depth`` held at the whole budget for the whole episode: what capacity alone gives
    VPA-``depth`` (its violations are those no controller of that one variant can avoid)."""
    label = held_label(depth)
    cores = tuple(VPA_HELD_CORES if v == k else 0 for v in range(len(VPA_DEPTHS)))
    return Contender(label, "static-over", {"cores": cores})


def default_contenders() -> dict[str, Contender]:
    """Every registered agent with its default options, except VPA: ``vpa-<m>/<usage>`` under both
    usage signals, and beside them each variant held at the whole budget (``resnet<m>@20``)."""
    out = {}
    for name in agent_registry.names():
        suffix = name.removeprefix("vpa-")
        if name.startswith("vpa-") and suffix.isdigit() and int(suffix) in VPA_DEPTHS:
            for usage in VPA_USAGE_SIGNALS:
                label = vpa_label(int(suffix), usage)
                out[label] = Contender(label, name, {"usage": usage})
        else:
            out[name] = Contender(name, name)
    for k, depth in enumerate(VPA_DEPTHS):
        out[held_label(depth)] = held_contender(k, depth)
    return out


# The original experiments (auto_tuner/starter.py, adapter/main.py, adapter/notifier.py).
PAPER_START_CORES = 20
PAPER_FIRST_DECISION_S = 120
PAPER_VPA_CREATED_S = 60
PAPER_VPA_SAMPLE_PERIOD_S = 60


def paper_contenders() -> dict[str, Contender]:
    start_152 = {"initial_cores": [0, 0, 0, 0, PAPER_START_CORES]}
    planner = {
        "first_decision_s": PAPER_FIRST_DECISION_S,
        "history": "run",
        "integer_rates": True,
        "forecaster": "lstm-keras",
    }
    out = {name: Contender(name, name, planner, start_152) for name in ("infadapter", "ms+")}
    for usage in VPA_USAGE_SIGNALS:
        for k, depth in enumerate(VPA_DEPTHS):
            options = {
                "initial_cores": PAPER_START_CORES,
                "created_s": PAPER_VPA_CREATED_S,
                "sample_period_s": PAPER_VPA_SAMPLE_PERIOD_S,
                "first_decision_s": PAPER_FIRST_DECISION_S,
                "usage": usage,
            }
            start = {"initial_cores": [PAPER_START_CORES if v == k else 0 for v in range(len(VPA_DEPTHS))]}
            label = vpa_label(depth, usage)
            out[label] = Contender(label, f"vpa-{depth}", options, start)
    for k, depth in enumerate(VPA_DEPTHS):
        start = {"initial_cores": [PAPER_START_CORES if v == k else 0 for v in range(len(VPA_DEPTHS))]}
        out[held_label(depth)] = replace(held_contender(k, depth), env=start)
    return out


PROTOCOLS = {
    "default": Protocol(
        "default",
        scenarios(),
        DEFAULT_SEEDS,
        {"action_mode": ACTION_MODE, "simulator": "request"},
        default_contenders,
        "results/leaderboard",
    ),
    "validation": Protocol(
        "validation",
        validation_scenarios(),
        DEFAULT_SEEDS,
        {"action_mode": ACTION_MODE, "simulator": "request"},
        default_contenders,
        "results/validation",
    ),
    "paper-2023": Protocol(
        "paper-2023",
        {"paper": Scenario("paper", {"scenario": "paper"})},
        DEFAULT_SEEDS,
        {"action_mode": ACTION_MODE, "simulator": "request", "arrivals": "loadgen", "dispatcher": "quota"},
        paper_contenders,
        "results/paper-2023",
        {"initial_cores": [0, 0, 0, 0, PAPER_START_CORES]},  # as InfAdapter and MS+ start
        PAPER_FIRST_DECISION_S,
    ),
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """A protocol by name (one of ``PROTOCOLS``), or a ``Protocol`` of one's own as it is."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def env_kwargs(
    scenario: Scenario, beta: float, protocol: str | Protocol = "default", contender: Contender | None = None
) -> dict[str, Any]:
    """The env settings of one episode of a protocol (by name or itself): a contender's own, or
    (``contender=None``) those of an agent submitted to ``evaluate``."""
    chosen = get_protocol(protocol)
    own = dict(contender.env if contender is not None else chosen.submitted_env)
    if own.get("initial_cores") is not None:
        own["initial_cores"] = tuple(own["initial_cores"])
    weights = {"alpha": ALPHA, "beta": beta, "gamma": GAMMA}
    return {**scenario.env_kwargs, **weights, **chosen.env, **own}
