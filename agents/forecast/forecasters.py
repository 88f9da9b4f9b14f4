"""Forecasters of the next interval's peak request rate, and the paper code's stabiliser.

- ``lstm``: the paper's LSTM over the last 10 per-minute peaks (InfAdapter paper and code);
  EWM while fewer than 10 real minutes of history exist.
- ``ewm``: exponentially weighted mean of the per-minute peaks, span 10, as pandas
  ``ewm(span=10, adjust=True)`` (the paper code's fallback).
- ``last``: the last minute's peak (naive baseline).
- ``oracle``: the true peak of the span to serve, read from the trace (an upper bound, not deployable).

Forecast errors on the test days are in ``agents/README.md`` (made by ``scripts/train_lstm.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_env.core.observation import HISTORY_MINUTES, observation_layout
from infadapter_env.world.traces import load_trace_file, load_twitter

FORECASTERS = ("lstm", "lstm-scaled", "lstm-keras", "ewm", "last", "oracle")
# ``lstm`` is the LSTM with the smaller one-step error on the test days (each weights file's report:
# lstm-scaled MAE 8.20 and RMSE 17.90 req/s, lstm-keras 8.41 and 18.15).
BEST_LSTM = "lstm-scaled"
EWM_SPAN = 10
MINUTE_PEAKS = observation_layout().MINUTE_PEAKS  # the first field: at the same place in every world


class Forecaster(abc.ABC):
    """Predicts the peak rate (req/s) of the next interval from the per-minute peaks seen so far."""

    name = "forecaster"

    def reset(self, info: Mapping[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Called with the env's reset info."""

    @abc.abstractmethod
    def predict(self, peaks_rps: np.ndarray, info: Mapping[str, Any]) -> float:
        """``peaks_rps``: the real per-minute peaks available, oldest first (may be shorter than 10)."""


