"""Score learned agents against InfAdapter per beta, with 95 % confidence intervals.

    python -m infadapter_scripts.eval_learned --agents ppo-weights infadapter --protocol default
    python -m infadapter_scripts.eval_learned --agents ppo-weights infadapter --protocol validation

The command line of ``infadapter_env.leaderboard.comparison`` (whose docstring says what is played
and written); a checkpoint folder given as an agent plays as a learned agent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from infadapter_env.leaderboard.comparison import ComparisonOptions, compare_agents
from infadapter_scripts.arguments import parse


def agent_factory(name: str) -> Any:
    """A registered agent by name, or a learned agent from a checkpoint folder (or folder of seeds)."""
    import infadapter_agents
    from infadapter_agents.learned.agent import LearnedAgent

    if Path(name).is_dir():
        return lambda: LearnedAgent(name)
    return lambda: infadapter_agents.make(name)


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)  # one thread per process: otherwise torch's threads fight the simulator for the cores
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(ComparisonOptions, argv, prog="python -m infadapter_scripts.eval_learned")
    print(compare_agents(args, agent_factory, "python -m infadapter_scripts.eval_learned " + " ".join(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
