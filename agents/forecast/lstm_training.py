"""The LSTM forecaster as a torch module, to train it (``infadapter train-lstm``); the agents run
the trained weights in numpy (``infadapter_agents.forecast.lstm``), which ``export_weights`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from infadapter_agents.forecast.lstm import WEIGHT_NAMES


class TorchPeakLSTM(nn.Module):
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


def export_weights(model: TorchPeakLSTM, path: Path) -> None:
    """Write the model's weights for ``infadapter_agents.forecast.lstm.load_model`` (numpy arrays by their
    state-dict names)."""
    state = {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}
    np.savez(path, **{name: state[name] for name in WEIGHT_NAMES})
