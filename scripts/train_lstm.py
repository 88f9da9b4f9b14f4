"""Train an InfAdapter LSTM forecaster on the training days and report its test-day errors.

    infadapter train-lstm --seed 0                               (this benchmark's scaled tanh LSTM)
    infadapter train-lstm --variant keras-original --seed 7      (the InfAdapter code's Keras model)

Data as in the paper: the Twitter trace with zero seconds removed, days 0-13 for training (the last
10 % of them for validation and early stopping), days 14-21 for testing; inputs are the last 10
per-minute peaks, the target is the next minute's peak. The weights go to
``agents/forecast/weights/lstm_forecaster.npz`` (numpy arrays: the agents run the forecaster without
torch) and a report (command, seed, versions, errors next to EWM and
last-value) to ``agents/forecast/weights/lstm_forecaster.json``. ``--variant keras-original``
trains the InfAdapter code's model as its ``model.fit`` did (``lstm_training.fit_keras_original``: raw
peaks, 30 epochs, batches of 64, no early stopping) on the same days, into
``agents/forecast/weights/lstm_keras_original.npz`` (and ``.json``). The original split its
zero-filtered series at 14 x 86,400 s, which reaches about 7 hours into calendar day 14; here both
train on days 0-13 only, so that the test days stay unseen.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from infadapter_agents.forecast.forecasters import ewm_mean
from infadapter_agents.forecast.lstm import (
    KERAS_WEIGHTS_FILE,
    WEIGHTS_FILE,
    WINDOW_MINUTES,
    load_model,
    whole_minute_peaks,
    windows,
)
from infadapter_agents.forecast.lstm_training import KerasPeakLSTM, TorchPeakLSTM, export_weights, fit_keras_original
from infadapter_env.options import option
from infadapter_env.provenance import git_commit, relative_to_repo
from infadapter_env.world.traces import DAY_S, TEST_DAYS, TRAIN_DAYS, load_twitter
from infadapter_scripts.arguments import parse

VARIANTS = {"scaled": WEIGHTS_FILE, "keras-original": KERAS_WEIGHTS_FILE}  # and their shipped files
NAMES = {"scaled": "lstm-scaled", "keras-original": "lstm-keras"}  # their forecaster names


@dataclass
class Args:
    """Train the LSTM peak-rate forecaster."""

    variant: str = option("scaled", "scaled (this benchmark's tanh LSTM) or keras-original (the InfAdapter code's)")
    seed: int = option(0, "seed of torch and numpy (the InfAdapter code used 7)")
    hidden_size: int = option(25, "LSTM units (paper code: 25)")
    epochs: int = option(60, "maximum training epochs")
    patience: int = option(8, "stop after this many epochs without a better validation loss")
    batch_size: int = option(256, "minibatch size")
    learning_rate: float = option(3e-3, "Adam learning rate")
    scale_rps: float = option(100.0, "rates are divided by this inside the network")
    out: str | None = option(None, "where to write the weights (default: the variant's shipped file; report beside)")


def day_peaks(first_day: int, last_day: int) -> np.ndarray:
    series = load_twitter()[first_day * DAY_S : last_day * DAY_S]
    return whole_minute_peaks(series[series != 0])


def errors(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    diff = forecast - actual
    return {
        "mae_rps": float(np.abs(diff).mean()),
        "rmse_rps": float(np.sqrt((diff**2).mean())),
        "mape_pct": float(100 * np.abs(diff / actual).mean()),
        "under_forecast_pct": float(100 * (diff < 0).mean()),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse(Args, argv, prog="infadapter train-lstm")
    if args.variant not in VARIANTS:
        print(f"infadapter train-lstm: --variant must be one of {', '.join(VARIANTS)}, got {args.variant!r}")
        raise SystemExit(2)
    out = Path(args.out or VARIANTS[args.variant])
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    started = time.time()

    x, y = windows(day_peaks(*TRAIN_DAYS))
    x_test, y_test = windows(day_peaks(*TEST_DAYS))
    model: TorchPeakLSTM | KerasPeakLSTM
    if args.variant == "keras-original":
        model = KerasPeakLSTM(args.hidden_size)
        history = fit_keras_original(model, torch.tensor(x), torch.tensor(y), args.seed)
        best = float("nan")  # (no validation: the original kept its last epoch)
    else:
        split = int(0.9 * len(x))
        x_train, y_train = torch.tensor(x[:split]), torch.tensor(y[:split])
        x_val, y_val = torch.tensor(x[split:]), torch.tensor(y[split:])
        model = TorchPeakLSTM(args.hidden_size, args.scale_rps)
        best, history = fit(model, (x_train, y_train), (x_val, y_val), args)
    with torch.no_grad():
        lstm_test = model(torch.tensor(x_test)).numpy()
    others = {
        name: load_model(str(path))(x_test)
        for name, path in (("lstm-scaled", WEIGHTS_FILE), ("lstm-keras", KERAS_WEIGHTS_FILE))
        if path != out.resolve() and path.exists()
    }
    report = {
        "command": "infadapter train-lstm " + " ".join(argv if argv is not None else sys.argv[1:]),
        "args": asdict(args) | {"out": relative_to_repo(out)},
        "hidden_size": args.hidden_size,
        "epochs_run": len(history),
        "best_validation_mae_rps": best,
        "train_seconds": round(time.time() - started, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "git_commit": git_commit(),
        "data": {
            "train": f"days {TRAIN_DAYS[0]}-{TRAIN_DAYS[1] - 1}, zeros removed, {len(x)} windows"
            + (" (last 10 % validation)" if args.variant == "scaled" else " (every one; 30 epochs, the last kept)"),
            "test": f"days {TEST_DAYS[0]}-{TEST_DAYS[1] - 1}, zeros removed, {len(x_test)} windows",
            "window_minutes": WINDOW_MINUTES,
        },
        "test_errors": {
            NAMES[args.variant]: errors(lstm_test, y_test),
            **{name: errors(forecast, y_test) for name, forecast in others.items()},
            "ewm": errors(np.array([ewm_mean(row.astype(float)) for row in x_test]), y_test),
            "last": errors(x_test[:, -1], y_test),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    export_weights(model, out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown_table(report))
    return report


def fit(model: TorchPeakLSTM, train: tuple, validation: tuple, args: Args) -> tuple[float, list[float]]:
    """Adam on the MSE of scaled peaks, early-stopped on the validation MAE; leaves ``model`` at its
    best epoch in evaluation mode. Returns the best validation MAE and every epoch's."""
    (x_train, y_train), (x_val, y_val) = train, validation
    optimiser = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    generator = torch.Generator().manual_seed(args.seed)
    best, best_state, stale, history = float("inf"), None, 0, []
    for epoch in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(args.batch_size):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x_train[batch]) / args.scale_rps, y_train[batch] / args.scale_rps)
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_mae = float((model(x_val) - y_val).abs().mean())
        history.append(val_mae)
        print(f"epoch {epoch + 1:3d}  validation MAE {val_mae:.3f} req/s", flush=True)
        if val_mae < best - 1e-4:
            best, best_state, stale = val_mae, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= args.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return best, history


def markdown_table(report: dict) -> str:
    lines = [
        "| forecaster | MAE (req/s) | RMSE (req/s) | MAPE (%) | under-forecasts (%) |",
        "|---|---|---|---|---|",
    ]
    for name, e in report["test_errors"].items():
        lines.append(
            f"| {name} | {e['mae_rps']:.2f} | {e['rmse_rps']:.2f} | {e['mape_pct']:.2f} "
            f"| {e['under_forecast_pct']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
