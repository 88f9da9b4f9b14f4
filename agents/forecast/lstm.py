"""The paper's LSTM forecaster: the last 10 per-minute peak rates in, the next minute's peak out.

The network is small (one LSTM layer of 25 units and a linear head, as in the InfAdapter code's
Keras model); rates are divided by ``scale_rps`` on the way in and multiplied on the way out. It is
trained with torch (``infadapter_agents.forecast.lstm_training``, ``infadapter train-lstm``), and runs here
in numpy: 25 units need no deep-learning framework, and the InfAdapter agent then runs without
torch. Its weights ship in ``agents/forecast/weights/lstm_forecaster.npz`` (command, seed and test errors in
``agents/forecast/weights/lstm_forecaster.json``). The numpy forward pass agrees with torch's to float32
rounding (``tests/agents/test_forecast.py``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

WINDOW_MINUTES = 10
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "lstm_forecaster.npz"
REPORT_FILE = WEIGHTS_DIR / "lstm_forecaster.json"
# The arrays of a weights file: torch's state-dict names (``lstm_training.export_weights`` writes them).
WEIGHT_NAMES = (
    "lstm.weight_ih_l0",
    "lstm.weight_hh_l0",
    "lstm.bias_ih_l0",
    "lstm.bias_hh_l0",
    "head.weight",
    "head.bias",
    "scale_rps",
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-z))


class PeakLSTM:
    """LSTM(1 -> hidden) over the window, then a linear layer on the last hidden state (float32,
    torch's gate order: input, forget, cell, output)."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [name for name in WEIGHT_NAMES if name not in weights]
        if missing:
            raise ValueError(f"LSTM weights lack {missing}")
        as32 = {name: np.asarray(weights[name], dtype=np.float32) for name in WEIGHT_NAMES}
        self.weight_ih, self.weight_hh = as32["lstm.weight_ih_l0"], as32["lstm.weight_hh_l0"]
        self.bias_ih, self.bias_hh = as32["lstm.bias_ih_l0"], as32["lstm.bias_hh_l0"]
        self.head_weight, self.head_bias = as32["head.weight"], as32["head.bias"]
        self.scale_rps = np.float32(as32["scale_rps"])
        self.hidden_size = self.weight_hh.shape[1]

    def __call__(self, peaks_rps: np.ndarray) -> np.ndarray:
        """``peaks_rps``: (batch, minutes) per-minute peaks in req/s; returns (batch,) forecasts in req/s."""
        x = np.asarray(peaks_rps, dtype=np.float32) / self.scale_rps
        units = self.hidden_size
        h = np.zeros((x.shape[0], units), np.float32)
        c = np.zeros((x.shape[0], units), np.float32)
        for minute in range(x.shape[1]):
            gates = (x[:, minute : minute + 1] @ self.weight_ih.T + self.bias_ih) + (
                h @ self.weight_hh.T + self.bias_hh
            )
            cell = np.tanh(gates[:, 2 * units : 3 * units])
            c = _sigmoid(gates[:, units : 2 * units]) * c + _sigmoid(gates[:, :units]) * cell
            h = _sigmoid(gates[:, 3 * units :]) * np.tanh(c)
        return (h @ self.head_weight.T + self.head_bias)[:, 0] * self.scale_rps


def whole_minute_peaks(per_second: np.ndarray) -> np.ndarray:
    """Peak of each whole minute of a per-second series."""
    minutes = per_second.size // 60
    return per_second[: minutes * 60].reshape(minutes, 60).max(axis=1)


def windows(peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets): every run of 10 minute-peaks and the peak of the minute after it."""
    view = np.lib.stride_tricks.sliding_window_view(peaks, WINDOW_MINUTES + 1)
    return view[:, :WINDOW_MINUTES].astype(np.float32), view[:, WINDOW_MINUTES].astype(np.float32)


@lru_cache(maxsize=1)
def load_model(path: str = str(WEIGHTS_FILE)) -> PeakLSTM:
    """The shipped model."""
    try:
        with np.load(path) as stored:
            return PeakLSTM({name: stored[name] for name in stored.files})
    except FileNotFoundError:
        raise FileNotFoundError(f"LSTM weights not found at {path}; run infadapter train-lstm") from None


def predict(model: PeakLSTM, last_peaks_rps: np.ndarray) -> float:
    """Forecast of the next minute's peak from the last 10 minute-peaks (req/s, oldest first)."""
    x = np.asarray(last_peaks_rps, dtype=np.float32)[-WINDOW_MINUTES:][None, :]
    return max(float(model(x)[0]), 0.0)


def report() -> dict:
    """The shipped weights' training report (command, seed, versions, test errors)."""
    return json.loads(REPORT_FILE.read_text())
