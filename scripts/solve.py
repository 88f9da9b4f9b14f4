"""What-if questions to the InfAdapter solver, with the same code the agent uses.

    infadapter solve --rate 120 --previous 152:20 --beta 0.05 --solver ilp --json

prints the chosen deployment, every term of the objective and the solve time.
"""

from __future__ import annotations

import argparse
import json
import sys

from infadapter_agents.planning.solver import ILP_BACKENDS, SOLVERS, PlanningModel, solve, solve_single_variant
from infadapter_env.core.objective import PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA, Weights
from infadapter_env.world.profiles import CAPACITY_MODELS, World, load_profile, load_world, shipped_world


def parse_previous(text: str, world: World | None = None) -> tuple[int, ...]:
    """``"152:20"`` or ``"18:4,152:16"`` (arch or name : cores) into cores per variant."""
    variants = (world or shipped_world()).variants
    cores = [0] * len(variants)
    if not text.strip():
        return tuple(cores)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, count = part.partition(":")
        index = next((i for i, v in enumerate(variants) if name in (v.name, v.arch)), None)
        if not sep or index is None or not count.strip().isdigit():
            valid = ", ".join(f"{v.name} ({v.arch})" for v in variants)
            raise ValueError(f"--previous: {part!r} is not VARIANT:CORES (VARIANT one of {valid}, CORES an integer)")
        cores[index] = int(count)
    return tuple(cores)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infadapter solve", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="forecast peak rate to serve (req/s)")
    parser.add_argument(
        "--previous",
        nargs="*",
        default=[],
        help="current deployment, e.g. 152:20, or 18:4,152:16 or 18:4 152:16 (default: none)",
    )
    parser.add_argument("--alpha", type=float, default=PAPER_ALPHA, help=f"accuracy weight (default {PAPER_ALPHA})")
    parser.add_argument("--beta", type=float, default=PAPER_BETA, help=f"resource-cost weight (default {PAPER_BETA})")
    parser.add_argument("--gamma", type=float, default=PAPER_GAMMA, help=f"loading-cost weight (default {PAPER_GAMMA})")
    parser.add_argument(
        "--solver", default="fast", help=f"one of {', '.join(SOLVERS)}, or 'single' for MS+ (default fast)"
    )
    parser.add_argument("--backend", default="cbc", help=f"ILP backend: {', '.join(ILP_BACKENDS)} (default cbc)")
    parser.add_argument(
        "--slo-ms", type=int, default=750, help="SLO, a profiled one (shipped: 500, 750, 1000, 1500; default 750)"
    )
    parser.add_argument("--budget-cores", type=int, default=20, help="core budget (default 20)")
    parser.add_argument(
        "--capacity-model", default="linear_fit", help=f"one of {', '.join(CAPACITY_MODELS)} (default linear_fit)"
    )
    parser.add_argument("--profile", default=None, help="capacity profile CSV (default: the shipped one)")
    parser.add_argument(
        "--variants", default=None, help="variants CSV (default: beside the profile, else the shipped one)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        world = load_world(args.profile, args.variants)
        previous = parse_previous(",".join(part for part in args.previous if part.strip(", ")), world)
        weights = Weights(args.alpha, args.beta, args.gamma)
        model = PlanningModel(load_profile(args.slo_ms, args.capacity_model, world=world), args.budget_cores)
        if args.solver not in (*SOLVERS, "single"):
            raise ValueError(f"unknown solver {args.solver!r}; valid solvers: {', '.join(SOLVERS)}, single (MS+)")
        if args.solver == "single":
            decision = solve_single_variant(model, args.rate, previous, weights)
        else:
            decision = solve(model, args.rate, previous, weights, args.solver, args.backend)
    except (ValueError, FileNotFoundError) as exc:
        print(f"infadapter solve: error: {exc}", file=sys.stderr)
        return 2
    result = decision.as_dict(model.profile.names)
    result["previous"] = list(previous)
    result["weights"] = {"alpha": weights.alpha, "beta": weights.beta, "gamma": weights.gamma}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        chosen = decision.as_dict(model.profile.names)["deployment"]
        assert isinstance(chosen, dict)
        deployment = ", ".join(f"{name} x {cores} cores" for name, cores in chosen.items()) or "nothing"
        print(f"deployment: {deployment}{'  (fallback: rate not servable within budget)' if decision.fallback else ''}")
        print(f"capacity {decision.capacity_rps:.1f} req/s for a rate of {decision.rate_rps:.1f} req/s")
        print(
            f"objective {decision.objective:.6f} = {weights.alpha} x AA {decision.aa:.5f} - "
            f"({weights.beta} x RC {decision.rc:.3f} + {weights.gamma} x LC {decision.lc:.3f})"
        )
        print(f"solver {decision.solver}: {1000 * decision.solve_time_s:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
