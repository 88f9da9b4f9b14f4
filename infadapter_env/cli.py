"""``infadapter``: one entry point to the project's commands (their argument parsing lives in the
repository's ``scripts/`` folder, installed as ``infadapter_scripts``).

infadapter --version           the package version

infadapter leaderboard [...]   the benchmark (scripts/leaderboard.py)
infadapter validate CSV        replay leaderboard rows and check them (scripts/validate.py)
infadapter solve [...]         what-if questions to the InfAdapter solver (scripts/solve.py)
infadapter train-lstm [...]    train the LSTM forecaster (scripts/train_lstm.py)
infadapter train --algo ppo     train a stable-baselines3 policy (scripts/train_rl.py)
infadapter calibrate [...]     fit the request-level service model to the profile (scripts/calibrate_service.py)
infadapter validate-fast [...] hold the fast simulator to the request-level one (scripts/validate_fast.py)
infadapter agents              list the registered agents
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "leaderboard": "infadapter_scripts.leaderboard",
    "validate": "infadapter_scripts.validate",
    "solve": "infadapter_scripts.solve",
    "train-lstm": "infadapter_scripts.train_lstm",
    "train": "infadapter_scripts.train_rl",
    "calibrate": "infadapter_scripts.calibrate_service",
    "validate-fast": "infadapter_scripts.validate_fast",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in ("--version", "-V"):
        from infadapter_env import __version__

        print(f"infadapter-gym {__version__}")
        return 0
    if command == "agents":
        import infadapter_agents

        print("\n".join(infadapter_agents.names()))
        return 0
    if command not in COMMANDS:
        print(f"infadapter: unknown command {command!r}; valid: {', '.join([*COMMANDS, 'agents'])}", file=sys.stderr)
        return 2
    result = importlib.import_module(COMMANDS[command]).main(rest)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
