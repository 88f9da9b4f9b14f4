"""Hold the fast simulator to the request-level reference on every leaderboard agent's decisions.

    infadapter validate-fast                       (or: python -m infadapter_scripts.validate_fast)
    infadapter validate-fast --agents infadapter vpa-50 --windows 5 --cases agents
    infadapter validate-fast --cases stress

The command line of ``infadapter_env.leaderboard.fast_validation`` (whose docstring says what is
compared and written); exits 1 if a tolerance is missed.
"""

from __future__ import annotations

import sys

from infadapter_env.core import agent_registry
from infadapter_env.leaderboard.fast_validation import ValidationOptions, validate
from infadapter_env.sim.cluster import DISPATCHERS, REPLICA_ROUTINGS
from infadapter_scripts.arguments import parse


def main(argv: list[str] | None = None) -> int:
    args = parse(ValidationOptions, argv, prog="infadapter validate-fast")
    command = "infadapter validate-fast " + " ".join(sys.argv[1:] if argv is None else argv)
    known = agent_registry.names()
    names = args.agents or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"infadapter validate-fast: unknown agent(s) {unknown}; valid: {', '.join(known)}")
        return 2
    if not 0 <= args.windows <= 200:
        print(f"infadapter validate-fast: --windows must be in 0..200, got {args.windows}")
        return 2
    wrong = [d for d in args.dispatchers if d not in DISPATCHERS]
    if wrong:
        print(f"infadapter validate-fast: unknown dispatcher(s) {wrong}; valid: {', '.join(DISPATCHERS)}")
        return 2
    wrong = [r for r in args.routings if r not in REPLICA_ROUTINGS]
    if wrong or not args.routings:
        print(f"infadapter validate-fast: --routings takes {' and/or '.join(REPLICA_ROUTINGS)}, got {args.routings}")
        return 2
    wrong = [c for c in args.cases if c not in ("agents", "stress")]
    if wrong or not args.cases:
        print(f"infadapter validate-fast: --cases takes agents and/or stress, got {args.cases}")
        return 2
    if args.workers < 1:
        print(f"infadapter validate-fast: --workers must be at least 1, got {args.workers}")
        return 2
    text, ok = validate(args, list(names), command)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
