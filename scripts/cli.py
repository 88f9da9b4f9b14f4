"""usage: infadapter <command> [options]     (infadapter <command> --help for a command's options)

commands:
  leaderboard     score every contender of a protocol over a sweep of beta (--protocol paper-2023)
  validate CSV    replay leaderboard rows and check every metric
  solve           ask the InfAdapter solver a what-if question
  play            play one episode of agents; per-interval rows (--csv) and a timeline (--plot)
  train           train a stable-baselines3 policy (--algo ppo | maskable-ppo | a2c)
  compare-training  settle a training choice: train its arms on seeds, score them on validation windows
  train-lstm      train the LSTM forecaster
  calibrate       fit the request-level service model to the capacity profile
  profile         measure a capacity profile of models on this machine (Ray Serve)
  sim2real        play an episode on real model servers, replay it in the simulators, compare
  speed-tests     a real server's speed by the profiler's 2-s burst and by a sustained overload
  validate-fast   hold the fast simulator to the request-level one
  robustness      the leaderboard's conclusions and paper-2023's verdicts across server speeds
  agents          list the registered agents
  --version       the package version

The commands' argument parsing lives in the repository's scripts/ folder, installed as
infadapter_scripts; the library behind them is infadapter_env (infadapter_env.leaderboard).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "leaderboard": "infadapter_scripts.leaderboard",
    "validate": "infadapter_scripts.validate",
    "solve": "infadapter_scripts.solve",
    "play": "infadapter_scripts.play",
    "compare-training": "infadapter_scripts.compare_training",
    "train-lstm": "infadapter_scripts.train_lstm",
    "train": "infadapter_scripts.train_rl",
    "calibrate": "infadapter_scripts.calibrate_service",
    "profile": "infadapter_scripts.profile_models",
    "sim2real": "infadapter_scripts.sim2real",
    "speed-tests": "infadapter_scripts.speed_tests",
    "validate-fast": "infadapter_scripts.validate_fast",
    "robustness": "infadapter_scripts.robustness",
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
        if rest and rest[0] in ("-h", "--help"):
            print("usage: infadapter agents\n\nList the registered agents (infadapter_agents.names()).")
            return 0
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
