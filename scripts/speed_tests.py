"""Read real servers' speed by the profiler's 2-s burst and by a sustained overload.

    infadapter speed-tests --models resnet18 resnet34 resnet50 --cores 1 --out results/speed-tests

The command line of ``infadapter_env.serving.speed_tests`` (whose docstring says what is measured
and written).
"""

from __future__ import annotations

import sys

from infadapter_env.serving.speed_tests import SpeedOptions, run, table
from infadapter_scripts.arguments import parse


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse(SpeedOptions, argv, prog="infadapter speed-tests")
    if options.cores < 1 or options.repeats < 1 or not 0 <= options.settle_s < options.sustained_s:
        print("infadapter speed-tests: --cores and --repeats must be at least 1 and --settle-s in [0, --sustained-s)")
        return 2
    if not 1.0 < options.overload <= 10.0:
        print(f"infadapter speed-tests: --overload must be in (1, 10], got {options.overload}")
        return 2
    try:
        record = run(options, "infadapter speed-tests " + " ".join(argv))
    except ValueError as exc:  # more cores than this process may use, an unknown model
        print(f"infadapter speed-tests: error: {exc}")
        return 2
    print(table(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
