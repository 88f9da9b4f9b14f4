"""The LSTM forecasters as torch modules, to train them (``infadapter train-lstm``); the agents run
the trained weights in numpy (``infadapter_agents.forecast.lstm``), which ``export_weights`` writes.
``TorchPeakLSTM`` is this benchmark's scaled tanh network, ``KerasPeakLSTM`` the InfAdapter code's
Keras model (``fit_keras_original`` trains it as its ``model.fit`` did)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from infadapter_agents.forecast.lstm import ACTIVATIONS, WEIGHT_NAMES


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


class KerasPeakLSTM(nn.Module):
    """The InfAdapter code's ``Sequential([LSTM(25, activation="relu", kernel_regularizer=L1(1e-5)),
    Dense(1)])`` on raw per-minute peaks: Keras's LSTM cell (gates input, forget, cell, output;
    recurrent activation sigmoid; the cell's activation relu; one bias) written out in torch, with
    Keras's initialisers (kernel Glorot-uniform, recurrent kernel orthogonal, bias 0 but the forget
    gate's 1; Dense Glorot-uniform, bias 0). Its parameters carry ``TorchPeakLSTM``'s names, so
    ``export_weights`` writes the same file layout (``bias_hh`` 0, ``scale_rps`` 1, activation relu)."""

    def __init__(self, hidden_size: int = 25) -> None:
        super().__init__()
        h = hidden_size
        self.hidden_size = h
        kernel = torch.empty(1, 4 * h)
        nn.init.xavier_uniform_(kernel)  # Keras: glorot_uniform over the (input, 4 units) kernel
        recurrent = torch.empty(h, 4 * h)
        nn.init.orthogonal_(recurrent)
        bias = torch.zeros(4 * h)
        bias[h : 2 * h] = 1.0  # unit_forget_bias
        dense = torch.empty(h, 1)
        nn.init.xavier_uniform_(dense)
        self.weight_ih = nn.Parameter(kernel.T.contiguous())  # (4h, 1) as torch stores it
        self.weight_hh = nn.Parameter(recurrent.T.contiguous())  # (4h, h)
        self.bias = nn.Parameter(bias)
        self.head = nn.Linear(h, 1)
        with torch.no_grad():
            self.head.weight.copy_(dense.T)
            self.head.bias.zero_()

    def forward(self, peaks_rps: torch.Tensor) -> torch.Tensor:
        """``peaks_rps``: (batch, 10) per-minute peaks in req/s; returns (batch,) forecasts in req/s."""
        h = self.hidden_size
        state = torch.zeros(peaks_rps.shape[0], h)
        cell = torch.zeros(peaks_rps.shape[0], h)
        for minute in range(peaks_rps.shape[1]):
            gates = peaks_rps[:, minute : minute + 1] @ self.weight_ih.T + state @ self.weight_hh.T + self.bias
            candidate = torch.relu(gates[:, 2 * h : 3 * h])
            cell = torch.sigmoid(gates[:, h : 2 * h]) * cell + torch.sigmoid(gates[:, :h]) * candidate
            state = torch.sigmoid(gates[:, 3 * h :]) * torch.relu(cell)
        return self.head(state).squeeze(-1)

    def numpy_weights(self) -> dict[str, Any]:
        """The weights by ``WEIGHT_NAMES`` (and the activation), for ``export_weights``."""
        h = self.hidden_size
        as_numpy = {
            "lstm.weight_ih_l0": self.weight_ih,
            "lstm.weight_hh_l0": self.weight_hh,
            "lstm.bias_ih_l0": self.bias,
            "lstm.bias_hh_l0": torch.zeros(4 * h),
            "head.weight": self.head.weight,
            "head.bias": self.head.bias,
            "scale_rps": torch.tensor(1.0),
        }
        out = {name: tensor.detach().cpu().numpy() for name, tensor in as_numpy.items()}
        return out | {"activation": np.array(ACTIVATIONS.index("relu"))}


def fit_keras_original(
    model: KerasPeakLSTM, x: torch.Tensor, y: torch.Tensor, seed: int = 7, epochs: int = 30, batch_size: int = 64
) -> list[float]:
    """``model.compile(optimizer="adam", loss="mse"); model.fit(x, y, epochs=30, batch_size=64)`` as
    Keras runs it: Adam with Keras's defaults (learning rate 1e-3, epsilon 1e-7), the mean squared
    error plus the L1 kernel penalty (1e-5 x sum |input kernel|), the data shuffled every epoch, the
    last epoch's weights kept. Returns every epoch's mean training loss."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        total, batches = 0.0, 0
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch]) + 1e-5 * model.weight_ih.abs().sum()
            loss.backward()
            optimiser.step()
            total, batches = total + float(loss), batches + 1
        history.append(total / batches)
        print(f"epoch {len(history):3d}  training loss {history[-1]:.2f}", flush=True)
    model.eval()
    return history


def export_weights(model: TorchPeakLSTM | KerasPeakLSTM, path: Path) -> None:
    """Write the model's weights for ``infadapter_agents.forecast.lstm.load_model`` (numpy arrays by their
    state-dict names)."""
    if isinstance(model, KerasPeakLSTM):
        np.savez(path, **model.numpy_weights())
        return
    state = {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}
    np.savez(path, **{name: state[name] for name in WEIGHT_NAMES})
