"""The LSTM forecaster's numpy forward pass against the torch module it is trained as."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infadapter_agents.forecast.lstm import WEIGHTS_FILE, load_model, predict, whole_minute_peaks, windows
from infadapter_agents.forecast.lstm_training import TorchPeakLSTM, export_weights
from infadapter_env.world.traces import DAY_S, TEST_DAYS, load_twitter


def torch_twin(path) -> TorchPeakLSTM:
    with np.load(path) as stored:
        state = {name: torch.as_tensor(stored[name]) for name in stored.files}
    model = TorchPeakLSTM(hidden_size=state["lstm.weight_hh_l0"].shape[1])
    model.load_state_dict(state)
    return model.eval()


def test_the_shipped_forecaster_runs_in_numpy_as_in_torch_on_the_test_days():
    per_second = load_twitter()[TEST_DAYS[0] * DAY_S : (TEST_DAYS[0] + 1) * DAY_S]
    x, _ = windows(whole_minute_peaks(per_second.astype(np.float32)))
    with torch.no_grad():
        expected = torch_twin(WEIGHTS_FILE)(torch.as_tensor(x)).numpy()
    got = load_model()(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)  # float32 rounding, not a formula
    assert predict(load_model(), x[5]) == pytest.approx(max(float(expected[5]), 0.0), rel=1e-5)


def test_exported_weights_of_a_fresh_network_round_trip(tmp_path):
    torch.manual_seed(3)
    model = TorchPeakLSTM(hidden_size=7, scale_rps=50.0).eval()
    export_weights(model, tmp_path / "w.npz")
    x = np.random.default_rng(0).uniform(0, 200, (64, 10)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(load_model(str(tmp_path / "w.npz"))(x), expected, rtol=1e-5, atol=1e-4)
    np.savez(tmp_path / "broken.npz", **{"lstm.weight_ih_l0": np.zeros((28, 1))})
    with pytest.raises(ValueError, match="LSTM weights lack"):
        load_model(str(tmp_path / "broken.npz"))
