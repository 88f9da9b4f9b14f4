"""Play one episode on real model servers, replay its actions in both simulators, report the error.

    infadapter sim2real --agent infadapter --agent-options capacity_model=measured \\
        --profile results/profiles/this-machine/profile.csv --scenario paper --rate-multiplier 0.04 \\
        --budget-cores 1 --min-cores 1 --episode-length-s 600 --out results/sim2real/this-machine

The command line of ``infadapter_env.serving.sim2real`` (whose docstring says what it writes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infadapter_env.serving.sim2real import Sim2RealOptions, run
from infadapter_scripts.arguments import parse


def main(argv: list[str] | None = None) -> int:
    import infadapter_agents

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Sim2RealOptions, argv, "infadapter sim2real", (__doc__ or "").strip().splitlines()[0])
    try:
        options = dict(_option(item) for item in args.agent_options)
        agent = infadapter_agents.make(args.agent, **options)
        run(args, agent, options, "infadapter sim2real " + " ".join(argv))
    except ValueError as error:
        print(f"infadapter sim2real: error: {error}", file=sys.stderr)
        return 2
    print((Path(args.out) / "summary.md").read_text(encoding="utf-8"))
    return 0


def _option(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--agent-options {item!r}: expected key=value")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


if __name__ == "__main__":
    raise SystemExit(main())
