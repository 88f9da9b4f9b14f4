"""Calibrate the request-level service model to the measured profile, and tabulate its latencies.

    infadapter calibrate              (the command line: ``infadapter_scripts.calibrate_service``)
    infadapter calibrate --profile my_world/capacity.csv --variants my_world/variants.csv

    from infadapter_env.sim.calibration import CalibrationOptions, calibrate
    calibrate(CalibrationOptions(profile="my_world/capacity.csv"))

For every (variant, cores) of a capacity profile (default: ``profiles/capacity_result_Feb_21.csv``,
whose rows need ``p99_latency`` and ``saturation_tp`` here) it fits a server of
``workers = cores`` FIFO workers with Gamma service times (mean, coefficient of variation) by
replaying the original profiler inside the simulator (``auto_tuner/experiments/capacity_experiment.py``
of the InfAdapter code):

- the P99 test: Poisson arrivals at the profiled capacity for 16 s; the P99 is Prometheus'
  ``histogram_quantile(0.99, rate(request_latency_bucket[2s]))`` over TF-Serving's latency
  histogram (buckets 10 us x 1.8^i), evaluated every 2 s, and the largest value is kept;
- the saturation test: Poisson arrivals at 30 x cores req/s for 2 s; the throughput is the rate of
  completions over the last 2 s, the largest of 5 repetitions.

Each candidate (mean service time, CV) on a grid is scored by the median over ``--seeds`` runs;
the chosen one has every P99 within 15 % of the measured one with the smallest saturation error,
or, where no candidate reaches that, the smallest P99 error.

How fast the servers are is then settled on all rows at once: every fitted server's service rate
is multiplied by a common speed from ``SPEED_SCAN`` and the whole profile replayed; of the speeds
whose P99 misses fall on both sides (neither side over 60 % of them, signed median error within
5 %), the one whose misses split most evenly is applied (the per-server fit alone leans fast: at a
histogram bucket's edge its few runs read the lower bucket more often). The same scan
gives the band of server speeds the P99 readings allow (relative to the calibrated one): where the
signed median P99 error over all rows stays within 15 %. The saturation bursts do not constrain
the speed: 32 of the profile's 100 servers passed a 16-s P99 test within 500 ms at a rate above
their 2-s burst reading, which a server that sustained only its burst reading could not, and a
server slowed to its burst reading misses the P99 readings by far (the report's scan shows it).
Writes, beside the profile (or in
``--out``), ``service_model.csv``, ``latency_quantiles.npz`` (steady-state latency quantiles for
the fast simulator, with the profile's SHA-256) and ``calibration_report.md`` (the error of every
profile row, re-measured with fresh seeds). About 6 s per (variant, cores) on one core.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from infadapter_env.options import option
from infadapter_env.provenance import git_commit, relative_to_repo
from infadapter_env.sim.latency_histogram import window_quantiles_ms
from infadapter_env.sim.queueing import fifo_sojourn_batch
from infadapter_env.world.profiles import World, load_world
from infadapter_env.world.service_model import LATENCY_TABLE_FILE, SERVICE_MODEL_FILE, file_sha256

P99_TEST_S = 16.0
WINDOW_S = 2.0
SATURATION_TEST_S = 2.0
SATURATION_RATE_PER_CORE = 30.0
SATURATION_REPEATS = 5
P99_TOLERANCE = 0.15
SATURATION_TOLERANCE = 0.05
MEAN_SCALES = np.round(np.arange(0.70, 1.301, 0.025), 3)  # mean service = scale x workers / saturation_tp
CVS = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.25, 1.5, 2.0])
# Common speeds tried on the per-server fit (a multiplier on every server's service rate).
SPEED_SCAN = np.round(
    np.concatenate([[0.85, 0.88, 0.9, 0.92, 0.94], np.arange(0.95, 1.0301, 0.005), [1.04, 1.06, 1.08, 1.1, 1.15]]), 3
)
# A common speed is balanced when neither direction holds more than this share of the P99 misses
# and the signed median P99 error is within MEDIAN_TOLERANCE.
MISS_SHARE_MAX = 0.6
MEDIAN_TOLERANCE = 0.05
# Utilisations of the latency tables, finer where the tail grows fast.
RHO_GRID = np.concatenate([np.arange(0.05, 0.851, 0.05), [0.02, 0.88, 0.9, 0.92, 0.94, 0.96, 0.97, 0.98, 0.99]])
RHO_GRID = np.round(np.sort(RHO_GRID), 2)
# Cumulative levels of the stored quantiles, finer in the tail where the SLO lives.
LEVELS = np.concatenate([np.arange(0.1, 0.81, 0.1), [0.01, 0.05, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98]])
LEVELS = np.round(np.sort(np.concatenate([LEVELS, [0.985, 0.99, 0.993, 0.995, 0.997, 0.998, 0.999]])), 3)


@dataclass
class CalibrationOptions:
    """Calibrate the service model to a capacity profile (default: the shipped one)."""

    profile: str | None = option(None, "capacity profile CSV (default: profiles/capacity_result_Feb_21.csv)")
    variants: str | None = option(None, "variants CSV (default: variants.csv beside the profile, else the shipped one)")

    seeds: int = option(6, "simulated repetitions of every profiler test per candidate")
    check_seeds: int = option(20, "fresh repetitions for the report")
    scan_seeds: int = option(20, "simulated repetitions of every profile row per common speed tried")
    table_requests: int = option(60_000, "requests per steady-state latency-table point")
    seed: int = option(0, "base seed")
    out: str | None = option(None, "output folder (default: the profile's folder, where the env looks)")
    check_only: bool = option(
        False,
        "re-check the service model in --out and rewrite the report only (replays the fit's candidate grid "
        "for the reasons of the misses and the common-speed scan: about 13 min for the shipped profile on one core)",
    )


@dataclass(frozen=True)
class ProfileRow:
    variant: str
    cores: int
    slo_ms: int
    capacity: float
    p99_ms: float | None
    saturation_tp: float


def read_profile(world: World) -> list[ProfileRow]:
    """The rows of ``world``'s profile for its variants, with the latency columns calibration needs."""
    path = world.profile_path
    names = {v.arch: v.name for v in world.variants}
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, r in enumerate(csv.DictReader(handle), start=2):
            if r["ARCH"].strip() not in names or int(r["CPU"]) > world.max_cores:
                continue
            try:
                p99 = float(r["p99_latency"]) if r["p99_latency"].strip() else None
                saturation = float(r["saturation_tp"])
            except (KeyError, AttributeError, ValueError) as exc:
                raise ValueError(
                    f"{path}, line {line_no}: calibration needs p99_latency (a number or empty) and "
                    f"saturation_tp (a number) ({exc!r})"
                ) from None
            if saturation <= 0:
                raise ValueError(f"{path}, line {line_no}, field saturation_tp: a positive number expected")
            rows.append(
                ProfileRow(
                    names[r["ARCH"].strip()], int(r["CPU"]), int(r["SLA"]), float(r["capacity"]), p99, saturation
                )
            )
    return rows


