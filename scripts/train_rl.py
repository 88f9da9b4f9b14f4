"""``infadapter train``: train a stable-baselines3 policy on InfAdapter-v0 with the batched env, then
score it on training days (the library: ``infadapter_agents.learned.training``).

    python -m infadapter_scripts.train_rl --algo ppo --seed 0            (or: infadapter train --algo ppo --seed 0)
    infadapter train --algo ppo --seeds 0 1 2 --observe-weights --betas 0.01,0.02,0.05,0.1,0.2 --out runs/ppo-weights

``--algo``: ``ppo`` (MultiDiscrete cores action), ``maskable-ppo`` (sb3-contrib MaskablePPO on the
Discrete deployment action with masks), ``a2c`` (MultiDiscrete cores action). Training episodes
are windows of the training days (days 0-13) drawn by the seeded env; observations are normalised
(VecNormalize), and the statistics are saved with the policy. ``--betas``: each episode draws its
beta from these (the env's ``betas``), the rewards use it; with ``--observe-weights`` the policy sees
it. ``--features forecast`` appends the paper LSTM's forecast to what the policy sees
(``infadapter_agents.learned.sb3_env.FEATURES``).

Writes the checkpoint to ``--out`` (default ``runs/<run name>`` in the current folder, never into
the installed package): ``model.zip`` (the whole SB3 algorithm: ``PPO.load("model.zip")`` then
``.learn(...)`` continues), ``vecnormalize.pkl``, ``meta.json`` with the command, seed, versions,
commit, wall time and the evaluation on training-day windows (``TRAIN_EVAL_WINDOWS`` windows drawn
with ``TRAIN_EVAL_SEED``, at every training beta), and a copy of the training log ``progress.csv``
(and ``learning_curve.png``); the SB3 log goes to ``--log-dir/<run name>``, run names following
``{env}__{algo}__{seed}__{ms}-{pid}`` (start time in milliseconds, process id).

``--seeds 0 1 2`` trains one checkpoint per seed into ``--out/seed<k>`` (each ``meta.json`` with
the single-seed command that makes it), then writes ``--out/agent.json`` (the seeds, their
training-day scores, and the one the agent plays: the best of them there, never chosen by test
results) and ``--out/learning_curve.png`` (mean and min-max over the seeds); ``--collect-only``
redoes that last part from the seed folders. ``--out agents/checkpoints/<name>`` replaces a shipped
agent; without ``--out`` the agent's folder is ``runs/InfAdapter-v0__<algo>__seeds__<time>``.

A sweep: ``--algos ppo a2c --sweep-betas 0.01,0.05,0.2 --seeds 0 1 2`` trains one policy per
(algorithm, beta, seed) into ``--out/<algo>__beta<b>/seed<k>`` (with one algorithm and one beta,
``--out/seed<k>``) and collects each
``<algo>__beta<b>`` folder as above. ``--backend`` runs the trainings of a ``--seeds`` run or sweep
here one after another (``serial``), in ``--workers`` processes (``local``), or as Ray tasks
(``ray``; ``--address`` joins a running cluster): every training seeds itself and runs torch on one
thread, so the policies are the same on every backend (a test holds serial and Ray to identical
weights). ``--over-budget`` (``scale`` by default: it learns better, ``infadapter compare-training
--experiment over-budget``) and ``--budget-trace`` (a file or a named pattern of
``infadapter_env.core.settings.BUDGET_PATTERNS``) set the rules the policy trains under; its evaluation
and the agent keep them (``infadapter compare-training`` settles such choices by experiment).
"""

from __future__ import annotations

import shlex
import sys

from infadapter_agents.learned.training import TrainingOptions, train, train_seeds
from infadapter_scripts.arguments import parse


def check_flags(args: TrainingOptions, argv: list[str]) -> None:
    """Refuse flags that the other flags given would silently ignore."""
    given = {token.split("=")[0] for token in argv if token.startswith("--")}
    if args.algos and "--algo" in given:
        raise ValueError("give --algo (one algorithm) or --algos (a sweep), not both")
    if args.sweep_betas and "--beta" in given:
        raise ValueError("give --beta (one beta) or --sweep-betas (a sweep), not both")
    if args.sweep_betas and args.betas:
        raise ValueError("--sweep-betas (one policy per beta) and --betas (one policy across betas) exclude each other")
    many = bool(args.seeds or args.algos or args.sweep_betas)
    for flag in ("--backend", "--workers", "--address", "--collect-only"):
        if flag in given and not many:
            raise ValueError(f"{flag} applies to --seeds and sweeps (--algos, --sweep-betas) only")
    if args.address and args.backend != "ray":
        raise ValueError("--address is the Ray cluster of --backend ray")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(TrainingOptions, argv, prog="infadapter train")
    command = "infadapter train " + shlex.join(argv)
    try:
        check_flags(args, argv)
        if args.seeds or args.algos or args.sweep_betas:
            train_seeds(args, command)
        else:
            train(args, command)
    except ValueError as exc:
        print(f"infadapter train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
