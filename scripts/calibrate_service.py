"""``infadapter calibrate``: fit the request-level service model to a capacity profile and tabulate
its latencies (the library: ``infadapter_env.sim.calibration``, whose docstring gives the method).

    infadapter calibrate              (or: python -m infadapter_scripts.calibrate_service)
    infadapter calibrate --profile my_world/capacity.csv --variants my_world/variants.csv
"""

from __future__ import annotations

import sys

from infadapter_env.sim.calibration import CalibrationOptions, calibrate
from infadapter_scripts.arguments import parse


def main(argv: list[str] | None = None) -> int:
    args = parse(CalibrationOptions, argv, prog="infadapter calibrate")
    command = "infadapter calibrate " + " ".join(sys.argv[1:] if argv is None else argv)

    def log(line: str) -> None:  # the fit's warnings to stderr, named as the command's
        if line.startswith("warning:"):
            print(f"infadapter calibrate: {line}", file=sys.stderr, flush=True)
        else:
            print(line, flush=True)

    try:
        calibrate(args, command.strip(), log)
    except (ValueError, FileNotFoundError) as exc:
        print(f"infadapter calibrate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
