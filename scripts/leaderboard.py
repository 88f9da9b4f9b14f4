"""The benchmark's main job: every contender of a protocol on its scenarios over a sweep of beta.

    infadapter leaderboard                                       (or: make leaderboard)
    infadapter leaderboard --protocol paper-2023                 (the original experiment)
    infadapter leaderboard --agents infadapter vpa-50 --betas 0.05,0.1 --scenarios paper --backend ray

Writes into ``--out`` (default ``results/leaderboard``, or ``results/<protocol>``):
``leaderboard.csv`` (one row per contender, beta, scenario and seed, with every metric, the action
sequence, the quotas, the settings, the version and the commit), ``summary.md`` (ranked per beta,
with the paper's headline compared) and figures (``beta_sweep.png`` or ``paper_figure.png``,
``timeline_*.png``). Rows are appended as they finish: an interrupted sweep keeps them, and
re-running the same command resumes without duplicates; a half-written row is detected by its
checksum and redone. The protocols are fixed in ``scripts/protocol.py``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from infadapter_scripts.aggregate import mean_by, mean_ci, per_seed
from infadapter_scripts.arguments import arg, parse
from infadapter_scripts.protocol import COLUMNS, DEFAULT_BETAS, PROTOCOLS, Protocol, Task, row_digest, run_task

BACKENDS = ("local", "serial", "ray")
CSV_NAME = "leaderboard.csv"
PAPER_VIOLATION_REDUCTION_PCT = 65.0
PAPER_COST_REDUCTION_PCT = 33.0


@dataclass
class Args:
    """Run the InfAdapter-Gym leaderboard."""

    protocol: str = arg("default", f"protocol: {', '.join(PROTOCOLS)} (scripts/protocol.py)")
    out: str = arg("", "output folder, created if missing (default: results/leaderboard or results/<protocol>)")
    agents: list[str] = arg([], "contenders to score (default: every contender of the protocol)")
    scenarios: list[str] = arg([], "scenarios (default: the protocol's)")
    betas: str = arg(",".join(map(str, DEFAULT_BETAS)), "comma-separated beta values")
    seeds: list[int] = arg([], "seeds passed to env.reset (default: the protocol's: 0, or 0-4 for paper-2023)")
    backend: str = arg("local", f"one of {', '.join(BACKENDS)}: local processes, one process, or Ray")
    workers: int = arg(os.cpu_count() or 1, "parallel workers (local and ray backends)")
    address: str | None = arg(None, "Ray cluster address (default: start a local Ray instance)")
    timeline_agent: str = arg("infadapter", "agent drawn in the episode timeline figure")
    timeline_scenario: str = arg("paper", "scenario drawn in the episode timeline figure")
    figures: bool = arg(True, "draw the figures")


class UsageError(ValueError):
    """Bad command-line input; reported as one line, not a traceback."""


def parse_betas(text: str) -> tuple[float, ...]:
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise UsageError(
                f"--betas: {part.strip()!r} is not a number; give a comma-separated list like 0.01,0.05"
            ) from None
        if not 0 <= value < float("inf"):
            raise UsageError(f"--betas: {value} is not a finite number >= 0")
        values.append(value)
    return tuple(dict.fromkeys(values))


def check_names(kind: str, given: Sequence[str], valid: Sequence[str]) -> list[str]:
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise UsageError(f"unknown {kind} {', '.join(map(repr, unknown))}; valid {kind}s: {', '.join(valid)}")
    return list(dict.fromkeys(given)) or list(valid)


def prepare_output(folder: str) -> Path:
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output folder {out} is not writable: {exc.strerror or exc}") from None
    return out


# ----------------------------------------------------------------------------- the CSV
def read_rows(path: Path) -> tuple[list[dict[str, str]], int]:
    """Valid rows of a leaderboard CSV and the number of lines dropped (half-written or edited).

    Every row sits on one line, so a torn last line cannot swallow the rows before it."""
    if not path.exists():
        return [], 0
    lines = path.read_text().splitlines()
    if not lines:
        return [], 0
    if next(csv.reader([lines[0]])) != list(COLUMNS):
        raise UsageError(f"{path} has other columns than this version writes; move it away or choose another --out")
    rows, dropped, seen = [], 0, set()
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        row = dict(zip(COLUMNS, fields, strict=False))
        if len(fields) != len(COLUMNS) or row_digest(row) != row["row_sha256"]:
            dropped += 1
            continue
        key = row_key(row)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        rows.append(row)
    return rows, dropped


def row_key(row: dict[str, Any]) -> tuple[str, str, float, str, int]:
    return (row["protocol"], row["agent"], float(row["beta"]), row["scenario"], int(row["seed"]))


def format_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([row[c] for c in COLUMNS])
    return buffer.getvalue()


def rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the file with exactly these rows (atomic: a temporary file, then a rename)."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w") as handle:
        handle.write(format_line({c: c for c in COLUMNS}))
        for row in rows:
            handle.write(format_line(row))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(format_line(row))
        handle.flush()
        os.fsync(handle.fileno())


# ----------------------------------------------------------------------------- backends
def execute(tasks: list[Task], backend: str, workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    """Rows of ``tasks`` in the order they finish."""
    if backend == "serial" or (workers <= 1 and backend == "local"):
        for task in tasks:
            yield run_task(task)
    elif backend == "local":
        yield from _execute_processes(tasks, workers)
    else:
        yield from _execute_ray(tasks, workers, address)


def _execute_processes(tasks: list[Task], workers: int) -> Iterator[dict[str, Any]]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # torch and threads do not survive fork well
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(run_task, task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _execute_ray(tasks: list[Task], workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'infadapter-gym[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(run_task)
    try:
        pending = [remote.remote(task) for task in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Args, argv, prog="infadapter leaderboard")
    try:
        return run(args, command=" ".join(["infadapter leaderboard", *argv]))
    except UsageError as exc:
        print(f"infadapter leaderboard: error: {exc}", file=sys.stderr)
        return 2


def run(args: Args, command: str) -> int:
    if args.backend not in BACKENDS:
        raise UsageError(f"unknown backend {args.backend!r}; valid backends: {', '.join(BACKENDS)}")
    if args.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {args.protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    protocol = PROTOCOLS[args.protocol]
    agent_names = check_names("agent", args.agents, list(protocol.contenders()))
    scenario_names = check_names("scenario", args.scenarios, list(protocol.scenarios))
    seeds = list(dict.fromkeys(args.seeds)) or list(protocol.seeds)
    betas = parse_betas(args.betas)
    out = prepare_output(args.out or protocol.default_out)
    path = out / CSV_NAME

    rows, dropped = read_rows(path)
    if dropped:
        print(f"dropped {dropped} half-written, edited or duplicate row(s) of {path}; they will be redone")
    rewrite(path, rows)
    done = {row_key(row) for row in rows}
    wanted = [
        (protocol.name, a, b, s, seed) for b in betas for s in scenario_names for seed in seeds for a in agent_names
    ]
    tasks = [Task(*key) for key in wanted if key not in done]
    if done:
        print(f"resuming: {len(wanted) - len(tasks)} of {len(wanted)} rows already in {path}")
    try:
        with tqdm(total=len(tasks), desc="leaderboard", unit="episode", file=sys.stderr) as bar:
            for row in execute(tasks, args.backend, args.workers, args.address):
                append(path, row)
                bar.update()
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished rows are in {path}; run the same command again to resume", file=sys.stderr)
        return 130

    all_rows, _ = read_rows(path)
    wanted_keys = set(wanted)
    selected = [row for row in all_rows if row_key(row) in wanted_keys]
    summary = write_summary(out, selected, command=command, protocol=protocol)
    print(summary)
    if args.figures:
        from infadapter_scripts.figures import beta_sweep, paper_figure, timeline

        if protocol.name == "paper-2023":
            figures = [paper_figure(selected, out / "paper_figure.png")]
        else:
            figures = [beta_sweep(selected, out / "beta_sweep.png")]
        drawn = timeline_row(selected, args.timeline_agent, args.timeline_scenario)
        if drawn is not None:
            name = f"timeline_{drawn['agent']}_{drawn['scenario']}_beta{drawn['beta']}.png".replace("/", "-")
            figures.append(timeline(drawn, out / name))
        print("figures: " + ", ".join(str(f) for f in figures))
    print(f"rows: {path} ({len(selected)} rows)")
    return 0


def timeline_row(rows: list[dict[str, str]], agent: str, scenario: str) -> dict[str, str] | None:
    """The row to draw: the agent on the scenario (else any scenario) at the beta nearest the paper's 0.05."""
    candidates = [r for r in rows if r["agent"] == agent and r["scenario"] == scenario]
    candidates = candidates or [r for r in rows if r["agent"] == agent]
    return min(candidates, key=lambda r: (abs(float(r["beta"]) - 0.05), int(r["seed"])), default=None)