def service_times(rng: np.random.Generator, mean_s: np.ndarray, cv: np.ndarray, size: int) -> np.ndarray:
    """(B, size) Gamma service times for per-row mean and CV (cv 0: constant)."""
    mean_s = mean_s[:, None]
    cv = cv[:, None]
    shape = np.where(cv > 0, 1.0 / np.maximum(cv, 1e-9) ** 2, 1.0)
    draws = rng.standard_gamma(np.broadcast_to(shape, (len(mean_s), size)))
    return np.where(cv > 0, draws * mean_s / shape, mean_s)


def poisson_arrivals(rng: np.random.Generator, rates: np.ndarray, duration_s: float) -> np.ndarray:
    """(B, N) arrival times of Poisson streams (one rate per row) over ``duration_s``; rows end in inf."""
    counts = rng.poisson(rates * duration_s)
    width = max(int(counts.max()), 1)
    times = np.sort(rng.uniform(0.0, duration_s, (len(rates), width)), axis=1)
    return np.where(np.arange(width)[None, :] < counts[:, None], times, np.inf)


def histogram_p99_max(arrival: np.ndarray, sojourn: np.ndarray) -> np.ndarray:
    """Per row: the largest 2-s-window P99 (ms) by histogram interpolation, as the profiler read it."""
    valid = np.isfinite(arrival)
    if not valid.any():  # no requests (a test at rate 0): nothing measured
        return np.full(arrival.shape[0], -np.inf)
    done = np.where(valid, arrival + sojourn, np.inf)
    n_windows = int(np.ceil(np.nanmax(np.where(valid, done, np.nan)) / WINDOW_S)) + 1
    window = np.floor(done[valid] / WINDOW_S).astype(np.int64)
    rows = np.broadcast_to(np.arange(arrival.shape[0])[:, None], arrival.shape)[valid]
    p99 = window_quantiles_ms(window, sojourn[valid] * 1000.0, n_windows, 0.99, rows)
    if p99.shape[0] < arrival.shape[0]:  # trailing rows without requests
        p99 = np.vstack([p99, np.full((arrival.shape[0] - p99.shape[0], n_windows), np.nan)])
    return np.where(np.isnan(p99), -np.inf, p99).max(axis=1)


def p99_test(rng: np.random.Generator, rates, workers, mean_s, cv) -> np.ndarray:
    arrival = poisson_arrivals(rng, rates, P99_TEST_S)
    service = service_times(rng, mean_s, cv, arrival.shape[1])
    return histogram_p99_max(arrival, fifo_sojourn_batch(arrival, service, workers))


def saturation_test(rng: np.random.Generator, workers, mean_s, cv) -> np.ndarray:
    rates = SATURATION_RATE_PER_CORE * workers.astype(float)
    best = np.zeros(len(rates))
    for _ in range(SATURATION_REPEATS):
        arrival = poisson_arrivals(rng, rates, SATURATION_TEST_S)
        service = service_times(rng, mean_s, cv, arrival.shape[1])
        done = np.where(np.isfinite(arrival), arrival + fifo_sojourn_batch(arrival, service, workers), -np.inf)
        end = done.max(axis=1)
        completed = (done > (end - WINDOW_S)[:, None]).sum(axis=1)
        best = np.maximum(best, completed / WINDOW_S)
    return best


