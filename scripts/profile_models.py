"""Measure a capacity profile of models on this machine with a real model server (Ray Serve).

    infadapter profile --models resnet18,resnet50 --cores 1,2 --slo-ms 500,750,1000,1500 --out my_world/profile.csv

Per (model, cores): a Ray Serve replica pinned to that many CPUs (``infadapter_env.serving.server``)
is driven by an open-loop Poisson load generator at rising rates, as the InfAdapter authors'
profiler did (``infadapter_env.serving.profiler``). Writes the profile (appended one configuration
at a time: rerun the same command to resume), ``variants.csv`` beside it, a JSON record of how it
was made, and, once every configuration is measured, calibrates the simulators' servers to it
(``infadapter calibrate``), so that ``gym.make("InfAdapter-v0", profile=...)`` plays in it. The
server takes the last CPUs this process may use; the load generator and Ray's own processes the
others (on a machine with no CPU to spare they share the server's: say so in what you publish).
Models: resnet18 .. resnet152 (random weights, torchvision's compute), resnet-tiny (for smoke
tests) or ``name=path.pt2`` (``torch.export``), ``name=path.onnx`` (ONNX) or ``name=path.pt``
(TorchScript); give such a model's accuracy with ``--accuracy name=0.8``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infadapter_env.options import option
from infadapter_env.parallel import usable_cpus
from infadapter_scripts.arguments import parse


@dataclass
class Args:
    """Measure a capacity profile of models on this machine with a real model server (Ray Serve)."""

    models: list[str] = option(
        ["resnet18", "resnet50"],
        "resnet18..resnet152, resnet-tiny, or name=path (.pt2: torch.export, .onnx: ONNX, .pt: TorchScript)",
    )
    cores: list[int] = option([1, 2], "cores per server (the env needs every count from 1 to the largest)")
    slo_ms: list[int] = option([500, 750, 1000, 1500], "P99 SLOs in ms")
    out: str = option("my_profile.csv", "the profile CSV (rerun with the same --out to resume)")
    accuracy: list[str] = option(
        [], "top-1 accuracy per model as name=fraction, or a CSV file of model,top1_accuracy rows (default: published)"
    )
    time_budget_s: float = option(0.0, "start no configuration after this many seconds (0: no limit); rerun to resume")
    p99_test_s: float = option(16.0, "seconds of each P99 test (the original profiler's 16)")
    saturation_test_s: float = option(2.0, "seconds of each saturation burst (the original's 2)")
    saturation_repeats: int = option(5, "saturation bursts per configuration; the largest answer rate counts")
    saturation_rps_per_core: float = option(30.0, "the burst's rate per core: it must exceed what a core serves")
    seed: int = option(0, "seed of the load generator's arrivals")
    address: str | None = option(None, "an existing Ray cluster's address for ray.init (default: start a local one)")
    calibrate: bool = option(True, "calibrate the simulators' servers to the profile when every configuration is done")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Args, argv, "infadapter profile", (__doc__ or "").strip().splitlines()[0])
    try:
        return run(args, argv)
    except ValueError as error:
        print(f"infadapter profile: error: {error}", file=sys.stderr)
        return 2


def run(args: Args, argv: list[str]) -> int:
    from tqdm import tqdm

    from infadapter_env.serving import profiler
    from infadapter_env.serving.models import model_spec

    specs = [model_spec(m) for m in args.models]
    given: dict[str, float] = {}
    for item in args.accuracy:
        if item.endswith(".csv"):
            given |= profiler.read_accuracy_table(Path(item))
            continue
        name, _, value = item.partition("=")
        try:
            given[name] = float(value)
        except ValueError:
            raise ValueError(f"--accuracy {item!r}: expected name=fraction, e.g. resnet18=0.6976") from None
    accuracy = profiler.accuracies(specs, given)
    if any(c < 1 for c in args.cores) or not args.cores:
        raise ValueError(f"--cores must be whole numbers >= 1, got {args.cores}")
    cores = sorted(set(args.cores))
    allowed = usable_cpus()
    _, spare = profiler.server_cpus(cores[-1], allowed)  # fails early if a server cannot fit
    for spec in specs:  # a model file that cannot be read fails here, before any server starts
        spec.check_loads()
    gaps = sorted(set(range(1, cores[-1] + 1)) - set(cores))
    if gaps:
        print(
            f"note: cores {gaps} are not profiled; the env needs every count from 1 to {cores[-1]}, "
            "so it will refuse this profile until they are (rerun with them added)",
            file=sys.stderr,
        )
    tests = profiler.Tests(
        tuple(sorted(set(args.slo_ms))),
        args.p99_test_s,
        args.saturation_test_s,
        args.saturation_repeats,
        args.saturation_rps_per_core,
        args.seed,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = profiler.plan(specs, cores, profiler.measured(out))
    started = time.perf_counter()
    measured_now: list[str] = []
    if todo:
        from infadapter_env.serving.server import ServeBackend

        if spare and hasattr(os, "sched_setaffinity"):  # the load generator and Ray off the servers' CPUs
            os.sched_setaffinity(0, set(spare))
        backend = ServeBackend(args.address)
        bar = tqdm(total=len(todo), desc="profile", unit="configuration", file=sys.stderr)
        try:
            backend.start()
            for number, configuration in enumerate(todo):
                if args.time_budget_s and time.perf_counter() - started > args.time_budget_s:
                    print(
                        f"time budget of {args.time_budget_s:.0f} s spent: {len(todo) - number} configurations left; "
                        "rerun the same command to measure them",
                        file=sys.stderr,
                    )
                    return 0
                cpus, _ = profiler.server_cpus(configuration.cores, allowed)
                profiler.measure(configuration, backend, tests, cpus, bar.set_postfix_str)
                for note in configuration.notes:
                    bar.write(f"note: {note}", file=sys.stderr)
                profiler.write_rows(out, configuration.rows)
                measured_now.append(f"{configuration.spec.name} x {configuration.cores} cores")
                bar.update(1)
        except KeyboardInterrupt:
            print(f"\ninterrupted: the finished configurations are in {out}; rerun to resume", file=sys.stderr)
            return 130
        except profiler.ServerFailure as failure:
            print(f"\ninfadapter profile: error: {failure}", file=sys.stderr)
            return 1
        finally:
            bar.close()
            backend.stop()
    variants = out.parent / "variants.csv"
    profiler.write_variants(variants, out, specs, accuracy)
    profiler.record(out.with_suffix(".json"), argv, tests, allowed, time.perf_counter() - started, measured_now)
    print(f"profile: {out}\nvariants: {variants}")
    if args.calibrate and not gaps:
        from infadapter_scripts import calibrate_service

        return calibrate_service.main(["--profile", str(out), "--variants", str(variants)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
