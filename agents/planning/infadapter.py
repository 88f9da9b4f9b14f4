"""InfAdapter (Salmani et al., EuroMLSys 2023), model switching (MS+), and the oracle.

Every decision interval (from ``first_decision_s`` on; before that the starting deployment is
kept, as the original adapter waits ``FIRST_DECIDE_DELAY_MINUTES``):

1. forecast the next interval's peak rate from the per-minute peaks in the observation
   (``forecaster``: ``lstm`` by default, EWM while fewer than 10 minutes are known, see
   ``agents.forecast``), plus ``margin`` (10 %). ``history="trace"`` counts the 10 minutes of
   trace before the episode as known; ``history="run"`` only the minutes the run itself has seen
   (the original adapter queries its own dispatcher's counter);
2. stabilise (paper code, ``agents.forecast.Stabiliser``): a planned rate at or below the one in
   place is skipped (the deployment kept) up to 4 consecutive times, the 5th is acted on; a higher
   rate is acted on at once. The rate in place starts as the planned capacity of the starting
   deployment (0 when empty);
3. plan with the capacity the controller believes (``capacity_model="linear_fit"``: the paper
   code's linear fit x 0.8) and the env's objective weights and SLO, read from the reset info:
   - ``infadapter``: the integer program over every mix of variants (``agents.solver``), exact
     with ``solver="fast"`` (default) or PuLP ``solver="ilp"`` (``backend`` ``cbc`` or ``highs``);
   - ``ms+``: model switching, one variant with the fewest cores that serves the rate;
   - ``oracle``: the InfAdapter program fed the true peak of the span to serve (no margin, no
     stabilisation): what perfect forecasting would give.
4. a rate that the budget cannot serve gets the paper code's fallback (ResNet18 at the full budget),
   flagged as ``fallback`` in ``decision_info()``; never an exception mid-episode.

``decision_info()["quotas"]`` holds the planned quotas (req/s per variant: the planned rate split
most accurate variant first over the planned capacities, as the paper code's solver assigns load);
the leaderboard passes them to an env with ``dispatcher="quota"`` (``InfAdapterEnv.set_quotas``).

Parameters (defaults): solver ``fast``, backend ``cbc``, forecaster ``lstm``, margin 0.1,
stabilise True, patience 4, alpha/beta/gamma/slo_ms ``None`` (= the env's), capacity_model
``linear_fit``, first_decision_s 0, history ``"trace"``, integer_rates False (paper-2023: True;
the original truncates the LSTM's forecast and the planned rate to whole requests).
Simplification: one replica per variant (vertical scaling), as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent
from infadapter_agents.forecast.forecasters import LSTMForecaster, Stabiliser, make_forecaster, real_minute_peaks
from infadapter_agents.planning.solver import Decision, PlanningModel, check_solver, solve, solve_single_variant
from infadapter_env.core.objective import Weights
from infadapter_env.core.observation import HISTORY_MINUTES
from infadapter_env.sim.cluster import served_shares
from infadapter_env.world.profiles import load_profile

HISTORIES = ("trace", "run")


class InfAdapterAgent(Agent):
    name = "infadapter"
    seed_independent = True  # reads the minute peaks of the trace's counts, its deployment and the time

    def __init__(
        self,
        solver: str = "fast",
        backend: str = "cbc",
        forecaster: str = "lstm",
        margin: float = 0.1,
        stabilise: bool = True,
        patience: int = 4,
        alpha: float | None = None,
        beta: float | None = None,
        gamma: float | None = None,
        slo_ms: int | None = None,
        capacity_model: str = "linear_fit",
        arrivals: np.ndarray | None = None,
        first_decision_s: int = 0,
        history: str = "trace",
        integer_rates: bool = False,
    ) -> None:
        check_solver(solver, backend)
        if not 0 <= margin <= 10:
            raise ValueError(f"margin must be a fraction in 0..10, got {margin!r}")
        if history not in HISTORIES:
            raise ValueError(f"history must be one of {', '.join(map(repr, HISTORIES))}; got {history!r}")
        if isinstance(first_decision_s, bool) or not isinstance(first_decision_s, int) or first_decision_s < 0:
            raise ValueError(f"first_decision_s must be an integer >= 0 (seconds), got {first_decision_s!r}")
        self.first_decision_s, self.history, self.integer_rates = first_decision_s, history, integer_rates
        self.solver, self.backend, self.margin = solver, backend, margin
        self.forecaster = make_forecaster(forecaster, arrivals)
        self.stabiliser = Stabiliser(patience) if stabilise else None
        self.overrides = {"alpha": alpha, "beta": beta, "gamma": gamma}
        self.slo_ms, self.capacity_model = slo_ms, capacity_model
        self._decision: dict[str, Any] = {}

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        base = self.settings.weights
        self.weights = Weights(
            *(value if value is not None else getattr(base, key) for key, value in self.overrides.items())
        )
        settings = self.settings
        profile = load_profile(
            settings.slo_ms if self.slo_ms is None else self.slo_ms,
            self.capacity_model,
            settings.min_cores,
            world=settings.world,
        )
        self.model = PlanningModel(profile, self.settings.budget_cores)
        if self.solver == "fast":
            self.model.prepare()  # build the search tables now, not in the first decision
        self.planning_model, self.planning_weights = self.model, self.weights
        self.planned_room = self.settings.budget_cores  # the cores the deployment in place was planned for
        self.forecaster.reset(info)
        self.started = False  # the stabiliser's starting rate is read from the first observation
        known = int(info.get("history_minutes", HISTORY_MINUTES))
        self.history_minutes = known if self.history == "trace" else 0
        self._decision = {}

    def forecast(self, observation: np.ndarray, info: Mapping[str, Any]) -> tuple[float, float]:
        """(raw forecast, rate to plan for) in req/s. With ``history="run"`` a begun minute counts
        (the original's chunking); with ``integer_rates`` the LSTM's forecast and the planned rate
        are truncated to whole requests, as the original code does (``int(...)``)."""
        peaks = real_minute_peaks(observation, info, self.history_minutes, partial_minute=self.history == "run")
        raw = self.forecaster.predict(peaks, info)
        if not self.integer_rates:
            return raw, raw * (1.0 + self.margin)
        if isinstance(self.forecaster, LSTMForecaster) and peaks.size >= HISTORY_MINUTES:  # the LSTM answered
            raw = float(math.floor(raw))
        return raw, float(math.floor(raw * (1.0 + self.margin)))

    def plan(self, rate: float, previous: tuple[int, ...]) -> Decision:
        return solve(self.planning_model, rate, previous, self.planning_weights, self.solver, self.backend)

    def plan_within(self, available: int | None) -> None:
        """Plan the coming interval within ``available`` cores (a ``budget_trace``; None: the whole
        budget). The objective stays the env's: RC is cores over the whole budget, so beta is scaled
        by available / budget for a planning model whose budget is the cores available."""
        budget = self.settings.budget_cores
        if available is None or available >= budget:
            self.planning_model, self.planning_weights = self.model, self.weights
            return
        self.planning_model = PlanningModel(self.model.profile, available)
        if self.solver == "fast":
            self.planning_model.prepare()
        beta = self.weights.beta * available / budget
        self.planning_weights = Weights(self.weights.alpha, beta, self.weights.gamma)

    def quotas(self, rate: float, cores: tuple[int, ...]) -> list[int]:
        """The planned quotas: ``rate`` split most accurate first over the planned capacities."""
        return [round(q) for q in served_shares(self.model.capacity(cores), rate)]

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        replicas = np.asarray(observation[self.settings.layout.REPLICAS]).astype(int)
        cores_now = np.asarray(observation[self.settings.layout.CORES]).astype(int)
        previous = tuple(int(c) if r > 0 else 0 for c, r in zip(cores_now, replicas, strict=True))
        keep = self.settings.action(replicas, cores_now)
        if not self.started:
            self.started = True
            if self.stabiliser is not None:
                self.stabiliser.reset(sum(self.model.capacity(previous)))
        if int(info.get("time_s", 0)) < self.first_decision_s:
            self._decision = {"held": True, "fallback": False, "cores": list(previous)}
            return keep
        raw, rate = self.forecast(observation, info)
        available = self.settings.available_cores(observation)  # None without a budget_trace
        room = self.settings.budget_cores if available is None else available
        # The stabiliser may hold the deployment in place only if it was planned for the cores
        # available now: taken cores would cut it, returned ones would leave it squeezed.
        same_room = room == self.planned_room
        if same_room and self.stabiliser is not None and not self.stabiliser.update(rate):
            self._decision = {
                "forecast_rps": raw,
                "planned_rate_rps": rate,
                "stabilised": True,
                "fallback": False,
                "cores": list(previous),
            }
            return keep
        self.planned_room = room
        if available is not None and available < self.model.profile.min_cores:  # nothing fits
            if self.stabiliser is not None:
                self.stabiliser.reset(0.0)  # nothing deployed
            nothing = [0] * self.settings.n_variants
            self._decision = {"forecast_rps": raw, "planned_rate_rps": rate, "fallback": False, "cores": nothing}
            return self.settings.action(nothing, nothing)
        if not same_room and self.stabiliser is not None:
            self.stabiliser.reset(rate)  # the rate this replan acts on
        self.plan_within(available)
        decision = self.plan(rate, previous)
        self._decision = {
            "forecast_rps": raw,
            "planned_rate_rps": rate,
            "fallback": decision.fallback,
            "solve_time_s": decision.solve_time_s,
            "planned_objective": decision.objective,
            "cores": list(decision.cores),
            "quotas": self.quotas(rate, decision.cores),
        }
        return self.settings.action([1 if c else 0 for c in decision.cores], decision.cores)

    def decision_info(self) -> dict[str, Any]:
        return dict(self._decision)


class MSPlusAgent(InfAdapterAgent):
    """Model switching (paper baseline MS+): one variant at a time, same forecaster and stabiliser."""

    name = "ms+"

    def plan(self, rate: float, previous: tuple[int, ...]) -> Decision:
        return solve_single_variant(self.planning_model, rate, previous, self.planning_weights)


def oracle_agent(**options: Any) -> InfAdapterAgent:
    """InfAdapter fed the true peak of the span to serve, with no margin and no stabilisation."""
    settings: dict[str, Any] = {"forecaster": "oracle", "margin": 0.0, "stabilise": False}
    agent = InfAdapterAgent(**(settings | options))
    agent.name = "oracle"
    return agent