class Reason(NamedTuple):
    """Why a row or a server misses: ``kind`` (the report tallies them) and ``text`` (its table says it)."""

    kind: str
    text: str


@dataclass(frozen=True)
class CandidateGrid:
    """The fit's candidate servers for one (variant, cores), mean service time = scale x workers /
    saturation_tp for the scales ``MEAN_SCALES`` and CVs ``CVS``, each scored by the median P99 of
    ``seeds`` simulated profiler runs at every measured point (capacity, P99)."""

    points: list[tuple[float, float]]
    mean_s: np.ndarray  # (K,)
    cv: np.ndarray  # (K,)
    saturation_error: np.ndarray  # (K,) |simulated / measured saturation - 1|
    p99_error: np.ndarray  # (P, K) simulated / measured P99 - 1

    @property
    def matched(self) -> np.ndarray:
        """(P, K) whether each candidate's P99 is within tolerance at each point."""
        return np.abs(self.p99_error) <= P99_TOLERANCE

    def best(self) -> int:
        """The chosen candidate: the most P99 points within tolerance, then the saturation within
        its tolerance, then the smallest total P99 error."""
        errors = np.abs(self.p99_error) if self.points else np.zeros((1, self.mean_s.size))
        score = (
            -10.0 * self.matched.sum(axis=0)
            + 5.0 * (self.saturation_error > SATURATION_TOLERANCE)
            + errors.sum(axis=0)
            + 0.1 * self.saturation_error
        )
        return int(np.argmin(score))

    def index_of(self, mean_s: float, cv: float) -> int | None:
        """The candidate with this mean and CV (None: not on the grid)."""
        hits = np.flatnonzero(np.isclose(self.mean_s, mean_s, rtol=1e-4) & np.isclose(self.cv, cv))
        return int(hits[0]) if hits.size else None

    def why_p99_missed(self, point: int, chosen: int) -> Reason:
        """Why candidate ``chosen`` misses the P99 of ``point``, from the grid."""
        matched = self.matched
        rate, p99 = self.points[point]
        if matched[point, chosen]:
            return Reason("within 15 % in the fit's runs", "within 15 % in the fit's runs")
        if not matched[point].any():
            side = self.p99_error[point]
            if (side > 0).all():
                return Reason(
                    "no candidate server is this fast", f"no candidate server is this fast at {rate:.0f} req/s"
                )
            if (side < 0).all():
                return Reason(
                    "no candidate server is this slow", f"no candidate server is this slow at {rate:.0f} req/s"
                )
            return Reason("no candidate server within 15 %", "no candidate server within 15 %")
        for other, (other_rate, other_p99) in enumerate(self.points):
            out_of_order = other != point and (other_rate - rate) * (other_p99 - p99) < 0
            if out_of_order and not (matched[point] & matched[other]).any():  # no one queue matches both
                return Reason("non-monotone", f"non-monotone: {other_p99:.0f} ms at {other_rate:.0f} req/s")
        others = np.arange(len(self.points)) != point
        missed_by_others = (~matched[others]).sum(axis=0)
        fewest = int(missed_by_others[matched[point]].min())
        chosen_misses = int(missed_by_others[chosen])
        if fewest > chosen_misses + 1:
            return Reason(
                "matching it misses more other points",
                f"a server that matches it misses {fewest} of the other {int(others.sum())} points "
                f"(the chosen one misses {chosen_misses})",
            )
        # as many points in all: the fit's next criteria decided (saturation within 5 %, total P99 error)
        return Reason(
            "matching it matches no more points, loses on the next criteria",
            f"a server that matches it matches no more points in all ({len(self.points) - fewest} of "
            f"{len(self.points)}); it loses on saturation or total P99 error",
        )

    def why_saturation_missed(self, chosen: int) -> Reason:
        """What matching the saturation throughput would cost candidate ``chosen``'s P99 points."""
        within = self.saturation_error <= SATURATION_TOLERANCE
        if within[chosen]:
            return Reason(
                "the 2-s test reads more than workers / mean service",
                "its workers / mean service time is within 5 %; the best of five 2-s tests reads more",
            )
        kept = self.matched.sum(axis=0)
        if not within.any():
            return Reason("no candidate within 5 %", "no candidate within 5 %")
        best_within = int(kept[within].max())
        if best_within < kept[chosen]:
            fit_kept = int(kept[chosen])
            return Reason(
                "fewer P99 points within 5 %",
                f"within 5 % it keeps at most {best_within} of {len(self.points)} P99 points, the fit {fit_kept}",
            )
        return Reason(
            "as many P99 points within 5 %, larger P99 error",
            f"within 5 % it keeps as many P99 points ({best_within} of {len(self.points)}) with a larger total "
            "P99 error",
        )


def candidate_grid(rng, cores: int, points: list[tuple[float, float]], saturation: float, seeds: int) -> CandidateGrid:
    """Every candidate server of one (variant, cores), run through the profiler's P99 test at each point."""
    scales, cvs = np.meshgrid(MEAN_SCALES, CVS, indexing="ij")
    scales, cvs = scales.ravel(), cvs.ravel()
    n_cand = scales.size
    mean = scales * cores / saturation
    workers = np.full(n_cand * seeds, cores)
    p99 = np.zeros((len(points), n_cand))
    for j, (rate, _) in enumerate(points):
        runs = p99_test(rng, np.full(n_cand * seeds, rate), workers, np.repeat(mean, seeds), np.repeat(cvs, seeds))
        p99[j] = np.median(runs.reshape(n_cand, seeds), axis=1)
    measured = np.array([p for _, p in points]).reshape(-1, 1)
    # a saturated server completes workers / mean per second
    return CandidateGrid(points, mean, cvs, np.abs(1.0 / scales - 1.0), p99 / measured - 1.0)


