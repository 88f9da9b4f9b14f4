"""Which conclusions hold across server speeds: both protocols swept at each ``--speeds`` value.

    infadapter robustness                                  (speeds 0.85, 1.0, 1.15; about 12 min on 2 cores)
    infadapter robustness --speeds 0.85 1.15 --docs docs/robustness.md

The command line of ``infadapter_env.leaderboard.robustness`` (whose docstring says what it sweeps,
reports and writes).
"""

from __future__ import annotations

import sys

from infadapter_env.leaderboard.robustness import RobustnessOptions, run, speeds_given
from infadapter_env.leaderboard.sweep import SweepError
from infadapter_scripts.arguments import parse


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(RobustnessOptions, argv, prog="infadapter robustness")
    try:
        args.speeds = speeds_given(args.speeds)
        run(args, "infadapter robustness " + " ".join(argv), log=lambda line: print(line, file=sys.stderr))
    except (ValueError, SweepError) as exc:
        print(f"infadapter robustness: error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {args.out}/robustness.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
