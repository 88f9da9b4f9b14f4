"""The paper's LSTM forecaster: the last 10 per-minute peak rates in, the next minute's peak out.

The network is small (one LSTM layer of 25 units and a linear head, as in the InfAdapter code's
Keras model); rates are divided by ``scale_rps`` on the way in and multiplied on the way out.
Its weights ship in ``agents/weights/lstm_forecaster.pt``, made by ``scripts/train_lstm.py``
(command, seed and test errors in ``agents/weights/lstm_forecaster.json``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

WINDOW_MINUTES = 10
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "lstm_forecaster.pt"
REPORT_FILE = WEIGHTS_DIR / "lstm_forecaster.json"


class PeakLSTM(nn.Module):
    """LSTM(1 -> hidden) over the window, then a linear layer on the last hidden state."""

    def __init__(self, hidden_size: int = 25, scale_rps: float = 100.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.register_buffer("scale_rps", torch.tensor(float(scale_rps)))

    def forward(self, peaks_rps: torch.Tensor) -> torch.Tensor:
        """``peaks_rps``: (batch, 10) per-minute peaks in req/s; returns (batch,) forecasts in req/s."""
        scale: torch.Tensor = self.scale_rps  # type: ignore[assignment]
        out, _ = self.lstm((peaks_rps / scale).unsqueeze(-1))
        return self.head(out[:, -1, :]).squeeze(-1) * scale


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
    """The shipped model (evaluation mode)."""
    report_path = Path(path).with_suffix(".json")
    hidden = json.loads(report_path.read_text())["hidden_size"] if report_path.is_file() else 25
    model = PeakLSTM(hidden_size=hidden)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"LSTM weights not found at {path}; run scripts/train_lstm.py") from None
    model.load_state_dict(state)
    model.eval()
    return model


def predict(model: PeakLSTM, last_peaks_rps: np.ndarray) -> float:
    """Forecast of the next minute's peak from the last 10 minute-peaks (req/s, oldest first)."""
    with torch.no_grad():
        x = torch.as_tensor(np.asarray(last_peaks_rps, dtype=np.float32)[-WINDOW_MINUTES:]).unsqueeze(0)
        return max(float(model(x)[0]), 0.0)