def latency_tables(
    rng, model: dict[tuple[str, int], tuple[int, float, float]], n_requests: int, world: World
) -> np.ndarray:
    """(V, C+1, R, L) steady-state latency quantiles (ms) under Poisson load at each rho of the grid."""
    names = world.names
    out = np.zeros((len(names), world.max_cores + 1, RHO_GRID.size, LEVELS.size), dtype=np.float32)
    warmup = n_requests // 10
    for cores in range(1, world.max_cores + 1):
        keys = [(name, cores) for name in names]
        workers = np.repeat([model[k][0] for k in keys], RHO_GRID.size)
        mean = np.repeat([model[k][1] for k in keys], RHO_GRID.size)
        cv = np.repeat([model[k][2] for k in keys], RHO_GRID.size)
        rates = np.tile(RHO_GRID, len(keys)) * workers / mean
        gaps = rng.exponential(1.0, (rates.size, n_requests + warmup)) / rates[:, None]
        arrival = np.cumsum(gaps, axis=1)
        service = service_times(rng, mean, cv, n_requests + warmup)
        sojourn = fifo_sojourn_batch(arrival, service, workers)[:, warmup:]
        quantiles = np.quantile(sojourn, LEVELS, axis=1).T * 1000.0
        out[:, cores] = quantiles.reshape(len(keys), RHO_GRID.size, LEVELS.size)
    return out


def calibrate(args: CalibrationOptions, command: str = "calibrate()", log: Callable[[str], None] = print) -> Path:
    """Fit the service model of ``args.profile``'s servers, tabulate their latencies and write the
    report into ``args.out`` (default: beside the profile); returns that folder. ``command`` is
    recorded in the report; ``log`` gets one line per server and the warnings. A bad profile raises
    ``ValueError`` (or ``FileNotFoundError``) naming the file and line."""
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    world = load_world(args.profile, args.variants)
    rows = read_profile(world)
    by_server: dict[tuple[str, int], list[ProfileRow]] = defaultdict(list)
    for row in rows:
        by_server[(row.variant, row.cores)].append(row)
    out = Path(args.out) if args.out is not None else world.profile_path.parent
    out.mkdir(parents=True, exist_ok=True)
    order = {name: k for k, name in enumerate(world.names)}
    # The fit's grid of candidate servers, per (variant, cores): it chooses the model and, in the
    # report, says why a row or a saturation figure is missed. --check-only replays it (same seed).
    shipped = read_model(out / SERVICE_MODEL_FILE) if args.check_only else None
    fitted = {}
    grids: dict[tuple[str, int], CandidateGrid] = {}
    servers = sorted(by_server.items(), key=lambda item: (order[item[0][0]], item[0][1]))
    for n, ((name, cores), group) in enumerate(servers, start=1):
        points = sorted({(r.capacity, r.p99_ms) for r in group if r.p99_ms is not None})
        grid = grids[(name, cores)] = candidate_grid(rng, cores, points, group[0].saturation_tp, args.seeds)
        best = grid.best()
        fitted[(name, cores)] = (cores, float(grid.mean_s[best]), float(grid.cv[best]))
        log(f"[{n}/{len(servers)}] {name} {cores} cores: mean {1000 * grid.mean_s[best]:.1f} ms, cv {grid.cv[best]}")
    scan = speed_scan(np.random.default_rng(args.seed + 3), rows, fitted, args.scan_seeds)
    speed = common_speed(scan)
    log(f"common speed {speed:g}: {scan_summary(scan, speed)}")
    model = at_common_speed(fitted, speed)
    if shipped is not None:
        differ = sorted(k for k in model if k not in shipped or not np.allclose(shipped[k], model[k], rtol=1e-4))
        if differ:
            log(f"warning: the fit replayed at seed {args.seed} chooses other servers for {differ}")
        model = shipped
        speed = read_common_speed(out / SERVICE_MODEL_FILE)
    else:
        write_model(out / SERVICE_MODEL_FILE, model, world, speed)
    report = check(np.random.default_rng(args.seed + 1), rows, model, args.check_seeds)
    if not args.check_only:
        tables = latency_tables(np.random.default_rng(args.seed + 2), model, args.table_requests, world)
        np.savez_compressed(
            out / LATENCY_TABLE_FILE,
            rho=RHO_GRID,
            levels=LEVELS,
            quantile_ms=tables,
            variants=np.array(world.names),
            profile_sha256=np.array(file_sha256(world.profile_path)),
        )
    write_speed_band(out / SPEED_BAND_FILE, Scan(scan, speed), command.strip())
    write_report(
        out / "calibration_report.md",
        report,
        args,
        command.strip(),
        time.perf_counter() - started,
        world,
        grids,
        model,
        Scan(scan, speed),
    )
    written = (
        f"calibration_report.md, {SPEED_BAND_FILE}"
        if args.check_only
        else f"service_model.csv, latency_quantiles.npz, {SPEED_BAND_FILE}, calibration_report.md"
    )
    log(f"wrote {relative_to_repo(out)}: {written}")
    return out


