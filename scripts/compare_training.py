"""Training choices settled by experiment: each arm trained on several seeds, scored on validation windows.

    infadapter compare-training --experiment over-budget    (PPO: over_budget "reject" against "scale")
    infadapter compare-training --experiment budget-trace   (MaskablePPO with masks against PPO with
                                                             "scale", under the tenant-then-failure budget trace)

The command line of ``infadapter_agents.learned.training_experiments`` (whose docstring says what an
experiment trains, scores and writes); the windows are the validation protocol's (never the sealed test split).
"""

from __future__ import annotations

import sys

from infadapter_agents.learned.training_experiments import EXPERIMENTS, ExperimentOptions, Windows, run_experiment
from infadapter_env.leaderboard.protocol import EPISODE_S, VALIDATION_WINDOW_STARTS
from infadapter_scripts.arguments import parse


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)  # one thread: torch's threads would fight the simulator for the cores
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(ExperimentOptions, argv, prog="infadapter compare-training")
    if args.experiment not in EXPERIMENTS:
        print(
            f"infadapter compare-training: error: unknown experiment {args.experiment!r}; "
            f"valid: {', '.join(EXPERIMENTS)}",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.windows <= len(VALIDATION_WINDOW_STARTS):
        most = len(VALIDATION_WINDOW_STARTS)
        print(f"infadapter compare-training: error: --windows must be 1..{most}", file=sys.stderr)
        return 2
    windows = Windows(VALIDATION_WINDOW_STARTS[: args.windows], EPISODE_S)
    try:
        table = run_experiment(args, windows, "infadapter compare-training " + " ".join(argv))
    except ValueError as exc:
        print(f"infadapter compare-training: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
