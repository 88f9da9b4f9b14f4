"""The paper's LSTM forecasters: the last 10 per-minute peak rates in, the next minute's peak out.

Two networks of one LSTM layer of 25 units and a linear head ship, each trained on the train days:

- ``lstm_forecaster.npz`` (forecaster ``lstm-scaled``): tanh activations, rates divided by
  ``scale_rps`` (100) on the way in and multiplied on the way out, Adam at 3e-3 in batches of 256,
  early-stopped on the last tenth of the train days (this benchmark's);
- ``lstm_keras_original.npz`` (forecaster ``lstm-keras``): the InfAdapter code's Keras model
  (``auto_tuner/adapter/forecasters/lstm_forecaster.py``): ``LSTM(25, activation="relu")`` with an L1
  kernel regulariser of 1e-5 and ``Dense(1)`` on raw per-minute peaks, Adam (1e-3) on the MSE, 30
  epochs in shuffled batches of 64, seed 7, Keras's initialisers.

They are trained with torch (``infadapter_agents.forecast.lstm_training``, ``infadapter train-lstm
--variant ...``) and run here in numpy: 25 units need no deep-learning framework, and the InfAdapter
agent then runs without torch. Each weights file has a report beside it (``.json``: command, seed,
versions, test-day errors next to the other forecasters'). The numpy forward pass agrees with
torch's to float32 rounding (``tests/agents/test_forecast.py``).
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
KERAS_WEIGHTS_FILE = WEIGHTS_DIR / "lstm_keras_original.npz"
ACTIVATIONS = ("tanh", "relu")  # a weights file's optional ``activation`` entry: the index of one
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
    torch's and Keras's gate order: input, forget, cell, output; the cell's activation tanh or, as
    Keras's ``activation="relu"``, relu)."""

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
        code = int(np.asarray(weights.get("activation", 0)))
        if not 0 <= code < len(ACTIVATIONS):
            raise ValueError(f"LSTM weights: activation must index {ACTIVATIONS}, got {code}")
        self.activation = ACTIVATIONS[code]

    def _act(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z) if self.activation == "tanh" else _relu(z)

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
            cell = self._act(gates[:, 2 * units : 3 * units])
            c = _sigmoid(gates[:, units : 2 * units]) * c + _sigmoid(gates[:, :units]) * cell
            h = _sigmoid(gates[:, 3 * units :]) * self._act(c)
        return (h @ self.head_weight.T + self.head_bias)[:, 0] * self.scale_rps


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, np.float32(0.0))


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