# ----------------------------------------------------------------------------- summary
def write_summary(out: Path, rows: list[dict[str, str]], command: str, protocol: Protocol) -> str:
    """``summary.md``: per beta, contenders ranked by mean objective over scenarios and seeds (with
    95 % confidence intervals over seeds where there are several), then the paper's headline."""
    columns = [
        ("objective", "objective", "{:.4f}"),
        ("SLO viol. %", "slo_violation_pct", "{:.2f}"),
        ("5 s windows P99 > SLO %", "window_violation_pct", "{:.1f}"),
        ("dropped %", "dropped_pct", "{:.2f}"),
        ("P99 ms (mean)", "p99_mean_ms", "{:.0f}"),
        ("P99 ms (worst)", "p99_worst_ms", "{:.0f}"),
        ("accuracy (eff.)", "aa_effective", "{:.4f}"),
        ("accuracy (planned)", "aa_planned", "{:.4f}"),
        ("mean cores", "mean_cores", "{:.2f}"),
        ("LC", "loading_cost", "{:.3f}"),
        ("reconfig.", "reconfigurations", "{:.1f}"),
        ("decision ms (mean)", "decision_ms_mean", "{:.3f}"),
    ]
    if all(math.isnan(float(r["window_violation_pct"])) for r in rows):  # the fast simulator does not measure it
        columns = [c for c in columns if c[1] != "window_violation_pct"]
    seeds = sorted({int(r["seed"]) for r in rows})
    scenario_names = sorted({r["scenario"] for r in rows})
    lines = [
        f"# InfAdapter-Gym leaderboard: protocol `{protocol.name}`",
        "",
        f"Command: `{command}`. Means over scenarios ({', '.join(scenario_names)}) and seeds "
        f"({', '.join(map(str, seeds))}); {len(rows)} rows in `{CSV_NAME}`. Protocol: `scripts/protocol.py`.",
    ]
    if len(seeds) > 1:
        lines.append("Cells are mean ± half-width of the 95 % Student-t confidence interval over seeds.")
    for beta in sorted({r["beta"] for r in rows}, key=float):
        mine = [r for r in rows if r["beta"] == beta]
        by_agent: dict[str, list[dict[str, str]]] = {}
        for r in mine:
            by_agent.setdefault(r["agent"], []).append(r)
        stats = {
            agent: {col: mean_ci(per_seed(group, col)) for _, col, _ in columns} for agent, group in by_agent.items()
        }
        ranked = sorted(stats, key=lambda a: -stats[a]["objective"][0])
        lines += ["", f"## beta = {beta}", "", "| rank | agent | " + " | ".join(h for h, _, _ in columns) + " |"]
        lines.append("|---" * (len(columns) + 2) + "|")
        for rank, agent in enumerate(ranked, start=1):
            cells = []
            for _, col, fmt in columns:
                mean, half = stats[agent][col]
                cells.append(fmt.format(mean) + (" ± " + fmt.format(half) if len(seeds) > 1 else ""))
            lines.append(f"| {rank} | {agent} | " + " | ".join(cells) + " |")
    lines += ["", *headline(rows, protocol.name)]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def usage_signal(row: dict[str, str]) -> str:
    """The usage signal a VPA row ran with (``agents.vpa``; ``throttled`` by default)."""
    return str(json.loads(row["agent_options"] or "{}").get("usage", "throttled"))


