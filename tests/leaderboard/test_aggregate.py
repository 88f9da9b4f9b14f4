"""The leaderboard's aggregates (rliable: IQM, stratified-bootstrap CIs, probability of improvement,
performance profiles), its Pareto fronts and hypervolumes, and what summary.md and the figures make
of them; answers checked by hand or against rliable's and scipy's own functions."""

from __future__ import annotations

import itertools
import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from rliable import library as rly
from rliable import metrics

from infadapter_env.leaderboard.aggregate import (
    BOOTSTRAP_SEED,
    Interval,
    ScoreSet,
    beta_aggregates,
    improvement_intervals,
    iqm,
    iqm_intervals,
    performance_profiles,
    probability_of_improvement,
    rank_ranges,
    rliable_version,
    score_distribution,
    score_set,
)
from infadapter_env.leaderboard.episode import COLUMNS, METRIC_COLUMNS, TIMING_COLUMNS
from infadapter_env.leaderboard.figures import pareto_figure, performance_profile
from infadapter_env.leaderboard.pareto import budget_of, hypervolume, non_dominated, pareto_fronts
from infadapter_env.leaderboard.protocol import get_protocol
from infadapter_env.leaderboard.store import INTEGER_COLUMNS, to_frame
from infadapter_env.leaderboard.summary import write_summary

REPS = 300  # enough for the tests' checks, quick


def row(agent: str, beta: float, scenario: str, seed: int, **metrics_: float) -> dict:
    """One leaderboard row with the given metrics (the rest zero or empty)."""
    out: dict = {c: "" for c in COLUMNS}
    out |= {c: 0 for c in (*METRIC_COLUMNS, *TIMING_COLUMNS, *INTEGER_COLUMNS)}
    out |= {"protocol": "default", "agent": agent, "beta": beta, "scenario": scenario, "seed": seed}
    out |= {"window_violation_pct": math.nan, "env_settings": json.dumps({"budget_cores": 20}), "agent_options": "{}"}
    return out | metrics_


def synthetic(agents=4, betas=(0.02, 0.1), scenarios=3, seeds=3, rng_seed=0) -> pd.DataFrame:
    """A sweep whose agents differ by a fixed step in objective, plus noise."""
    rng = np.random.default_rng(rng_seed)
    names = ["infadapter", *[f"agent{k}" for k in range(agents - 1)]]
    rows = []
    for a, agent in enumerate(names):
        for beta in betas:
            for s in range(scenarios):
                for seed in range(seeds):
                    accuracy, cores, violations = 0.7 + 0.08 * rng.random(), 4 + 16 * rng.random(), 10 * rng.random()
                    objective = accuracy - beta * cores / 20 - 0.02 * a + 0.005 * rng.normal()
                    rows.append(
                        row(
                            agent,
                            beta,
                            f"s{s}",
                            seed,
                            objective=objective,
                            aa_effective=accuracy,
                            aa_planned=accuracy,
                            mean_cores=cores,
                            slo_violation_pct=violations,
                            steps=42,
                        )
                    )
    return to_frame(rows)


def matrices(*arrays: np.ndarray, names: str = "abcdefgh") -> ScoreSet:
    tasks = tuple(f"s{k}" for k in range(arrays[0].shape[1]))
    mats = {names[k]: np.asarray(m, dtype=float) for k, m in enumerate(arrays)}
    return ScoreSet(0.05, "objective", tasks, mats, {k: tuple(range(m.shape[0])) for k, m in mats.items()})


# --- the statistics against rliable's and scipy's -------------------------------------------------------


def test_iqm_is_the_25_percent_trimmed_mean_as_rliable_computes_it():
    assert iqm(np.array([[1.0, 2.0, 3.0, 4.0]])) == 2.5  # the middle two of four
    assert iqm(np.array([[7.0]])) == 7.0
    rng = np.random.default_rng(1)
    for shape in [(1, 3), (2, 2), (5, 31), (3, 7), (4, 1)]:
        x = rng.normal(size=shape)
        x[0, 0] = x[-1, -1]  # a tie
        assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None), abs=1e-12)
        assert iqm(x) == pytest.approx(metrics.aggregate_iqm(x), abs=1e-12)


def test_probability_of_improvement_is_rliables():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 6)), rng.normal(size=(4, 6))
    y[:, 0] = np.round(y[:, 0])
    x[:, 0] = y[0, 0]  # ties with one of y's runs
    assert probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)
    assert probability_of_improvement(x, x) == 0.5  # identical agents
    assert probability_of_improvement(x + 10, x) == 1.0 and probability_of_improvement(x, x + 10) == 0.0
    # Task 0: X beats Y always; task 1: in 1 of the 4 pairs; the mean over tasks is 5/8.
    assert probability_of_improvement(np.array([[2.0, 0.0], [3.0, 2.0]]), np.array([[1.0, 1.0], [1.5, 3.0]])) == 0.625


