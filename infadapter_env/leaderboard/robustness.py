"""Which conclusions hold across the band of server speeds: the default leaderboard and the
paper-2023 verdicts replayed at several ``server_speed`` values (``infadapter robustness``).

    infadapter robustness                                   (0.85, 1.0, 1.15: about 12 min on 2 cores)
    infadapter robustness --speeds 0.85 1.15 --out results/robustness

Per speed, both protocols are swept in full into ``--out/<protocol>-speed<s>/`` (resumable, as
``infadapter leaderboard``; a folder already complete is reused). The report (``--out/robustness.md``,
and ``--docs`` for the docs site) states, per beta and contender, two conclusions of the default
leaderboard at every speed and whether each holds across the band:

- whether the contender meets the P99 SLO (the ranking rule's first group), and
- where it stands against InfAdapter (above, below, or not separated: the paired IQM difference's
  window-bootstrap interval, as ``summary.md`` calls it);

and, per claim, reading and VPA usage signal, paper-2023's verdict at every speed. A conclusion
holds when it is the same at every speed. Speeds are a multiplier on every server's service rate
(``InfAdapter-v0(server_speed=...)``); capacities, queue bounds and the planners' profiles stay the
measured ones, so planners and learned policies meet servers faster or slower than they expect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import infadapter_env
from infadapter_env.core.settings import MAX_SERVER_SPEED
from infadapter_env.leaderboard.aggregate import BOOTSTRAP_REPS, BOOTSTRAP_SEED, REFERENCE_AGENT, beta_aggregates
from infadapter_env.leaderboard.headline import headline_verdicts
from infadapter_env.leaderboard.protocol import DEFAULT_BETAS, get_protocol
from infadapter_env.options import option
from infadapter_env.provenance import git_commit
from infadapter_env.sim.calibration import read_speed_band
from infadapter_env.world.profiles import shipped_world

SPEEDS = (0.85, 1.0, 1.15)  # wider than the band the P99 readings allow (profiles/calibration_report.md)
PROTOCOLS = ("default", "paper-2023")


@dataclass
class RobustnessOptions:
    """Sweep both protocols at several server speeds and report which conclusions hold across them."""

    speeds: list[float] = option(list(SPEEDS), "server speeds (multipliers on every service rate)")
    out: str = option("results/robustness", "output folder (a subfolder per protocol and speed)")
    docs: str | None = option(None, "also write the report here (e.g. docs/robustness.md)")
    backend: str = option("local", "sweep backend (local, serial, ray)")
    workers: int = option(2, "parallel workers")
    reps: int = option(BOOTSTRAP_REPS, "bootstrap resamples of the aggregates")


def band_sentence(speeds: Sequence[float]) -> str:
    """Where the swept speeds stand against the band the shipped calibration publishes."""
    band = read_speed_band(shipped_world().profile_path.parent)
    if band is None:
        return "The shipped calibration publishes no band of server speeds (run `infadapter calibrate`)."
    low, high = band
    inside = [s for s in speeds if low <= s <= high]
    return (
        f"The band of server speeds the profile's P99 readings allow is {low:.3f}-{high:.3f} "
        '(`profiles/calibration_report.md`, section "How fast the servers are"); '
        + (
            f"the speeds swept here reach {min(speeds):g} and {max(speeds):g}, beyond it on both sides: the sweep "
            "brackets the band and tests more than it allows."
            if min(speeds) <= low and max(speeds) >= high
            else f"of the speeds swept here, {', '.join(f'{s:g}' for s in inside) or 'none'} lie inside it."
        )
    )


def sweep_folder(out: Path, protocol: str, speed: float) -> Path:
    return out / f"{protocol}-speed{speed:g}"


def standing(results: pd.DataFrame, beta: float, reps: int, seed: int = BOOTSTRAP_SEED) -> dict[str, tuple[bool, str]]:
    """Per contender at ``beta``: whether it meets the SLO, and ``above``, ``below`` or ``tied`` against
    InfAdapter (``tied``: the paired interval includes 0); InfAdapter itself is ``reference``."""
    aggregates = beta_aggregates(results, beta, reps=reps, seed=seed)
    out = {}
    for agent in aggregates.order:
        if agent == REFERENCE_AGENT:
            versus = "reference"
        elif aggregates.differences[(agent, REFERENCE_AGENT)].low > 0:
            versus = "above"
        elif aggregates.differences[(REFERENCE_AGENT, agent)].low > 0:
            versus = "below"
        else:
            versus = "tied"
        out[agent] = (agent in aggregates.meets, versus)
    return out


def cell(meets: bool, versus: str) -> str:
    return f"{'meets' if meets else 'misses'}, {versus}"


def report(
    boards: dict[float, pd.DataFrame], papers: dict[float, pd.DataFrame], reps: int, command: str
) -> tuple[str, dict[str, int]]:
    """The markdown report and its counts (conclusions that hold, that do not)."""
    speeds = sorted(boards)
    counts = {"hold": 0, "flip": 0}
    flips: list[str] = []
    lines = [
        "# Robustness: conclusions across server speeds",
        "",
        f"Command: `{command}` (commit {git_commit()}, infadapter-gym {infadapter_env.__version__}). Both protocols "
        f"swept in full at `server_speed` {', '.join(f'{s:g}' for s in speeds)} (every server's service rate times "
        "the speed; capacities, queue bounds and the planners' profiles unchanged). Default protocol: per beta and "
        "contender, whether it meets the P99 SLO and where it stands against InfAdapter (paired IQM difference, "
        f"95 % window bootstrap, {reps} resamples); a conclusion holds when it is the same at every speed.",
        "",
        band_sentence(speeds),
    ]
    betas = sorted(set.intersection(*(set(b["beta"]) for b in boards.values())))
    standings = {beta: {s: standing(boards[s], beta, reps) for s in speeds} for beta in betas}
    lines += [
        "",
        "## Who meets the P99 SLO, per speed",
        "",
        "| beta | " + " | ".join(f"speed {s:g}" for s in speeds) + " |",
        "|---" * (len(speeds) + 1) + "|",
    ]
    for beta in betas:
        met = [", ".join(a for a, (m, _) in standings[beta][s].items() if m) or "none" for s in speeds]
        lines.append(f"| {beta:g} | " + " | ".join(met) + " |")
    for beta in betas:
        per_speed = standings[beta]
        agents = [a for a in per_speed[speeds[len(speeds) // 2]] if all(a in per_speed[s] for s in speeds)]
        lines += ["", f"## Default protocol, beta = {beta:g}", ""]
        lines.append("| contender | " + " | ".join(f"speed {s:g}" for s in speeds) + " | holds across the band |")
        lines.append("|---" * (len(speeds) + 2) + "|")
        for agent in agents:
            cells = [per_speed[s][agent] for s in speeds]
            meets_hold = len({m for m, _ in cells}) == 1
            versus_hold = len({v for _, v in cells}) == 1
            for held, what in ((meets_hold, "SLO"), (versus_hold, "against InfAdapter")):
                counts["hold" if held else "flip"] += 1
                if not held:
                    flips.append(
                        f"{agent} at beta {beta:g} ({what}: "
                        + "; ".join(f"{s:g}: {cell(*c)}" for s, c in zip(speeds, cells, strict=True))
                        + ")"
                    )
            verdict = (
                "yes"
                if meets_hold and versus_hold
                else ("SLO only" if meets_hold else ("against InfAdapter only" if versus_hold else "no"))
            )
            lines.append(f"| {agent} | " + " | ".join(cell(*c) for c in cells) + f" | {verdict} |")
    if papers:
        lines += ["", "## Paper-2023: the headline's verdicts", ""]
        pspeeds = sorted(papers)
        verdicts = {s: headline_verdicts(papers[s], get_protocol("paper-2023")) for s in pspeeds}
        lines.append("| claim | reading | VPA usage | " + " | ".join(f"speed {s:g}" for s in pspeeds) + " | holds |")
        lines.append("|---" * (len(pspeeds) + 4) + "|")
        for k, v in enumerate(verdicts[pspeeds[0]]):
            found = [verdicts[s][k] for s in pspeeds]
            held = len({f.verdict for f in found}) == 1
            counts["hold" if held else "flip"] += 1
            if not held:
                flips.append(f"paper-2023 {v.claim.name}, {v.claim.reading}, `{v.signal}`")
            values = [f"{f.verdict} ({f.value:.1f} {f.claim.unit})" for f in found]
            lines.append(
                f"| {v.claim.name} | {v.claim.reading} | {v.signal} | "
                + " | ".join(values)
                + f" | {'yes' if held else 'no'} |"
            )
    lines[4:4] = [
        "",
        f"**{counts['hold']} conclusions hold across the band, {counts['flip']} do not.** Those that do not:",
        "",
        *([f"- {f}" for f in flips] or ["- none"]),
        "",
    ]
    return "\n".join(lines) + "\n", counts


def run(args: RobustnessOptions, command: str, log: Callable[[str], None] = print) -> str:
    """Sweep what is missing, write the report, and return it."""
    from infadapter_env.leaderboard.sweep import run_sweep

    out = Path(args.out)
    boards: dict[float, pd.DataFrame] = {}
    papers: dict[float, pd.DataFrame] = {}
    for speed in args.speeds:
        for protocol, into in (("default", boards), ("paper-2023", papers)):
            chosen = get_protocol(protocol)
            folder = sweep_folder(out, protocol, speed)
            folder.mkdir(parents=True, exist_ok=True)
            started = time.time()
            into[speed] = run_sweep(
                protocol,
                [],
                list(chosen.scenarios),
                list(DEFAULT_BETAS),
                list(chosen.seeds),
                folder,
                args.backend,
                args.workers,
                log=log,
                env={"server_speed": float(speed)},
            )
            log(f"{protocol} at server_speed {speed:g}: {len(into[speed])} rows in {time.time() - started:.0f} s")
    text, counts = report(boards, papers, args.reps, command)
    (out / "robustness.md").write_text(text)
    if args.docs:
        Path(args.docs).write_text(text)
    log(f"{counts['hold']} conclusions hold across the band, {counts['flip']} do not: {out / 'robustness.md'}")
    return text


def speeds_given(speeds: Sequence[float]) -> list[float]:
    bad = [s for s in speeds if not 0 < s <= MAX_SERVER_SPEED]
    if bad:
        raise ValueError(f"--speeds: {bad[0]} is not in (0, {MAX_SERVER_SPEED:g}]")
    return sorted(set(speeds))