def vpa_order(label: str) -> tuple[int, str]:
    """VPA labels (``vpa-50`` or ``vpa-50/busy``) by depth, then usage signal."""
    name, _, signal = label.partition("/")
    return int(name.removeprefix("vpa-")), signal


def verdict(best: float, paper: float) -> str:
    """A claim of "up to ``paper`` %" against the best reduction found."""
    if abs(best - paper) <= VERDICT_TOLERANCE_PTS:
        return "reproduced"
    if best > paper:
        return "partly reproduced (a larger reduction)"
    if best > 0:
        return "partly reproduced (a smaller reduction)"
    return "not reproduced"


@dataclass(frozen=True)
class Comparison:
    """InfAdapter against one VPA contender at one beta (means over scenarios and seeds)."""

    beta: str
    vpa: str
    signal: str
    violations: dict[str, tuple[float, float, float | None]]  # definition: (VPA, InfAdapter, reduction %)
    cores: tuple[float, float, float]  # VPA, InfAdapter, reduction %


def reduction_pct(ours: float, theirs: float) -> float | None:
    """1 - ours / theirs in %; None when the VPA had none (no reduction is possible)."""
    if theirs > 0:
        return 100 * (1 - ours / theirs)
    return 0.0 if ours == 0 else None


def compare_with_vpa(rows: list[dict[str, str]], definitions: list[tuple[str, str]]) -> list[Comparison]:
    vpas = sorted({r["agent"] for r in rows if r["agent"].startswith("vpa-")}, key=vpa_order)
    signal_of = {r["agent"]: usage_signal(r) for r in rows if r["agent"] in vpas}
    means = {col: mean_by(rows, ("beta", "agent"), col) for _, col in definitions}
    cores = mean_by(rows, ("beta", "agent"), "mean_cores")
    out = []
    for signal in sorted(set(signal_of.values()), key=VPA_SIGNAL_ORDER.index):
        for beta in sorted({b for b, a in cores if a == "infadapter"}, key=float):
            for vpa in [v for v in vpas if signal_of[v] == signal and (beta, v) in cores]:
                violations = {}
                for name, col in definitions:
                    ours, theirs = means[col][(beta, "infadapter")], means[col][(beta, vpa)]
                    violations[name] = (theirs, ours, reduction_pct(ours, theirs))
                ours_c, theirs_c = cores[(beta, "infadapter")], cores[(beta, vpa)]
                out.append(
                    Comparison(
                        beta, vpa, signal, violations, (theirs_c, ours_c, reduction_pct(ours_c, theirs_c) or 0.0)
                    )
                )
    return out