def test_score_distribution_is_rliables():
    rng = np.random.default_rng(3)
    x, taus = rng.normal(size=(4, 5)), np.linspace(-2, 2, 9)
    np.testing.assert_allclose(score_distribution(x, taus), rly.score_distributions(x, taus))


# --- intervals -------------------------------------------------------------------------------------------


def test_iqm_intervals_contain_the_point_and_are_reproducible():
    rng = np.random.default_rng(4)
    scores = matrices(rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), rng.normal(size=(3, 8)))
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    first = iqm_intervals(scores, reps=REPS)
    assert np.random.random() == before  # the global generator is restored
    assert first == iqm_intervals(scores, reps=REPS)  # the same seed, the same intervals
    assert first != iqm_intervals(scores, reps=REPS, seed=BOOTSTRAP_SEED + 1)
    for agent, interval in first.items():
        assert interval.low < interval.point < interval.high
        assert interval.point == pytest.approx(iqm(scores.matrices[agent]))
        assert interval.runs == scores.matrices[agent].shape[0]


def test_probability_of_improvement_intervals():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(5, 10))
    scores = matrices(base, base.copy(), base + 5, names="rsu")
    out = improvement_intervals(scores, reference="r", reps=REPS)
    assert set(out) == {"s", "u"}
    assert out["s"].point == 0.5 and out["s"].low <= 0.5 <= out["s"].high  # identical to the reference
    assert out["u"] == Interval(1.0, 1.0, 1.0, 5)  # always better: every resample says so
    assert improvement_intervals(scores, reference="absent", reps=REPS) == {}


def test_one_seed_gives_point_intervals_and_no_order():
    scores = matrices(np.array([[0.3, 0.5]]), np.array([[0.1, 0.2]]), names="ab")
    intervals = iqm_intervals(scores, reps=REPS)
    assert intervals["a"] == Interval(0.4, 0.4, 0.4, 1)
    assert intervals["b"].low == intervals["b"].point == intervals["b"].high
    assert rank_ranges(intervals) == {"a": (1, 2), "b": (1, 2)}  # a point interval separates nothing
    assert improvement_intervals(scores, reference="b", reps=REPS)["a"] == Interval(1.0, 1.0, 1.0, 1)
    profiles = performance_profiles(scores, np.array([0.0, 0.25, 0.45]), reps=REPS)
    np.testing.assert_allclose(profiles["a"][0], [1.0, 1.0, 0.5])
    np.testing.assert_allclose(profiles["a"][1], profiles["a"][0])


def test_rank_ranges_call_an_order_only_between_separated_intervals():
    intervals = {
        "a": Interval(0.95, 0.9, 1.0, 5),
        "b": Interval(0.7, 0.5, 0.95, 5),  # overlaps a
        "c": Interval(0.15, 0.1, 0.2, 5),  # below both
        "d": Interval(0.17, 0.12, 0.6, 5),  # overlaps b and c, below a
    }
    assert rank_ranges(intervals) == {"a": (1, 2), "b": (1, 3), "c": (3, 4), "d": (2, 4)}
    assert Interval(0.95, 0.9, 1.0, 1).above(Interval(0.1, 0.0, 0.2, 5)) is False  # one run: no order


def test_performance_profiles_bands_contain_the_profile():
    rng = np.random.default_rng(6)
    scores = matrices(rng.normal(size=(5, 6)), rng.normal(size=(5, 6)) + 1)
    taus = np.linspace(-3, 4, 15)
    for agent, (profile, low, high) in performance_profiles(scores, taus, reps=REPS).items():
        np.testing.assert_allclose(profile, score_distribution(scores.matrices[agent], taus))
        assert np.all(low <= profile) and np.all(profile <= high)
        assert profile[0] == 1.0 and profile[-1] == 0.0


def test_score_set_keeps_what_every_agent_played():
    rows = [row(a, 0.1, s, seed, objective=1.0) for a in ("x", "y") for s in ("p", "q") for seed in (0, 1)]
    rows.append(row("x", 0.1, "r", 0, objective=1.0))  # only x played r
    rows = [r for r in rows if not (r["agent"] == "y" and r["scenario"] == "q" and r["seed"] == 1)]
    rows.append(row("z", 0.1, "p", 0, objective=1.0))  # z never played q
    scores = score_set(to_frame(rows), 0.1)
    assert scores.scenarios == ("p",) and scores.left_out_scenarios == ("q", "r")
    assert scores.seeds == {"x": (0, 1), "y": (0, 1), "z": (0,)}
    assert scores.one_run == ("z",) and not scores.single_run
    two = score_set(to_frame([r for r in rows if r["agent"] != "z"]), 0.1)
    assert two.scenarios == ("p", "q") and two.seeds == {"x": (0, 1), "y": (0,)}  # y's seed 1 misses q
    assert two.matrices["x"].shape == (2, 2) and two.matrices["y"].shape == (1, 2)


