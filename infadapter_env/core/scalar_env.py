"""The Gymnasium shell around the simulation: holds the state, runs the step pipeline with N = 1."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from infadapter_env.core.assembly import EnvAssembly
from infadapter_env.core.objective import Weights
from infadapter_env.core.observation import observation_layout
from infadapter_env.core.rendering import episode_picture
from infadapter_env.core.settings import EnvSettings
from infadapter_env.sim.cluster import ClusterState, IntervalResult, QuotaPlan
from infadapter_env.sim.request import RequestSimulator, simulate_requests
from infadapter_env.world.traces import Trace

SIM_VERSION = "v3"


# Live mode's cluster lives in the serving layer, above this one: looked up by name when a live env
# first resets (as Gymnasium looks up an env's entry point), so this module never imports it.
LIVE_BACKEND = "infadapter_env.serving.live:LiveCluster"


def live_backend() -> Any:
    """The class that runs ``backend="live"`` (``LIVE_BACKEND``)."""
    module, _, name = LIVE_BACKEND.partition(":")
    return getattr(importlib.import_module(module), name)


class InfAdapterEnv(gym.Env[np.ndarray, Any]):
    """InfAdapter-v0: serve an ImageNet inference service with a set of ResNet variants.

    ## Description
    Replays a per-second request trace (by default the paper's slice of a real Twitter trace: day 15,
    minutes 82-103) against measured capacity profiles of ResNet18/34/50/101/152 on CPU cores. Every
    ``interval_s`` seconds (30) the agent picks which variants run and how many cores (and replicas)
    each gets, within a budget of ``budget_cores`` (20). The reward is the InfAdapter objective
    ``alpha * AA - (beta * RC + gamma * LC)`` (Salmani et al., EuroMLSys 2023) with the accuracy
    measured on the requests actually answered within the P99 SLO (``slo_ms``, 750 ms).

    The world (variants, capacity profile, calibrated servers) is the paper's by default and any
    other with ``profile=`` and ``variants=`` (``infadapter_env.world.profiles``; the spaces and the
    observation follow its number of variants and cores).

    Simulation (physics ``v3``; ``info["settings"]["sim_version"]``). A server of a variant with
    ``c`` cores is ``c`` parallel workers taking requests from one FIFO queue, with Gamma service
    times calibrated to the measured profile (``profiles/service_model.csv``; see
    ``infadapter_env.world.service_model``). ``th(cores)``, the capacity at the SLO from the profile
    (``capacity_model``), is what the dispatcher plans with; ``mu``, replicas x workers / mean
    service time, is what the servers complete per second. A request's latency is its wait plus its
    service; it violates the SLO when that exceeds ``slo_ms`` or when it is dropped. A changed
    variant loads for its load time (6.44-8.52 s) and serves from the start of second
    ceil(load time); until then its previous deployment keeps serving (rolling update), a new
    variant serves nothing. A removed variant keeps serving until the variants started or resized
    by the same decision are ready (make before break), or stops at once if none is; its waiting
    requests are then lost. The dispatcher: ``accuracy_first`` (most accurate variant first, up to
    ``th``; what exceeds every ``th`` queues at the most accurate variant with room),
    ``proportional`` (in proportion to ``th``) or ``quota`` (the original dispatcher's weighted
    round robin over integer quotas: ``round(th)``, or the controller's planned quotas set with
    ``env.unwrapped.set_quotas(q)`` before a step, as the original adapter posts them to its
    dispatcher once the step's new servers are ready; variants that do not serve are skipped, and
    where no serving variant has a quota the round robin runs over ``round(th)``). Among a
    variant's replicas (``replica_routing``) a request goes to one drawn uniformly at random, as the
    Kubernetes Service in front of the original's TF-Serving pods does under kube-proxy's default
    iptables mode, so each replica receives a random share of the variant's requests; or
    (``"round_robin"``, kube-proxy's IPVS mode) to each in turn. The paper ran one replica per
    variant, where both agree. A replica's queue holds ``queue_factor x th`` waiting requests;
    beyond that requests are dropped (a full replica does not pass a request to another replica of
    its variant).
    ``server_speed`` (1.0) multiplies every server's service rate: service times, and so every
    latency at a given utilisation, are divided by it, in both simulators; ``th``, the queue bounds
    and the planners' profiles are configuration and do not change. It spans the band of server
    speeds the measurements allow (a robustness check); live mode refuses any value but 1.0.

    Two simulators of that world (``simulator``):

    - ``"fast"`` (default; ``infadapter_env.sim.fast``): 1 s ticks, fluid queues, and each tick's
      latency from the servers' steady-state latency distribution under Poisson arrivals
      (``profiles/latency_quantiles.npz``) at the utilisation of the last 10 s, made effective for
      the burstiness of what a replica receives, plus the wait behind a queue: one replica's queue
      around the fluid one, its random share of each second's requests and its random completions
      making it wander, reflected at empty and at full (a full replica's shortfall below its bound
      is exponential, as a diffusion pressed against a barrier); the interval's P50/P99 are the
      quantiles of the mixture of those distributions. Validated against the request-level
      simulator episode by episode, on every leaderboard agent's decisions under each dispatcher
      and on a stress grid of fixed deployments of 1-10 replicas in and out of overload
      (``infadapter validate-fast``, docs/validation.md).
    - ``"request"`` (``infadapter_env.sim.request``): every request is simulated: its arrival time
      inside its second (``arrivals``: ``"poisson"``, ``"uniform"``, or the original load
      generator's ``"loadgen"``, drawn from the generator seeded by ``reset(seed=...)``), its
      variant and replica, its place in the queue, its service time, its completion or drop.
      About 0.5 s per paper-slice episode (122,000 requests). The fast model assumes Poisson
      arrivals within each second: with ``simulator="fast"`` an ``arrivals`` other than
      ``"poisson"`` is refused.

    Live mode (``backend="live"``; ``infadapter_env.serving.live``; extra ``serve``): the same
    spaces, reward and info on real model servers. Each step applies the deployment to Ray Serve
    (one application per variant, replicas pinned to CPUs; a change is Serve's rolling update, the
    old replicas answering until the new ones do) and replays the interval's seconds as real
    requests at real times (a step takes ``interval_s`` seconds), dispatched ``accuracy_first``
    (the only dispatcher live); every request's latency is measured. ``info`` adds
    ``failed_requests`` (counted as dropped), ``unanswered_requests`` (still waiting when the
    interval stopped waiting: over the SLO) and ``replicas_lost`` (server processes found dead;
    Serve restarts them). Variants are models by name (``infadapter_env.serving.models``);
    measure their profile with ``infadapter profile``; ``env.close()`` stops the servers.

    ## Action Space
    V = the world's variants (5 in the shipped world: index 0 = ResNet18 ... 4 = ResNet152, ordered
    by accuracy; ``info["variants"]`` names them), C = min(budget_cores, the profile's largest core
    count: 20).
    ``action_mode="cores"`` (default): ``MultiDiscrete([C + 1] * V)``: cores of one replica per
    variant, 0 = off.
    ``action_mode="replicas"``: ``MultiDiscrete([R + 1] * V + [C + 1] * V)``, R = ``max_replicas``
    (default budget_cores // min_cores): replicas per variant, then cores per replica.
    ``action_mode="deployment"``: ``Discrete(N)``, N (20,529 in the shipped world) single-replica
    deployments that fit the budget with 0 or >= min_cores cores per variant. ``action_masks()``
    marks the actions allowed for the coming interval (MaskablePPO's convention): all of them with
    a fixed budget; with a ``budget_trace``, the deployments that fit the cores available (in the
    MultiDiscrete modes, per entry, the values that fit alone).
    A time-varying budget (``budget_trace``: the cores available in each decision interval, e.g. a
    co-located tenant holding some for a while, or a failed node; the last value holds after the
    trace ends) bounds every interval's deployment instead of ``budget_cores``: a deployment in
    place that no longer fits is cut to fit as evicted pods would leave it (scaled down, then the
    least accurate variants' replicas removed; ``budget_cut``), and the observation gains the
    cores available in the coming interval. RC stays cores / ``budget_cores``.
    Invalid requests: an active replica below ``min_cores`` is raised to ``min_cores``; a deployment
    over the budget is rejected and the previous one kept (``over_budget="reject"``), or scaled down
    to fit (``over_budget="scale"``: cores per replica times budget / total, rounded down, at least
    ``min_cores``, then one core at a time from the largest variant; rejected if even that cannot
    fit; ``infadapter_env.core.actions``). ``info["action_fix"]`` names the rule applied
    (``raised_to_min_cores``, ``over_budget_kept_previous``, ``over_budget_scaled``, ``budget_cut``).

    ## Observation Space
    ``Box(shape=({observation_size},), dtype=float32)`` (({observation_size_weights},) with ``observe_weights=True``);
    P = peak-rate bound (max of the source trace x multiplier, at least 1), L = the longest load time
    of a variant; shown for the shipped world's V = 5 variants (``env.unwrapped.layout``, an
    ``infadapter_env.core.observation.ObservationLayout``, names the indices for any world). The last
    three rows (the objective's weights, this episode's) exist with ``observe_weights=True`` only;
    with a ``budget_trace`` one more follows them: ``AVAILABLE_CORES``, the cores available in the
    coming interval / ``budget_cores`` (bound 1).

    {observation_table}

    Before the first interval, "last interval" entries are 0 and the minute peaks come from the
    10 minutes of trace that precede the episode (synthetic and user traces repeat their first value).

    ## Rewards
    ``reward = alpha * AA_effective - beta * cores / budget_cores - gamma * LC``, computed by
    ``infadapter_env.core.objective``. AA_effective = sum over variants of accuracy x requests answered
    within the SLO, over all arrivals (late and dropped requests count 0; an interval with no
    arrivals scores the AA of rate 0). LC = longest load time among variants started or resized by
    this action / longest load time of any variant. ``info`` carries every term
    (``reward_terms``), and per interval: arrivals, ``served_in_slo`` (and per variant),
    ``over_slo``, ``dropped``, ``violated`` (= over_slo + dropped), ``slo_violation_rate``,
    ``latency_p50_ms`` / ``latency_p99_ms`` over the served requests (and ``_by_variant``; 0 where
    nothing was served), ``utilisation`` (busy fraction), ``backlog``, the deployment, and
    ``action_fix``. Requests are attributed to the interval in which they arrived. ``aa_planned``:
    the accuracy the deployment plans to give at the interval's mean rate (most accurate first up
    to ``th``), or with set quotas the quota-weighted accuracy. The request-level simulator also
    reports ``p99_windows_ms``: the P99 of each 5 s window of completions, read from TF-Serving's
    latency histogram as the original experiments did (0 where nothing completed), and
    ``rescheduled_late``.

    With ``reward_mode="vector"`` (multi-objective, as MO-Gymnasium envs do) ``step`` returns the
    unweighted terms (AA_effective, -RC, -LC), so that (alpha, beta, gamma) @ reward is the scalar
    reward; ``info["reward"]`` stays the scalar. Gymnasium's passive checker warns once that a
    reward is not a float: ``gym.make(..., disable_env_checker=True)`` silences it.

    ## Starting State
    Nothing deployed (or ``initial_cores``, already loaded), empty queues. An episode is the whole
    trace, or (with ``episode_length_s``) a
    window drawn by the generator seeded in ``reset(seed=...)``, skipping the daily data gaps unless
    ``skip_gaps=False``.

    ## Episode End
    Never terminates; truncates when the trace (or window) ends, after
    ``floor(length / interval_s)`` steps (42 for the paper slice). Leftover seconds are not played.

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | scenario | "paper" | "paper", "train" (days 0-13), "test" (days 14-21), "full" (or registered) |
    | render_mode | None | "ansi" (text summary of the last interval) or "rgb_array" (picture of the episode so far) |
    | trace | None | overrides scenario: a ``Trace``, a path to a text/CSV file of per-second counts, or an array |
    | trace_column | None | the CSV column (by header name) holding the counts (None: the first) |
    | trace_resolution_s | 1 | seconds per count of a trace file or array (60: per-minute, spread over seconds) |
    | episode_length_s | None | None = the whole trace; else windows of this length drawn at reset |
    | window_start_s | None | with episode_length_s: a fixed window from this second of the trace |
    | skip_gaps | True | windows avoid runs of >= 60 zero seconds (data gaps) |
    | rate_multiplier | 1.0 | scales every rate |
    | interval_s | 30 | seconds between decisions |
    | slo_ms | 750 | P99 SLO, one the profile measured (shipped: 500, 750, 1000 or 1500); not interpolated |
    | budget_cores | 20 | core budget B |
    | budget_trace | None | cores available per interval, 0..B each: a list, a text file or a BUDGET_PATTERNS name |
    | alpha, beta, gamma | 1, 0.05, 0.001 | objective weights (paper code) |
    | betas | None | None: ``beta`` always; else each episode's beta, drawn at reset (``info["settings"]["beta"]``) |
    | observe_weights | False | True: alpha, beta (this episode's), gamma are the observation's last three entries |
    | dispatcher | "accuracy_first" | or "proportional", "quota" |
    | replica_routing | "random" | a request's replica among its variant's: "random" or "round_robin" (each in turn) |
    | capacity_model | "measured" | the world's capacity: "measured" table or paper "linear_fit" x 0.8 |
    | action_mode | "cores" | "cores", "replicas" or "deployment" |
    | queue_factor | 1.25 | queue bound as a multiple of capacity (paper code) |
    | server_speed | 1.0 | service rates times this, in (0, 4]; 1.0: as calibrated (see Physics) |
    | min_cores | 2 | minimum cores of an active replica (paper code) |
    | max_replicas | None | replica limit per variant in "replicas" mode (None: budget // min_cores) |
    | initial_cores | None | None: start empty; else cores per variant (one replica each), loaded at t = 0 |
    | simulator | "fast" | "fast" (fluid ticks, calibrated latencies) or "request" (every request) |
    | arrivals | "poisson" | times within a second (request level): "poisson", "uniform", "loadgen"; fast: "poisson" |
    | over_budget | "reject" | a deployment over the budget: "reject" (keep the previous one) or "scale" (fit it) |
    | reward_mode | "scalar" | or "vector": (AA_effective, -RC, -LC), float32, bounds in ``reward_space`` |
    | profile | None | capacity profile CSV, calibrated by ``infadapter calibrate``; None: the shipped one |
    | variants | None | variants CSV; None: ``variants.csv`` beside the profile, else the shipped one |
    | backend | "sim" | "sim" (the simulators) or "live" (real model servers, below) |
    | ray_address | None | live: an existing Ray cluster's address (None: start a local one) |

    ## Vector Environment
    ``gym.make_vec("InfAdapter-v0", num_envs=N, vectorization_mode="vector_entry_point")`` gives
    ``infadapter_env.core.vector_env.InfAdapterVectorEnv``: the same world for N environments in array
    operations (fast simulator), step for step equal to ``SyncVectorEnv`` of this class for the
    same seeds: both run ``infadapter_env.core.pipeline.StepPipeline``, this class with N = 1.

    ## Version History
    - physics v3 (this docstring): the servers' common speed settled on all of the profile's P99
      readings at once (0.975 of the per-server fit; ``profiles/calibration_report.md``).
    - physics v2: the fast model's queues per replica (the variance of a
      replica's random share of each second's count, the shortfall of a full queue below its
      bound), validated on fixed multi-replica deployments in overload.
    - physics v1: calibrated servers and latencies, the request-level simulator,
      P99 latency in the observation (46 entries) and info; ``utilisation`` is the busy fraction.
    - physics v0: the tick model (a request queued past its second counted as late); 41 entries.
    The id stays ``InfAdapter-v0`` until a release.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 1}  # noqa: RUF012 (Gymnasium's convention)

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None, 'ansi' or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.assembly = EnvAssembly(**kwargs)  # what the keyword arguments build, shared with the batched env
        built = self.assembly
        self.settings, self.profile, self.layout = built.settings, built.profile, built.layout
        self.source, self.n_steps = built.source, built.n_steps
        self.action_space, self.observation_space = built.action_space, built.observation_space
        if built.reward_space is not None:
            self.reward_space = built.reward_space
        self.decoder, self.pipeline = built.decoder, built.pipeline
        n_var = len(self.profile.variants)
        self._state: ClusterState | None = None
        self._episode: Trace | None = None
        # the episode's arrivals per step (steps, 1, ticks) and minute peaks per decision (steps + 1, 10)
        self._prepared: tuple[np.ndarray, np.ndarray] | None = None
        self._requests: RequestSimulator | None = None
        self._live: Any = None  # serving.live.LiveCluster with backend="live", started at the first reset
        self._quotas = QuotaPlan.unset(1, n_var)  # the quota dispatcher's quotas (set_quotas)
        self._last_info: dict[str, Any] = {}
        self._step = 0
        self._beta: float | None = None  # this episode's beta when drawn from ``betas``

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        cfg = self.settings
        episode = self._episode = self.assembly.draw_episode(self.np_random)
        self._beta = self.assembly.draw_beta(self.np_random)
        played = self.n_steps * cfg.interval_s
        if self._prepared is None or not self.assembly.fixed_episode:  # the same episode every time: once
            per_tick, minute_peaks = self.assembly.episode_arrays([episode], self.n_steps)
            per_tick.setflags(write=False)
            minute_peaks.setflags(write=False)
            self._prepared = (per_tick, minute_peaks[0])
        self._per_tick, self._minute_peaks = self._prepared
        self._state = self.assembly.initial_state(1)
        self._quotas = QuotaPlan.unset(1, len(self.profile.variants))
        if cfg.simulator == "request":
            self._requests = RequestSimulator(
                self.profile,
                cfg.world.service_model,
                cfg.dispatcher,
                cfg.queue_factor,
                cfg.arrivals,
                self.np_random,
                cfg.replica_routing,
            )
            serving = list(
                zip(self._state.serving_replicas[0].tolist(), self._state.serving_cores[0].tolist(), strict=True)
            )
            self._requests.start_episode(episode.arrivals[:played], serving)
        if cfg.backend == "live":
            self._start_live().reset_to(self._state)
        self._step = 0
        self._played: list[dict[str, Any]] = []  # the infos of this episode, for the rgb_array render
        self._obs = self.pipeline.reset_observation(self._state, self._minute_peaks[None, 0], self._beta_array())[0]
        info: dict[str, Any] = {
            "trace": episode.name,
            "trace_start_s": episode.start_s,
            "n_steps": self.n_steps,
            "history_minutes": episode.real_history_minutes,
            "variants": list(self.profile.names),
            "settings": self.settings.recorded() | {"sim_version": SIM_VERSION},
        }
        if self._beta is not None:  # the objective of this episode: agents plan with its beta
            info["settings"]["beta"] = self._beta
        self._last_info = info
        return self._obs.copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("InfAdapter-v0: call reset() before step()")
        if self._step >= self.n_steps:
            raise RuntimeError("InfAdapter-v0: the episode has ended; call reset()")
        values = self.decoder.check_one(action)
        step = self._step
        simulate = self.pipeline.fast if self._requests is None else self._simulate_requests
        if self._live is not None:
            simulate = self._live.interval
        quotas = None if self._quotas.is_unset else self._quotas
        self._state, reward, obs, report = self.pipeline.step(
            self._state,
            values,
            self._per_tick[step],
            self._minute_peaks[None, step + 1],
            np.array([step + 1]),
            self.n_steps,
            simulate,
            quotas,
            self._beta_array(),
        )
        if quotas is not None:
            self._quotas = quotas.after(self._state.loading_left_s)
        self._step = step + 1
        self._obs = obs[0]
        info = report.scalar(self.weights)
        if self._requests is not None:
            info["rescheduled_late"] = self._requests.rescheduled_late
            info["p99_windows_ms"] = self._requests.window_p99_ms.tolist()
        if self._live is not None:  # failed requests (counted as dropped), requests still unanswered (over SLO)
            info["failed_requests"] = self._live.failed_requests
            info["unanswered_requests"] = self._live.abandoned
            info["replicas_lost"] = self._live.replicas_lost
        self._last_info = info
        if self.render_mode == "rgb_array":
            self._played.append(info)
        truncated = self._step >= self.n_steps
        out_reward = reward[0].astype(np.float32) if self.settings.reward_mode == "vector" else float(reward[0])
        return self._obs.copy(), out_reward, False, truncated, info

    def _start_live(self) -> Any:
        """The live cluster (``backend="live"``), started at the first reset."""
        if self._live is None:
            cfg = self.settings
            self._live = live_backend()(
                cfg.world,
                self.profile,
                cfg.slo_ms,
                cfg.queue_factor,
                cfg.arrivals,
                np.random.default_rng(self.np_random.integers(2**63)),
                cfg.ray_address,
            ).start()
        return self._live

    def close(self) -> None:
        """Stop the live cluster (``backend="live"``); nothing to do for the simulators."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        super().close()

    def set_quotas(self, quotas: Any) -> None:
        """Plan the ``quota`` dispatcher's quotas (requests per second per variant, ResNet18..152)
        for the next step's deployment, as the original adapter posts them to its dispatcher: they
        route from the second every load in progress is done (at once if none is); until then the
        quotas in place do. The round robin runs over the variants that serve; where none of them
        has a quota, over ``round(th)``. ``aa_planned`` becomes the quota-weighted accuracy.
        ``None`` plans a return to ``round(th)``. The values are copied. Only with
        ``dispatcher="quota"``."""
        if self.settings.dispatcher != "quota":
            raise ValueError(
                f"set_quotas needs dispatcher='quota'; this env has dispatcher={self.settings.dispatcher!r}"
            )
        n_var = len(self.profile.variants)
        if quotas is None:  # all zero: no variant has a quota, so the round robin runs over round(th)
            self._quotas = self._quotas.plan(np.zeros((1, n_var)))
            return
        try:
            values = np.array(quotas, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"quotas must be {n_var} numbers >= 0 (ResNet18..152), got {quotas!r}") from None
        if values.size != n_var or not np.all(np.isfinite(values)) or (values < 0).any():
            raise ValueError(f"quotas must be {n_var} finite numbers >= 0 (ResNet18..152), got {quotas!r}")
        self._quotas = self._quotas.plan(values[None])

    def action_masks(self) -> np.ndarray:
        """The actions allowed for the coming interval (MaskablePPO's convention). ``deployment``
        mode: the deployments that fit the cores available (every one without a ``budget_trace``).
        ``cores`` and ``replicas`` modes: per entry, the values whose cores alone fit them (a
        MultiDiscrete mask cannot bound a sum; the over-budget rule handles the rest)."""
        step = np.array([min(self._step, self.n_steps - 1)])
        available = self.settings.available_cores(step)
        budget = self.settings.budget_cores if available is None else int(available[0])
        return self.decoder.masks(budget)

    def render(self) -> str | np.ndarray | None:
        """``ansi``: a summary of the last interval; ``rgb_array``: a picture of the episode so far."""
        if self.render_mode == "ansi":
            return format_summary(self._last_info, self.profile.names)
        if self.render_mode == "rgb_array":
            if self._episode is None:
                raise RuntimeError("InfAdapter-v0: call reset() before render()")
            return episode_picture(
                self._episode.arrivals, self._played, self.settings.interval_s, self.settings.slo_ms, self.profile.names
            )
        return None

    # ----------------------------------------------------------------- helpers
    @property
    def weights(self) -> Weights:
        """The objective's weights of this episode (beta drawn from ``betas`` if given)."""
        if self._beta is None:
            return self.settings.weights
        return Weights(self.settings.alpha, self._beta, self.settings.gamma)

    def _beta_array(self) -> np.ndarray | None:
        return None if self._beta is None else np.array([self._beta])

    @property
    def config(self) -> EnvSettings:
        """Former name of ``settings`` (deprecated)."""
        warnings.warn("env.config is now env.settings", DeprecationWarning, stacklevel=2)
        return self.settings

    def encode_action(self, replicas: Any, cores: Any) -> Any:
        """The action of this env's mode for a deployment (replicas and cores per variant)."""
        return self.assembly.encode_action(replicas, cores)

    def _simulate_requests(
        self, state: ClusterState, per_tick: np.ndarray, quotas: QuotaPlan | None = None
    ) -> tuple[ClusterState, IntervalResult]:
        """The request-level simulator's interval (``pipeline.Simulate``) for this env (N = 1)."""
        assert self._requests is not None
        start_s = self._step * self.settings.interval_s
        return simulate_requests(self._requests, state, start_s, per_tick.shape[1], self.pipeline.tables, quotas)


# The observation table is generated from the layout's one definition (``observation.fields``).
InfAdapterEnv.__doc__ = (
    (InfAdapterEnv.__doc__ or "")
    .replace("{observation_table}", observation_layout(observe_weights=True).markdown_table().replace("\n", "\n    "))
    .replace("{observation_size_weights}", str(observation_layout(observe_weights=True).size))
    .replace("{observation_size}", str(observation_layout().size))
)


def format_summary(info: dict[str, Any], names: tuple[str, ...]) -> str:
    """A readable summary of the last interval (the ``ansi`` render)."""
    if "step" not in info:
        return f"InfAdapter-v0 reset: trace {info.get('trace')}, {info.get('n_steps')} steps\n"
    lines = [
        f"step {info['step']} (t={info['time_s']} s)  arrivals {info['arrivals']:.0f} "
        f"(mean {info['mean_rate_rps']:.1f}, peak {info['peak_rate_rps']:.0f} req/s)",
        f"  in SLO {info['served_in_slo']:.0f}  violated {info['violated']:.0f} "
        f"({100 * info['slo_violation_rate']:.1f} %)  dropped {info['dropped']:.0f}  "
        f"latency P50 {info['latency_p50_ms']:.0f} ms, P99 {info['latency_p99_ms']:.0f} ms",
        f"  AA effective {info['aa_effective']:.4f}  planned {info['aa_planned']:.4f}  "
        f"cores {info['cores']}  RC {info['rc']:.3f}  LC {info['lc']:.3f}  reward {info['reward']:.4f}",
        f"  {'variant':<10}{'replicas':>9}{'cores':>6}{'cap req/s':>10}{'busy':>6}{'queue':>7}{'load s':>7}"
        f"{'P99 ms':>8}",
    ]
    for i, name in enumerate(names):
        lines.append(
            f"  {name:<10}{info['replicas'][i]:>9}{info['cores_per_replica'][i]:>6}"
            f"{info['capacity_rps'][i]:>10.1f}{info['utilisation'][i]:>6.2f}"
            f"{info['backlog'][i]:>7.1f}{info['loading_left_s'][i]:>7.2f}"
            f"{info['latency_p99_ms_by_variant'][i]:>8.0f}"
        )
    if info.get("action_fix"):
        lines.append(f"  action fixed: {info['action_fix']}")
    return "\n".join(lines) + "\n"
