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


def test_the_keras_original_network_runs_in_numpy_as_in_torch(tmp_path):
    """Keras's LSTM cell with relu activations, its initialisers and one bias, exported to the
    numpy file layout (relu marked in it) and run there: equal to float32 rounding, fresh and shipped."""
    from infadapter_agents.forecast.lstm import KERAS_WEIGHTS_FILE
    from infadapter_agents.forecast.lstm_training import KerasPeakLSTM

    torch.manual_seed(5)
    model = KerasPeakLSTM()
    assert float(model.bias[25:50].min()) == 1.0 and float(model.bias[:25].abs().max()) == 0.0  # unit forget bias
    x = np.random.default_rng(0).uniform(0, 300, (64, 10)).astype(np.float32)  # raw peaks: no scaling
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).numpy()
    export_weights(model, tmp_path / "keras.npz")
    numpy_model = load_model(str(tmp_path / "keras.npz"))
    assert numpy_model.activation == "relu" and numpy_model.scale_rps == 1.0
    np.testing.assert_allclose(numpy_model(x), expected, rtol=2e-4, atol=2e-3)
    shipped = load_model(str(KERAS_WEIGHTS_FILE))
    assert shipped.activation == "relu"
    x_test, y_test = windows(whole_minute_peaks(load_twitter()[TEST_DAYS[0] * DAY_S : TEST_DAYS[1] * DAY_S]))
    mae = float(np.abs(shipped(x_test[:2000]) - y_test[:2000]).mean())
    assert 5.0 < mae < 15.0  # a forecaster of the test days' peaks, not a constant


def test_lstm_names_the_better_of_the_two_shipped_lstms():
    import json

    from infadapter_agents.forecast.forecasters import BEST_LSTM, make_forecaster
    from infadapter_agents.forecast.lstm import KERAS_WEIGHTS_FILE, REPORT_FILE

    errors = {}
    for path in (REPORT_FILE, KERAS_WEIGHTS_FILE.with_suffix(".json")):
        errors |= json.loads(path.read_text())["test_errors"]
    best = min(("lstm-scaled", "lstm-keras"), key=lambda name: errors[name]["mae_rps"])
    assert best == BEST_LSTM
    assert make_forecaster("lstm").variant == best
    assert make_forecaster("lstm-keras").name == "lstm-keras"
