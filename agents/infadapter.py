"""InfAdapter (Salmani et al., EuroMLSys 2023), model switching (MS+), and the oracle.

Every decision interval:

1. forecast the next interval's peak rate from the per-minute peaks in the observation
   (``forecaster``: ``lstm`` by default, see ``agents.forecast``), plus ``margin`` (10 %);
2. stabilise (paper code): scale up at once, scale down after 4 consecutive lower forecasts;
3. plan with the capacity the controller believes (``capacity_model="linear_fit"``: the paper
   code's linear fit x 0.8) and the env's objective weights and SLO, read from the reset info:
   - ``infadapter``: the integer program over every mix of variants (``agents.solver``), exact
     with ``solver="fast"`` (default) or PuLP ``solver="ilp"`` (``backend`` ``cbc`` or ``highs``);
   - ``ms+``: model switching, one variant with the fewest cores that serves the rate;
   - ``oracle``: the InfAdapter program fed the true peak of the span to serve (no margin, no
     stabilisation): what perfect forecasting would give.
4. a rate that the budget cannot serve gets the paper code's fallback (ResNet18 at the full budget),
   flagged as ``fallback`` in ``decision_info()``; never an exception mid-episode.

Parameters (defaults): solver ``fast``, backend ``cbc``, forecaster ``lstm``, margin 0.1,
stabilise True, patience 4, alpha/beta/gamma/slo_ms ``None`` (= the env's), capacity_model
``linear_fit``. Simplification: one replica per variant (vertical scaling), as in the paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import Agent
from agents.forecast import Stabiliser, make_forecaster, real_minute_peaks
from agents.solver import Decision, PlanningModel, check_solver, solve, solve_single_variant
from infadapter_env import observation as layout
from infadapter_env.objective import Weights
from infadapter_env.observation import HISTORY_MINUTES
from infadapter_env.profiles import load_profile


class InfAdapterAgent(Agent):
    name = "infadapter"

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
    ) -> None:
        check_solver(solver, backend)
        if not 0 <= margin <= 10:
            raise ValueError(f"margin must be a fraction in 0..10, got {margin!r}")
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
        profile = load_profile(self.slo_ms or self.settings.slo_ms, self.capacity_model, self.settings.min_cores)
        self.model = PlanningModel(profile, self.settings.budget_cores)
        if self.solver == "fast":
            _ = self.model.table  # build the search table now, not in the first decision
        self.forecaster.reset(info)
        if self.stabiliser is not None:
            self.stabiliser.reset()
        self.history_minutes = int(info.get("history_minutes", HISTORY_MINUTES))
        self._decision = {}

    def forecast(self, observation: np.ndarray, info: Mapping[str, Any]) -> tuple[float, float]:
        """(raw forecast, rate to plan for) in req/s."""
        raw = self.forecaster.predict(real_minute_peaks(observation, info, self.history_minutes), info)
        rate = raw * (1.0 + self.margin)
        if self.stabiliser is not None:
            rate = self.stabiliser.update(rate)
        return raw, rate

    def plan(self, rate: float, previous: tuple[int, ...]) -> Decision:
        return solve(self.model, rate, previous, self.weights, self.solver, self.backend)

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        raw, rate = self.forecast(observation, info)
        replicas = np.asarray(observation[layout.REPLICAS])
        previous = tuple(int(c) if r > 0 else 0 for c, r in zip(observation[layout.CORES], replicas, strict=True))
        decision = self.plan(rate, previous)
        self._decision = {
            "forecast_rps": raw,
            "planned_rate_rps": rate,
            "fallback": decision.fallback,
            "solve_time_s": decision.solve_time_s,
            "planned_objective": decision.objective,
            "cores": list(decision.cores),
        }
        return self.settings.action([1 if c else 0 for c in decision.cores], decision.cores)

    def decision_info(self) -> dict[str, Any]:
        return dict(self._decision)


class MSPlusAgent(InfAdapterAgent):
    """Model switching (paper baseline MS+): one variant at a time, same forecaster and stabiliser."""

    name = "ms+"

    def plan(self, rate: float, previous: tuple[int, ...]) -> Decision:
        return solve_single_variant(self.model, rate, previous, self.weights)


def oracle_agent(**options: Any) -> InfAdapterAgent:
    """InfAdapter fed the true peak of the span to serve, with no margin and no stabilisation."""
    settings: dict[str, Any] = {"forecaster": "oracle", "margin": 0.0, "stabilise": False}
    agent = InfAdapterAgent(**(settings | options))
    agent.name = "oracle"
    return agent