def read_model(path: Path) -> dict[tuple[str, int], tuple[int, float, float]]:
    """A service model written by ``write_model``."""
    with path.open(newline="") as handle:
        return {
            (r["variant"], int(r["cores"])): (
                int(r["workers"]),
                float(r["mean_service_ms"]) / 1000,
                float(r["service_cv"]),
            )
            for r in csv.DictReader(handle)
        }


def read_common_speed(path: Path) -> float:
    """The common speed a service model was calibrated at (1.0 for one written without it)."""
    with path.open(newline="") as handle:
        speeds = {float(r.get("common_speed") or 1.0) for r in csv.DictReader(handle)}
    return speeds.pop() if len(speeds) == 1 else 1.0


def write_model(
    path: Path, model: dict[tuple[str, int], tuple[int, float, float]], world: World, speed: float = 1.0
) -> None:
    """``service_model.csv``; ``common_speed``: the common speed (``SPEED_SCAN``) already applied to
    ``mean_service_ms`` (the per-server fit's mean is ``mean_service_ms`` x ``common_speed``)."""
    arch = {v.name: v.arch for v in world.variants}
    order = {name: k for k, name in enumerate(world.names)}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["variant", "arch", "cores", "workers", "mean_service_ms", "service_cv", "service_rps", "common_speed"]
        )
        for (name, cores), (workers, mean_s, cv) in sorted(model.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
            writer.writerow(
                [
                    name,
                    arch[name],
                    cores,
                    workers,
                    f"{1000 * mean_s:.4f}",
                    f"{cv:g}",
                    f"{workers / mean_s:.2f}",
                    f"{speed:g}",
                ]
            )


def at_common_speed(
    model: dict[tuple[str, int], tuple[int, float, float]], speed: float
) -> dict[tuple[str, int], tuple[int, float, float]]:
    """Every server of ``model`` with its service rate multiplied by ``speed``."""
    return {key: (workers, mean_s / speed, cv) for key, (workers, mean_s, cv) in model.items()}


@dataclass(frozen=True)
class SpeedPoint:
    """The whole profile replayed with every server's service rate times ``speed``."""

    speed: float
    median_p99_error: float  # signed, over every row with a measured P99
    within: int  # rows with the P99 within P99_TOLERANCE
    too_fast: int  # misses with a simulated P99 below the measured one
    too_slow: int
    in_run_range: int  # measured P99 inside the simulated runs' 5-95 % range
    rows: int
    median_saturation_error: float  # signed, over servers: the simulated 2-s burst against saturation_tp


def speed_scan(rng, rows: list[ProfileRow], fitted, seeds: int, speeds=SPEED_SCAN) -> list[SpeedPoint]:
    """The profile replayed (``seeds`` runs per row) at each common speed of ``speeds``."""
    points = []
    for speed in speeds:
        checked = check(rng, rows, at_common_speed(fitted, float(speed)), seeds)
        errors = np.array([c.p99_error for c in checked if c.p99_error is not None])
        missed = errors[np.abs(errors) > P99_TOLERANCE]
        saturation = {(c.row.variant, c.row.cores): c.saturation_error for c in checked}
        points.append(
            SpeedPoint(
                float(speed),
                float(np.median(errors)),
                int(errors.size - missed.size),
                int((missed < 0).sum()),
                int((missed > 0).sum()),
                sum(bool(c.within_band) for c in checked if c.p99_error is not None),
                int(errors.size),
                float(np.median(list(saturation.values()))),
            )
        )
    return points


def balanced(point: SpeedPoint) -> bool:
    """Whether the misses at ``point`` fall on both sides: neither direction holds more than
    ``MISS_SHARE_MAX`` of them, and the signed median P99 error is within ``MEDIAN_TOLERANCE``."""
    misses = point.too_fast + point.too_slow
    one_side = max(point.too_fast, point.too_slow) <= MISS_SHARE_MAX * misses if misses else True
    return one_side and abs(point.median_p99_error) <= MEDIAN_TOLERANCE


def common_speed(scan: list[SpeedPoint]) -> float:
    """Of the balanced speeds (all of them if none is), the one whose misses split most evenly
    between too fast and too slow (then: the most P99 readings within tolerance). The most
    readings within tolerance alone would pick a lucky draw of the scan's runs at the edge of the
    balanced speeds, which fresh runs then find one-sided."""

    def split(p: SpeedPoint) -> float:
        misses = p.too_fast + p.too_slow
        return abs(p.too_fast - p.too_slow) / misses if misses else 0.0

    candidates = [p for p in scan if balanced(p)] or scan
    return min(candidates, key=lambda p: (split(p), -p.within)).speed


def scan_summary(scan: list[SpeedPoint], speed: float) -> str:
    point = next(p for p in scan if p.speed == speed)
    return (
        f"{point.within} of {point.rows} P99 rows within {P99_TOLERANCE:.0%}, signed median "
        f"{100 * point.median_p99_error:+.1f} %, misses {point.too_fast} too fast / {point.too_slow} too slow"
    )


SPEED_BAND_FILE = "speed_band.json"


def write_speed_band(path: Path, scan: Scan, command: str) -> None:
    """``speed_band.json``: the common speed applied, the band of speeds the P99 readings allow
    (relative to the calibrated speed) and the scan behind them."""
    low, high = scan.band()
    record = {
        "common_speed": scan.speed,
        "band": [round(low, 4), round(high, 4)],
        "rule": f"server_speed at which the signed median P99 error over all profile rows stays within "
        f"{P99_TOLERANCE:.0%}",
        "scan": [asdict(p) for p in scan.points],
        "command": command,
        "commit": git_commit(),
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def read_speed_band(folder: Path) -> tuple[float, float] | None:
    """The band of server speeds the calibration in ``folder`` published (None: none published)."""
    path = folder / SPEED_BAND_FILE
    if not path.exists():
        return None
    low, high = json.loads(path.read_text())["band"]
    return float(low), float(high)


@dataclass(frozen=True)
class Scan:
    """The common-speed scan and the speed applied; ``band()``: the speeds the P99 readings allow."""

    points: list[SpeedPoint]
    speed: float

    def band(self) -> tuple[float, float]:
        """Relative to the calibrated speed: the speeds at which the signed median P99 error over all
        rows stays within ``P99_TOLERANCE`` (edges interpolated between scanned speeds)."""
        x = np.array([p.speed for p in self.points]) / self.speed
        y = np.array([p.median_p99_error for p in self.points])
        inside = np.abs(y) <= P99_TOLERANCE
        centre = int(np.argmin(np.abs(x - 1.0)))
        if not inside[centre]:
            return (1.0, 1.0)
        lo = hi = centre
        while lo > 0 and inside[lo - 1]:
            lo -= 1
        while hi < x.size - 1 and inside[hi + 1]:
            hi += 1

        def edge(a: int, b: int) -> float:  # where |error| crosses the tolerance between points a (in) and b
            if b < 0 or b >= x.size:
                return float(x[a])
            target = np.sign(y[b]) * P99_TOLERANCE
            return float(x[a] + (target - y[a]) * (x[b] - x[a]) / (y[b] - y[a]))

        return (edge(lo, lo - 1), edge(hi, hi + 1))


@dataclass(frozen=True)
class Checked:
    row: ProfileRow
    simulated_p99_ms: float | None
    simulated_saturation: float
    band_ms: tuple[float, float]  # 5th and 95th percentile of the simulated runs' P99

    @property
    def within_band(self) -> bool | None:
        """Whether the measured P99 is one the simulated profiler run would plausibly have read."""
        if self.row.p99_ms is None:
            return None
        return self.band_ms[0] <= self.row.p99_ms <= self.band_ms[1]

    @property
    def p99_error(self) -> float | None:
        if self.row.p99_ms is None or self.simulated_p99_ms is None:
            return None
        return self.simulated_p99_ms / self.row.p99_ms - 1.0

    @property
    def saturation_error(self) -> float:
        return self.simulated_saturation / self.row.saturation_tp - 1.0


def check(rng, rows: list[ProfileRow], model, seeds: int) -> list[Checked]:
    """Every profile row re-measured with fresh seeds (median of ``seeds`` runs)."""
    servers = sorted(model)
    workers = np.array([model[k][0] for k in servers])
    mean = np.array([model[k][1] for k in servers])
    cv = np.array([model[k][2] for k in servers])
    saturation = np.median(
        saturation_test(rng, np.repeat(workers, seeds), np.repeat(mean, seeds), np.repeat(cv, seeds)).reshape(
            len(servers), seeds
        ),
        axis=1,
    )
    sat_of = dict(zip(servers, saturation, strict=True))
    out = []
    for row in rows:
        w, m, c = model[(row.variant, row.cores)]
        if row.capacity <= 0:  # no tested rate met the SLA: no test to replay
            out.append(Checked(row, None, float(sat_of[(row.variant, row.cores)]), (np.nan, np.nan)))
            continue
        runs = p99_test(rng, np.full(seeds, row.capacity), np.full(seeds, w), np.full(seeds, m), np.full(seeds, c))
        band = (float(np.percentile(runs, 5)), float(np.percentile(runs, 95)))
        out.append(Checked(row, float(np.median(runs)), float(sat_of[(row.variant, row.cores)]), band))
    return out


def reasons(
    c: Checked,
    grids: dict[tuple[str, int], CandidateGrid],
    model: dict[tuple[str, int], tuple[int, float, float]],
    speed: float = 1.0,
) -> tuple[Reason | None, Reason | None]:
    """Why row ``c`` misses its P99 and why its server misses its saturation throughput (None:
    not missed), from the fit's candidate grid (``model`` at common speed ``speed``)."""
    key = (c.row.variant, c.row.cores)
    grid = grids[key]
    chosen = grid.index_of(model[key][1] * speed, model[key][2])
    p99_missed = c.p99_error is not None and abs(c.p99_error) > P99_TOLERANCE
    saturation_missed = abs(c.saturation_error) > SATURATION_TOLERANCE
    if chosen is None:
        unknown = Reason(
            "the server is not one of the fit's candidates", "the server is not one of the fit's candidates"
        )
        return (unknown if p99_missed else None), (unknown if saturation_missed else None)
    p99_reason = None
    if p99_missed:
        p99_reason = grid.why_p99_missed(grid.points.index((c.row.capacity, c.row.p99_ms)), chosen)  # type: ignore[arg-type]
    return p99_reason, (grid.why_saturation_missed(chosen) if saturation_missed else None)


def write_report(
    path: Path,
    report: list[Checked],
    args: CalibrationOptions,
    command: str,
    seconds: float,
    world: World,
    grids: dict[tuple[str, int], CandidateGrid],
    model: dict[tuple[str, int], tuple[int, float, float]],
    scan: Scan,
) -> None:
    with_p99 = [c for c in report if c.p99_error is not None]
    p99_ok = [c for c in with_p99 if abs(c.p99_error) <= P99_TOLERANCE]  # type: ignore[arg-type]
    servers = {(c.row.variant, c.row.cores): c for c in report}
    sat_ok = [c for c in servers.values() if abs(c.saturation_error) <= SATURATION_TOLERANCE]
    over = [
        c
        for c in servers.values()
        if max(r.row.capacity for r in report if (r.row.variant, r.row.cores) == (c.row.variant, c.row.cores))
        > c.row.saturation_tp
    ]
    explained = [reasons(c, grids, model, scan.speed) for c in report]
    errors = np.array([c.p99_error for c in with_p99])
    missed = errors[np.abs(errors) > P99_TOLERANCE]
    low, high = scan.band()
    slow_end = min(scan.points, key=lambda p: abs(p.median_saturation_error))
    saturation_of = {(c.row.variant, c.row.cores): why for c, (_, why) in zip(report, explained, strict=True)}
    tally: dict[str, int] = defaultdict(int)
    for p99_reason, _ in explained:
        if p99_reason is not None:
            tally["P99: " + p99_reason.kind] += 1
    for saturation_reason in saturation_of.values():
        if saturation_reason is not None:
            tally["saturation: " + saturation_reason.kind] += 1
    lines = [
        "# Service-model calibration report",
        "",
        (
            f"Made by `{command}` in {seconds:.0f} s: the shipped service model, fitted by `infadapter calibrate` "
            f"(seeds: fit 0, tables 2), re-checked with seed {args.seed + 1}, {args.check_seeds} runs per row; the "
            f"fit's candidate grid replayed with seed {args.seed}, {args.seeds} runs per candidate, for the reasons."
            if args.check_only
            else f"Made by `{command}` in {seconds:.0f} s (seeds: fit {args.seed}, check {args.seed + 1}, "
            f"tables {args.seed + 2}; {args.seeds} runs per candidate, {args.check_seeds} fresh runs per row here)."
        ),
        "",
        f"Commit {git_commit()}, numpy {np.__version__}. Profile `{relative_to_repo(world.profile_path)}` "
        f"(SHA-256 {file_sha256(world.profile_path)[:16]}...), variants `{relative_to_repo(world.variants_path)}`.",
        "",
        "Every profile row replayed as the profiler ran it (16 s Poisson test at the row's capacity, P99 = largest",
        "2-s-window histogram quantile; saturation = 2 s at 30 req/s per core, best of 5), median of the runs.",
        "",
        f"- P99 within {P99_TOLERANCE:.0%}: **{len(p99_ok)} of {len(with_p99)}** rows with a measured P99 "
        f"({len(report) - len(with_p99)} rows have none: no tested rate met their SLA). Signed median P99 error "
        f"over all rows: **{100 * float(np.median(errors)):+.1f} %**; of the {missed.size} misses, "
        f"{int((missed < 0).sum())} are too fast (simulated P99 below the measured) and {int((missed > 0).sum())} "
        "too slow.",
        f"- Measured P99 inside the 5-95 % range of the simulated runs' P99 (what one profiler run could read): "
        f"**{sum(bool(c.within_band) for c in with_p99)} of {len(with_p99)}**. Each measured value is a single run, "
        "the largest of several short windows, read from histogram buckets 80 % wide, and the binary search kept "
        "the highest rate that happened to pass: a miss of the median is often within that noise.",
        f"- Saturation throughput within {SATURATION_TOLERANCE:.0%}: **{len(sat_ok)} of {len(servers)}** servers.",
        f"- {len(over)} servers were measured with a capacity above their saturation throughput (the 2-s burst "
        "test under-reads a server that then sustained more for 16 s); no single server matches both, and the fit "
        "keeps the latency curve (it decides violations) and gives up the saturation figure there.",
        "",
        "## How fast the servers are",
        "",
        f"The per-server fit's servers, every service rate multiplied by a common speed, replayed on the whole "
        f"profile ({args.scan_seeds} runs per row, seed {args.seed + 3}). The calibrated model is the per-server "
        f"fit at common speed **{scan.speed:g}**: of the speeds whose misses fall on both sides (neither direction "
        f"over {MISS_SHARE_MAX:.0%} of them, signed median within {MEDIAN_TOLERANCE:.0%}), the one whose misses "
        "split most evenly. "
        f"**The band of server speeds the P99 readings allow is {low:.3f}-{high:.3f}** (relative to the "
        "calibrated speed; `server_speed` in the env): the signed median P99 error over all rows stays within "
        f"{P99_TOLERANCE:.0%} there. The readings taken at the profile's capacities lie just below saturation, "
        "where a few per cent of speed move a 16-s P99 by a histogram bucket, so the band is narrow.",
        "",
        f"The saturation bursts would put the speed near {slow_end.speed / scan.speed:.2f} (there the simulated "
        f"2-s burst reads saturation_tp within {100 * abs(slow_end.median_saturation_error):.0f} % at the median), "
        f"where the P99 readings are missed by {100 * slow_end.median_p99_error:+.0f} % at the median. The P99 "
        "tests decide: they ran 16 s at the rates the planners serve, 391 of them, while the bursts ran 2 s; "
        f"{len(over)} servers passed a P99 test at a rate above their burst reading, which a server that "
        "sustained only that reading could not; and on the development machine a real 1-core server's best-of-5 "
        "2-s burst reads above its 60-s sustained throughput (`infadapter speed-tests`, "
        "`results/speed-tests/this-machine/summary.md`): how a burst reading relates to sustained speed "
        "depends on the server and the machine. "
        "The robustness report (`infadapter robustness`) replays the conclusions at 0.85, 1.0 and 1.15, wider "
        "than this band.",
        "",
        "| speed (x calibrated) | P99 rows within 15 % | signed median P99 error | misses too fast / too slow | "
        "measured P99 in the runs' 5-95 % range | median saturation error |",
        "|---|---|---|---|---|---|",
        *(
            f"| {p.speed / scan.speed:.3f}{' (calibrated)' if p.speed == scan.speed else ''} | {p.within} of "
            f"{p.rows} | {100 * p.median_p99_error:+.1f} % | {p.too_fast} / {p.too_slow} | {p.in_run_range} | "
            f"{100 * p.median_saturation_error:+.1f} % |"
            for p in scan.points
        ),
        "",
        "## Every row",
        "- Other misses: rows whose P99 falls as the rate rises (non-monotone measurements, e.g. ResNet101 at "
        "9 cores: 661 ms at 47 req/s, 218 ms at 53) cannot all be matched by one monotone queue.",
        "",
        "Each miss says why, from the fit's grid of candidate servers (mean service time 0.70-1.30 x workers / "
        "saturation_tp, CV 0-2, median of its runs at every measured point): a P99 that no candidate reaches "
        "(faster or slower than any), a P99 non-monotone with another point of the server (no candidate matches "
        "both), or one that a candidate matches only by missing more of the server's other points or, matching as "
        "many in all, loses on the fit's next criteria (saturation within 5 %, then the total P99 error); a "
        "saturation throughput that a candidate within 5 % would match only by keeping fewer P99 points (or as "
        "many, with a larger total P99 error). \"within 15 % in the fit's runs\": the fit's runs and the fresh "
        "ones here fall on either side of the tolerance (often a P99 near a histogram bucket's edge).",
        "",
        "Reasons of the misses here: "
        + ", ".join(f"{count} x {kind}" for kind, count in sorted(tally.items(), key=lambda kv: -kv[1]))
        + ".",
        "",
        "| variant | cores | SLA ms | capacity req/s | P99 measured ms | P99 simulated ms (5-95 %) | error | "
        "saturation measured | simulated | error | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    texts = [tuple(None if why is None else why.text for why in pair) for pair in explained]
    lines += [report_row(c, c.row.variant, c in over, *texts[k]) for k, c in enumerate(report)]
    path.write_text("\n".join(lines) + "\n")


def report_row(
    c: Checked, name: str, over_saturation: bool, p99_reason: str | None = None, saturation_reason: str | None = None
) -> str:
    """One profile row of the report table: measured against simulated, and what missed."""
    r = c.row
    p99_text = f"{r.p99_ms:.0f}" if r.p99_ms is not None else "-"
    if c.simulated_p99_ms is None:
        sim_text = "-"
    else:
        sim_text = f"{c.simulated_p99_ms:.0f} ({c.band_ms[0]:.0f}-{c.band_ms[1]:.0f})"
    err = c.p99_error
    err_text = f"{100 * err:+.0f} %" if err is not None else "-"
    status = []
    if err is None:
        status.append("no measured P99")
    elif abs(err) > P99_TOLERANCE:
        notes = [note for note in ("within run-to-run range" if c.within_band else None, p99_reason) if note]
        status.append("P99 missed" + (f" ({'; '.join(notes)})" if notes else ""))
    if abs(c.saturation_error) > SATURATION_TOLERANCE:
        notes = [note for note in ("capacity > saturation_tp" if over_saturation else None, saturation_reason) if note]
        status.append("saturation missed" + (f" ({'; '.join(notes)})" if notes else ""))
    return (
        f"| {name} | {r.cores} | {r.slo_ms} | {r.capacity:.0f} | {p99_text} | {sim_text} | {err_text} | "
        f"{r.saturation_tp:.0f} | {c.simulated_saturation:.1f} | {100 * c.saturation_error:+.1f} % | "
        f"{', '.join(status) or 'ok'} |"
    )