def headline(rows: list[dict[str, str]], protocol: str) -> list[str]:
    """The paper's claim against VPA (up to 65 % fewer SLO violations, 33 % lower cost), checked
    the way the paper states it: InfAdapter against every VPA variant at every beta, "up to" = the
    best of those, per VPA usage signal and per violation definition; each difference from the
    paper explained in one sentence built from the numbers."""
    lines = ["## The paper's headline: InfAdapter against VPA", ""]
    if not any(r["agent"] == "infadapter" for r in rows) or not any(r["agent"].startswith("vpa-") for r in rows):
        return [*lines, "Not computed: the sweep needs `infadapter` and at least one `vpa-*` agent."]
    definitions = [("per request", "slo_violation_pct")]
    if not all(math.isnan(float(r["window_violation_pct"])) for r in rows):
        definitions.append(("5 s windows with P99 > SLO", "window_violation_pct"))
    comparisons = compare_with_vpa(rows, definitions)
    lines.append(
        "Paper (EuroMLSys 2023): up to 65 % fewer SLO violations and 33 % lower cost than VPA. Reductions are "
        "1 - InfAdapter / VPA on means over scenarios and seeds, against every VPA variant at every beta "
        "(n/a: that VPA violated nothing, so no reduction is possible)."
    )
    verdicts: list[tuple[str, str, float, str, float]] = []
    for signal in dict.fromkeys(c.signal for c in comparisons):
        mine = [c for c in comparisons if c.signal == signal]
        header = "| beta | VPA | " + " | ".join(
            f"VPA viol. % ({name}) | InfAdapter viol. % ({name}) | reduction %" for name, _ in definitions
        )
        lines += [
            "",
            f"### VPA usage signal `{signal}`",
            "",
            header + " | VPA cores | InfAdapter cores | cost reduction % |",
        ]
        lines.append("|---" * (2 + 3 * len(definitions) + 3) + "|")
        for c in mine:
            cells = [
                f"{theirs:.2f} | {ours:.2f} | " + ("n/a" if red is None else f"{red:.1f}")
                for theirs, ours, red in c.violations.values()
            ]
            cells.append(f"{c.cores[0]:.2f} | {c.cores[1]:.2f} | {c.cores[2]:.1f}")
            lines.append(f"| {c.beta} | {c.vpa} | " + " | ".join(cells) + " |")
        for name, _ in definitions:
            found = [(red, c) for c in mine if (red := c.violations[name][2]) is not None]
            value, best = max(found, key=lambda x: x[0]) if found else (0.0, mine[0])
            verdicts.append(
                (
                    f"SLO violations ({name})",
                    signal,
                    value,
                    f"{best.vpa} at beta {best.beta}",
                    PAPER_VIOLATION_REDUCTION_PCT,
                )
            )
        best = max(mine, key=lambda c: c.cores[2])
        verdicts.append(
            ("cost (mean cores)", signal, best.cores[2], f"{best.vpa} at beta {best.beta}", PAPER_COST_REDUCTION_PCT)
        )
    lines += [
        "",
        f"### Verdicts (protocol `{protocol}`)",
        "",
        "| claim | VPA usage signal | up to (here) | where | paper | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for claim, signal, value, where, paper in verdicts:
        lines.append(f"| {claim} | {signal} | {value:.1f} % | {where} | {paper:.0f} % | **{verdict(value, paper)}** |")
    lines += [
        "",
        f"A claim is reproduced when the best reduction found is within {VERDICT_TOLERANCE_PTS:.0f} points of the "
        "paper's figure, partly reproduced when InfAdapter is better but by a different amount, and not reproduced "
        "otherwise. Each difference in one sentence:",
        "",
    ]
    for claim, signal, value, _, paper in verdicts:
        if verdict(value, paper) != "reproduced":
            lines.append(
                f"- {claim}, `{signal}`: " + explain(claim, signal, [c for c in comparisons if c.signal == signal])
            )
    lines += ["", WHY_DIFFERENT[protocol]]
    return lines


def span(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def explain(claim: str, signal: str, comparisons: list[Comparison]) -> str:
    """One sentence on why a claim's number differs from the paper's, from the comparisons' numbers."""
    ours_cores = [c.cores[1] for c in comparisons]
    if claim.startswith("cost"):
        theirs = [c.cores[0] for c in comparisons]
        if signal == "busy":
            return (
                f"VPA never leaves its {max(theirs):.0f} cores under this signal, so the reduction is what "
                f"InfAdapter saves below them ({span(ours_cores)} mean cores over the betas)."
            )
        cheaper = sorted({c.vpa for c in comparisons if c.cores[2] < 0}, key=vpa_order)
        return (
            f"a VPA that samples throttled usage shrinks to what it serves ({span(theirs)} mean cores), so "
            f"{', '.join(cheaper) or 'none'} use fewer cores than InfAdapter ({span(ours_cores)}), paying in "
            "violations."
        )
    name = claim[claim.index("(") + 1 : -1]
    violating = [c.violations[name][0] for c in comparisons if c.violations[name][0] > 0]
    ours = [c.violations[name][1] for c in comparisons]
    clean = sorted({c.vpa for c in comparisons if c.violations[name][0] == 0}, key=vpa_order)
    reason = (
        "a single ResNet50-152 at VPA's cores cannot serve the slice's burst"
        if signal == "busy"
        else "a VPA sampling throttled usage sees no demand above its allocation and grows by at most its 15 % "
        "margin per sample, too slowly for a burst"
    )
    sentence = f"the VPAs here violate {span(violating) if violating else '0'} % ({reason}), InfAdapter {span(ours)} %"
    if clean:
        sentence += f"; {', '.join(clean)} violate nothing, and against them there is no reduction"
    return sentence + "."


VPA_SIGNAL_ORDER = ("throttled", "busy")
VERDICT_TOLERANCE_PTS = 10.0
WHY_DIFFERENT = {
    "default": (
        "Beyond these, this protocol is this benchmark's own, not the paper's experiment (`--protocol paper-2023` "
        "runs that; the README lists every difference): every system starts empty and decides from t = 0, the "
        "scenarios include four held-out windows besides the paper's slice, and the dispatcher is accuracy-first "
        "on the fast simulator."
    ),
    "paper-2023": (
        "Beyond these: this is a simulator replaying measured capacities and calibrated latencies, not the paper's "
        "Kubernetes cluster; the paper does not say which violation definition or VPA usage it measured (both are "
        "shown); and the paper reports single runs, here means over five arrival seeds."
    ),
}


if __name__ == "__main__":
    raise SystemExit(main())