# --- Pareto fronts and hypervolume ----------------------------------------------------------------------


def test_non_dominated_points():
    points = np.array([[1, 1, 1], [2, 0, 1], [0.5, 0.5, 0.5], [1, 1, 1], [1, 1, 0.9], [0, 0, 2]])
    assert non_dominated(points).tolist() == [True, True, False, True, False, True]


def test_hypervolume_by_hand():
    assert hypervolume(np.array([[0.5, 0.4, 0.2]])) == pytest.approx(0.04)
    # Two boxes: 0.5 x 0.5 x 1 and 1 x 0.25 x 0.5 overlap in 0.5 x 0.25 x 0.5.
    assert hypervolume(np.array([[0.5, 0.5, 1.0], [1.0, 0.25, 0.5]])) == pytest.approx(0.25 + 0.125 - 0.0625)
    assert hypervolume(np.array([[0.5, 0.5], [1.0, 0.25]])) == pytest.approx(0.25 + 0.25 - 0.125)  # 2-D
    assert hypervolume(np.array([[0.5, 0.5, 1.0], [0.4, 0.5, 0.9]])) == pytest.approx(0.25)  # a dominated point
    assert hypervolume(np.array([[0.5, 0.5, 0.0], [0.5, -0.1, 0.5]])) == 0.0  # not above the reference
    assert hypervolume(np.array([[2.0, 2.0, 2.0]]), reference=np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert hypervolume(np.zeros((0, 3))) == 0.0


def union_by_inclusion_exclusion(points: np.ndarray) -> float:
    """The volume of the union of the boxes [0, p] by inclusion-exclusion (exponential; a few points)."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            total += (-1) ** (k + 1) * float(np.prod(np.min(subset, axis=0)))
    return total


def test_hypervolume_matches_inclusion_exclusion():
    rng = np.random.default_rng(7)
    for n in range(1, 7):
        points = rng.random((n, 3))
        points[0, 2] = points[-1, 2]  # a shared level
        assert hypervolume(points) == pytest.approx(union_by_inclusion_exclusion(points), abs=1e-12)


def test_pareto_fronts_from_rows():
    points = {  # beta: (accuracy, cores, violations %)
        0.01: (0.8, 16.0, 0.0),
        0.05: (0.7, 8.0, 0.0),
        0.1: (0.6, 10.0, 5.0),  # dominated by beta 0.05
    }
    rows = [
        row("a", beta, s, 0, aa_effective=acc + d, mean_cores=cores - 10 * d, slo_violation_pct=viol)
        for beta, (acc, cores, viol) in points.items()
        for s, d in (("p", 0.01), ("q", -0.01))  # means over scenarios: the points above
    ]
    rows.append(row("b", 0.05, "p", 0, aa_effective=0.5, mean_cores=20.0, slo_violation_pct=50.0))  # at the budget
    frame = to_frame(rows)
    assert budget_of(frame) == 20
    a, b = pareto_fronts(frame)
    assert a.agent == "a" and a.front_betas == [0.01, 0.05]
    # Normalised: (0.8, 1 - 16/20, 1) and (0.7, 1 - 8/20, 1): 0.8 x 0.2 + 0.7 x 0.6 - 0.7 x 0.2.
    assert a.hypervolume == pytest.approx(0.8 * 0.2 + 0.7 * 0.6 - 0.7 * 0.2)
    assert b.front_betas == [0.05] and b.hypervolume == 0.0  # the whole budget: nothing above the reference
    assert pareto_fronts(frame, budget_cores=40)[0].hypervolume == pytest.approx(
        union_by_inclusion_exclusion(np.array([[0.8, 0.6, 1.0], [0.7, 0.8, 1.0]]))
    )


# --- summary.md and the figures ---------------------------------------------------------------------------


def test_summary_shows_cis_ranks_improvement_pareto_and_how(tmp_path):
    frame = synthetic()
    text = write_summary(tmp_path, frame, "test", get_protocol("default"), reps=REPS)
    assert text == (tmp_path / "summary.md").read_text()
    assert f"rliable {rliable_version()}" in text and f"{REPS} resamples, seed {BOOTSTRAP_SEED}" in text
    assert "| rank | agent | IQM objective [95 % CI] | P(> infadapter) [95 % CI] | objective |" in text
    assert "## Pareto fronts over the beta sweep" in text and "| agent | points on the front |" in text
    assert "One seed" not in text
    for beta in (0.02, 0.1):
        aggregates = beta_aggregates(frame, beta, reps=REPS)
        best = max(aggregates.iqm, key=lambda a: aggregates.iqm[a].point)
        cell = f"{aggregates.iqm[best].point:.4f} [{aggregates.iqm[best].low:.4f}, {aggregates.iqm[best].high:.4f}]"
        low, high = aggregates.ranks[best]
        assert f"| {low if low == high else f'{low}-{high}'} | {best} | {cell} |" in text
    assert "Against infadapter (IQM intervals): above: none;" in text  # infadapter is the best by construction


def test_summary_separates_only_where_intervals_do(tmp_path):
    rows = []
    for seed in range(5):
        for s in ("p", "q", "r"):
            spread = 0.001 * (seed - 2)
            rows.append(row("infadapter", 0.05, s, seed, objective=0.5 + spread))
            rows.append(row("twin", 0.05, s, seed, objective=0.5 - spread))  # the same scores, other seeds
            rows.append(row("far", 0.05, s, seed, objective=0.1 + spread))
    text = write_summary(tmp_path, to_frame(rows), "test", get_protocol("default"), reps=REPS)
    assert "| 1-2 | infadapter |" in text and "| 1-2 | twin | 0.5000 [" in text and "| 0.50 [" in text
    assert "| 3 | far |" in text
    assert "above: none; tied (overlapping): twin; below: far." in text


def test_summary_with_one_seed_says_the_intervals_are_points(tmp_path):
    frame = synthetic(agents=2, betas=(0.05,), scenarios=1, seeds=1)
    text = write_summary(tmp_path, frame, "test", get_protocol("default"), reps=REPS)
    assert "**One seed**" in text and text.count("| 1 |") == 1 and "| 2 |" in text
    assert "Against infadapter" not in text
    assert "| 1 of 1 | 0.05 |" in text  # one beta: each front is its one point


def test_an_agent_with_one_complete_seed_is_tied_with_everyone(tmp_path):
    frame = synthetic(agents=3, betas=(0.05,), scenarios=2, seeds=3)
    frame = frame[(frame["agent"] != "agent1") | (frame["seed"] == 0)]  # agent1: seed 0 only
    text = write_summary(tmp_path, frame, "test", get_protocol("default"), reps=REPS)
    assert "| 1-3 | agent1 |" in text and "One complete seed only for agent1: a point interval" in text
    assert "**One seed**" not in text


def test_without_infadapter_there_is_no_probability_of_improvement(tmp_path):
    frame = synthetic(agents=3, betas=(0.05,), scenarios=2, seeds=2)
    text = write_summary(tmp_path, frame[frame["agent"] != "infadapter"], "test", get_protocol("default"), reps=REPS)
    assert "P(> infadapter) [95 % CI]" not in text and "No probability of improvement" in text


def test_figures_are_drawn_for_big_and_tiny_sweeps(tmp_path):
    for name, frame in [("big", synthetic()), ("tiny", synthetic(agents=1, betas=(0.05,), scenarios=1, seeds=1))]:
        assert performance_profile(frame, tmp_path / f"profile_{name}.png", reps=REPS).stat().st_size > 10_000
        assert pareto_figure(frame, tmp_path / f"pareto_{name}.png").stat().st_size > 10_000


def test_a_sweep_with_many_seeds_and_scenarios_is_summarised_quickly(tmp_path):
    frame = synthetic(agents=8, betas=(0.02, 0.1), scenarios=31, seeds=5)
    start = time.perf_counter()
    write_summary(tmp_path, frame, "test", get_protocol("default"))  # the default 2000 resamples
    assert time.perf_counter() - start < 30  # about 2 s here; a full sweep (16 agents, 5 betas) about 6 s


def test_the_leaderboard_command_draws_the_profile_and_the_fronts(tmp_path):
    from infadapter_scripts import leaderboard

    args = [
        "--agents",
        "infadapter",
        "static-over",
        "--seeds",
        "0",
        "--scenarios",
        "paper",
        "--betas",
        "0.05",
        "--backend",
        "serial",
    ]
    assert leaderboard.main([*args, "--timeline-agent", "none", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "performance_profile.png").stat().st_size > 10_000
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    text = (tmp_path / "summary.md").read_text()
    assert "**One seed**" in text and "| infadapter | 1 of 1 | 0.05 |" in text