def real_minute_peaks(
    observation: np.ndarray, info: Mapping[str, Any], history_minutes: int, partial_minute: bool = False
) -> np.ndarray:
    """The per-minute peaks of the observation that are genuine trace: the ``history_minutes`` the
    episode started with (reset info) plus the minutes played since, at most 10, oldest first.
    ``partial_minute``: a begun minute counts, as the original adapter cuts its own counter history
    into 60 s chunks, the newest one partial (10 chunks, and so the LSTM, from 9.5 minutes on)."""
    played_s = int(info.get("time_s", 0))
    played = -(-played_s // 60) if partial_minute else played_s // 60
    real = min(HISTORY_MINUTES, history_minutes + played)
    return np.asarray(observation[MINUTE_PEAKS], dtype=float)[HISTORY_MINUTES - real :]


def ewm_mean(values: np.ndarray, span: int = EWM_SPAN) -> float:
    """pandas' ``Series(values).ewm(span=span, adjust=True).mean().iloc[-1]``."""
    if values.size == 0:
        return 0.0
    decay = 1.0 - 2.0 / (span + 1.0)
    weights = decay ** np.arange(values.size - 1, -1, -1)
    return float(weights @ values / weights.sum())


class EWMForecaster(Forecaster):
    name = "ewm"

    def predict(self, peaks_rps: np.ndarray, info: Mapping[str, Any]) -> float:
        return ewm_mean(peaks_rps)


class LastValueForecaster(Forecaster):
    name = "last"

    def predict(self, peaks_rps: np.ndarray, info: Mapping[str, Any]) -> float:
        return float(peaks_rps[-1]) if peaks_rps.size else 0.0


class LSTMForecaster(Forecaster):
    """One of the shipped LSTMs (``infadapter_agents.forecast.lstm``): ``lstm-scaled`` (this
    benchmark's) or ``lstm-keras`` (the InfAdapter code's Keras model)."""

    name = "lstm"

    def __init__(self, variant: str = BEST_LSTM) -> None:
        from infadapter_agents.forecast.lstm import KERAS_WEIGHTS_FILE, WEIGHTS_FILE, load_model

        files = {"lstm-scaled": WEIGHTS_FILE, "lstm-keras": KERAS_WEIGHTS_FILE}
        self.variant = variant
        self.model = load_model(str(files[variant]))  # the weights load only when an LSTM is used

    def predict(self, peaks_rps: np.ndarray, info: Mapping[str, Any]) -> float:
        from infadapter_agents.forecast.lstm import WINDOW_MINUTES, predict

        if peaks_rps.size < WINDOW_MINUTES:
            return ewm_mean(peaks_rps)
        return predict(self.model, peaks_rps)


class OracleForecaster(Forecaster):
    """Reads the true peak of the span a decision made now must serve: the next interval plus the
    longest load time (``lookahead_s``, 9 s), because a deployment keeps serving until the next one
    has loaded. Without ``arrivals`` it rebuilds the episode's trace from its settings: a Twitter
    scenario, or a trace file (read again from its recorded path); for a trace given as an array
    pass its per-second ``arrivals`` (from the trace's first second)."""

    name = "oracle"

    def __init__(self, arrivals: np.ndarray | None = None, lookahead_s: int = 9) -> None:
        self.given = None if arrivals is None else np.asarray(arrivals, dtype=float)
        self.lookahead_s = lookahead_s

    def reset(self, info: Mapping[str, Any]) -> None:
        settings = info["settings"]
        if self.given is not None:
            self.arrivals = self.given
            self.offset = 0
        elif settings.get("trace") is None:
            self.arrivals = load_twitter() * float(settings["rate_multiplier"])
            self.offset = int(info["trace_start_s"])
        elif settings["trace"] != "array" and Path(settings["trace"]).is_file():
            trace = load_trace_file(settings["trace"], settings.get("trace_column"), settings["trace_resolution_s"])
            self.arrivals = trace.arrivals * float(settings["rate_multiplier"])
            self.offset = int(info["trace_start_s"])
        else:
            raise ValueError(
                "the oracle forecaster needs the per-second arrivals of a trace given as an array: "
                "pass arrivals=... (Twitter scenarios and trace files are rebuilt from the settings)"
            )
        self.interval_s = int(settings["interval_s"])

    def predict(self, peaks_rps: np.ndarray, info: Mapping[str, Any]) -> float:
        start = self.offset + int(info.get("time_s", 0))
        upcoming = self.arrivals[start : start + self.interval_s + self.lookahead_s]
        return float(upcoming.max()) if upcoming.size else 0.0


def make_forecaster(name: str, arrivals: np.ndarray | None = None) -> Forecaster:
    if name == "lstm":
        return LSTMForecaster(BEST_LSTM)
    if name in ("lstm-scaled", "lstm-keras"):
        forecaster = LSTMForecaster(name)
        forecaster.name = name
        return forecaster
    if name == "ewm":
        return EWMForecaster()
    if name == "last":
        return LastValueForecaster()
    if name == "oracle":
        return OracleForecaster(arrivals)
    raise ValueError(f"unknown forecaster {name!r}; valid forecasters: {', '.join(FORECASTERS)}")


class Stabiliser:
    """The paper code's stabilisation (``auto_tuner/adapter/main.py``, ``make_decision``): a
    planned rate at or below the rate the deployment in place was planned for is skipped (the
    deployment is kept) up to ``patience`` consecutive times (``STABILIZATION_INTERVAL``, 4); the
    next one is acted on. A higher rate is acted on at once. A rate acted on resets the count and
    becomes the rate in place."""

    def __init__(self, patience: int = 4) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"stabiliser patience must be an integer >= 0, got {patience!r}")
        self.patience = patience
        self.reset()

    def reset(self, level: float = 0.0) -> None:
        """Start from a deployment planned for ``level`` req/s (0: nothing deployed)."""
        self.level = level
        self.skipped = 0

    def update(self, rate: float) -> bool:
        """Whether to act on ``rate`` (True) or keep the deployment in place (False)."""
        if rate <= self.level and self.skipped < self.patience:
            self.skipped += 1
            return False
        self.level, self.skipped = rate, 0
        return True
