"""The leaderboard's aggregates (rliable: IQM, stratified-bootstrap CIs, probability of improvement,
performance profiles), its Pareto fronts and hypervolumes, and what summary.md and the figures make
of them; answers checked by hand or against rliable's and scipy's own functions."""

from __future__ import annotations

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
    beta_aggregates,
    difference_intervals,
    improvement_intervals,
    iqm,
    iqm_intervals,
    iqm_per_agent,
    normaliser_of,
    performance_profiles,
    probability_of_improvement,
    rank_ranges,
    rliable_version,
    score_distribution,
    score_set,
    window_bootstrap,
    with_scores,
)
from infadapter_env.leaderboard.episode import COLUMNS, METRIC_COLUMNS, TIMING_COLUMNS
from infadapter_env.leaderboard.figures import pareto_figure, performance_profile
from infadapter_env.leaderboard.pareto import budget_of, non_dominated, pareto_fronts
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


# --- scores, attainment and the window bootstrap on toys (3 windows x 2 seeds) ---------------------------


def toy(values: dict[str, list[list[float]]], beta: float = 0.05, **columns: dict[str, list[list[float]]]):
    """Rows of agents whose ``objective`` (and other ``columns``) at [seed][window] are given."""
    rows = []
    for agent, grid in values.items():
        for seed, per_window in enumerate(grid):
            for w, objective in enumerate(per_window):
                extra = {c: float(v[agent][seed][w]) for c, v in columns.items() if agent in v}
                rows.append(row(agent, beta, f"w{w}", seed, objective=objective, **extra))
    return to_frame(rows)


def test_scores_are_the_objective_over_the_oracles_on_the_same_episode():
    frame = toy(
        {"oracle": [[0.8, 0.5, 0.4], [0.8, 0.5, 0.0]], "a": [[0.4, 0.5, 0.6], [0.2, -0.1, 0.3]]},
        slo_violation_pct={"oracle": [[0, 0, 0], [0, 0, 0]], "a": [[0.5, 1.0, 1.01], [3, 0, 0]]},
    )
    scored = with_scores(frame).set_index(["agent", "seed", "scenario"])
    assert scored.loc[("a", 0, "w0"), "score"] == 0.5 and scored.loc[("a", 0, "w2"), "score"] == pytest.approx(1.5)
    assert scored.loc[("a", 1, "w1"), "score"] == pytest.approx(-0.2)
    assert math.isnan(scored.loc[("a", 1, "w2"), "score"])  # the oracle's objective is not above the floor
    assert scored.loc[("oracle", 0, "w1"), "score"] == 1.0
    assert scored.sort_index().loc["a", "episode_slo_met"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # <= 1 % late
    assert scored.loc[("a", 0, "w0"), "objective"] == 0.4  # the raw objective stays
    raw = with_scores(frame[frame["agent"] == "a"])  # no oracle: the raw objective
    assert raw["score"].tolist() == raw["objective"].tolist() and normaliser_of(raw) is None
    sets = score_set(with_scores(frame), 0.05)
    assert sets.seeds == (0,) and sets.left_out_seeds == (1,)  # seed 1 lacks a score on w2
    np.testing.assert_allclose(sets.matrices["a"], [[0.5, 1.0, 1.5]])


def test_the_window_bootstrap_is_rliables_task_bootstrap():
    """The same numbers as rliable's ``get_interval_estimates(task_bootstrap=True)`` seeded alike."""
    rng = np.random.default_rng(8)
    stacked = rng.normal(size=(2, 3, 2))  # 2 seeds x 3 windows x 2 agents
    point, low, high = window_bootstrap(stacked, iqm_per_agent, reps=REPS, seed=11)
    np.random.seed(11)
    points, intervals = rly.get_interval_estimates({"x": stacked}, iqm_per_agent, task_bootstrap=True, reps=REPS)
    np.testing.assert_array_equal(point, points["x"])
    np.testing.assert_array_equal(np.minimum(intervals["x"][0], point), low)
    np.testing.assert_array_equal(np.maximum(intervals["x"][1], point), high)
    for k in range(2):
        assert point[k] == pytest.approx(metrics.aggregate_iqm(stacked[..., k]))


def test_resampling_windows_widens_what_seeds_alone_cannot():
    """Deterministic agents (the same score at every seed) on windows of different difficulty: a
    bootstrap over seeds alone would give a point; over windows the interval spans the windows."""
    grid = [[0.6, 0.8, 1.0], [0.6, 0.8, 1.0]]
    sets = score_set(with_scores(toy({"a": grid, "b": [[x - 0.1 for x in g] for g in grid]})), 0.05)
    out = iqm_intervals(sets, reps=REPS)
    assert out["a"].point == pytest.approx(0.8)  # the IQM of 0.6, 0.6, 0.8, 0.8, 1.0, 1.0
    assert out["a"].low < 0.75 and out["a"].high > 0.85 and out["a"].low >= 0.6 and out["a"].high <= 1.0
    # The IQM intervals overlap, yet b is 0.1 below a on every window: paired, the difference is exact.
    assert out["b"].high > out["a"].low
    differences = difference_intervals(sets, reps=REPS)
    assert differences[("a", "b")].point == pytest.approx(0.1)
    assert differences[("a", "b")].low == pytest.approx(0.1) and differences[("a", "b")].high == pytest.approx(0.1)
    assert differences[("b", "a")].point == pytest.approx(-0.1) and differences[("b", "a")].excludes_zero()
    assert rank_ranges(["a", "b"], differences) == {"a": (1, 1), "b": (2, 2)}
    improvement = improvement_intervals(sets, reference="a", reps=REPS)
    assert improvement == {"b": Interval(0.0, 0.0, 0.0)}
    assert improvement_intervals(sets, reference="absent", reps=REPS) == {}


def test_identical_agents_are_not_separated_and_ranks_follow_the_differences():
    rng = np.random.default_rng(9)
    grid = rng.normal(size=(2, 3)).tolist()
    sets = score_set(with_scores(toy({"a": grid, "b": grid, "c": [[x - 5 for x in g] for g in grid]})), 0.05)
    differences = difference_intervals(sets, reps=REPS)
    # rliable resamples each agent's seeds on its own: identical agents differ within a resample.
    assert differences[("a", "b")].point == 0.0 and not differences[("a", "b")].excludes_zero()
    assert rank_ranges(["a", "b", "c"], differences) == {"a": (1, 2), "b": (1, 2), "c": (3, 3)}
    assert improvement_intervals(sets, reference="a", reps=REPS)["b"].point == 0.5


def test_attainment_means_by_hand_and_the_ranking_rule():
    """``c`` scores highest but meets the P99 SLO in 90 % of intervals (below the 95 % tolerance): it
    ranks after ``a`` and ``b``, which meet it."""
    scores = {"a": [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], "b": [[0.9] * 3, [0.9] * 3], "c": [[2.0] * 3, [2.0] * 3]}
    shares = {"a": [[100, 100, 90], [100, 100, 100]], "b": [[96] * 3, [96] * 3], "c": [[90] * 3, [90] * 3]}
    late = {"a": [[0, 0, 5], [0, 0, 0]], "b": [[0] * 3, [0] * 3], "c": [[2] * 3, [0.5] * 3]}
    frame = toy(scores, intervals_slo_met_pct=shares, slo_violation_pct=late)
    aggregates = beta_aggregates(frame, 0.05, reference="a", reps=REPS)
    assert aggregates.intervals_met["a"].point == pytest.approx(590 / 600)
    assert aggregates.episodes_met["a"].point == pytest.approx(5 / 6)
    assert aggregates.episodes_met["c"].point == pytest.approx(0.5)
    assert aggregates.meets == ("a", "b") and aggregates.misses == ("c",)
    assert aggregates.order == ["a", "b", "c"]
    assert aggregates.ranks == {"a": (1, 1), "b": (2, 2), "c": (3, 3)}
    assert aggregates.versus_reference("c").point == pytest.approx(1.0)  # better score, ranked last
    assert aggregates.normaliser is None  # no oracle: raw objectives


def test_performance_profiles_bands_contain_the_profile():
    rng = np.random.default_rng(6)
    grid = {"a": rng.normal(size=(5, 6)).tolist(), "b": (rng.normal(size=(5, 6)) + 1).tolist()}
    sets = score_set(with_scores(toy(grid)), 0.05)
    taus = np.linspace(-3, 4, 15)
    for agent, (profile, low, high) in performance_profiles(sets, taus, reps=REPS).items():
        np.testing.assert_allclose(profile, score_distribution(sets.matrices[agent], taus))
        assert np.all(low <= profile) and np.all(profile <= high)
        assert profile[0] == 1.0 and profile[-1] == 0.0


def test_score_set_keeps_what_every_agent_played():
    rows = [row(a, 0.1, s, seed, objective=1.0) for a in ("x", "y") for s in ("p", "q") for seed in (0, 1)]
    rows.append(row("x", 0.1, "r", 0, objective=1.0))  # only x played r
    rows = [r for r in rows if not (r["agent"] == "y" and r["scenario"] == "q" and r["seed"] == 1)]
    rows.append(row("z", 0.1, "p", 0, objective=1.0))  # z never played q
    scores = score_set(with_scores(to_frame(rows)), 0.1)
    assert scores.scenarios == ("p",) and scores.left_out_scenarios == ("q", "r")
    assert scores.seeds == (0,) and scores.left_out_seeds == (1,)  # z has seed 0 only
    two = score_set(with_scores(to_frame([r for r in rows if r["agent"] != "z"])), 0.1)
    assert two.scenarios == ("p", "q") and two.seeds == (0,)  # y's seed 1 misses q
    assert two.matrices["x"].shape == (1, 2) and two.stacked().shape == (1, 2, 2)


# --- Pareto fronts ---------------------------------------------------------------------------------------


def test_non_dominated_points():
    points = np.array([[1, 1, 1], [2, 0, 1], [0.5, 0.5, 0.5], [1, 1, 1], [1, 1, 0.9], [0, 0, 2]])
    assert non_dominated(points).tolist() == [True, True, False, True, False, True]


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
    rows.append(row("b", 0.05, "p", 0, aa_effective=0.5, mean_cores=20.0, slo_violation_pct=50.0))
    frame = to_frame(rows)
    assert budget_of(frame) == 20
    a, b = pareto_fronts(frame)
    assert a.agent == "a" and a.front_betas == [0.01, 0.05]
    assert b.front_betas == [0.05]


# --- summary.md and the figures ---------------------------------------------------------------------------


def test_summary_shows_scores_attainment_ranks_pareto_and_how(tmp_path):
    frame = synthetic()
    text = write_summary(tmp_path, frame, "test", get_protocol("default"), reps=REPS)
    assert text == (tmp_path / "summary.md").read_text()
    assert f"rliable {rliable_version()}" in text and f"{REPS} resamples, seed {BOOTSTRAP_SEED}" in text
    assert "`task_bootstrap=True`" in text and "Ranking rule: the agents that meet the SLO first" in text
    header = "| rank | agent | SLO met: intervals % [95 % CI] | episodes % [95 % CI] | IQM score [95 % CI] | "
    assert header + "IQM - infadapter [95 % CI] | P(> infadapter) [95 % CI] | objective |" in text
    assert "Score: the raw objective (no normaliser's rows" in text  # the synthetic sweep has no oracle
    assert "## Pareto fronts over the beta sweep" in text and "| agent | points on the front |" in text
    assert "hypervolume |" not in text
    for beta in (0.02, 0.1):
        aggregates = beta_aggregates(frame, beta, reps=REPS)
        best = aggregates.order[0]
        cell = f"{aggregates.iqm[best].point:.4f} [{aggregates.iqm[best].low:.4f}, {aggregates.iqm[best].high:.4f}]"
        low, high = aggregates.ranks[best]
        assert f"| {low if low == high else f'{low}-{high}'} | {best} | " in text and cell in text
    assert "Against infadapter (paired IQM differences): above: none;" in text  # the best by construction


def test_summary_separates_only_where_paired_differences_do(tmp_path):
    rows = []
    for seed in range(5):
        for s, hard in (("p", 0.0), ("q", 0.2), ("r", 0.4)):
            spread = 0.001 * (seed - 2)
            rows.append(row("infadapter", 0.05, s, seed, objective=0.5 - hard + spread))
            rows.append(row("twin", 0.05, s, seed, objective=0.5 - hard - spread))  # the same scores, other seeds
            rows.append(row("close", 0.05, s, seed, objective=0.49 - hard + spread))  # 0.01 below on every window
    text = write_summary(tmp_path, to_frame(rows), "test", get_protocol("default"), reps=REPS)
    assert "| 1-2 | infadapter |" in text and "| 1-2 | twin |" in text and "| 3 | close |" in text
    assert "above: none; not separated: twin; below: close." in text


def test_an_agent_that_misses_the_slo_ranks_after_those_that_meet_it(tmp_path):
    rows = []
    for seed in range(2):
        for s in ("p", "q", "r"):
            rows.append(row("infadapter", 0.05, s, seed, objective=0.7, intervals_slo_met_pct=99.0))
            rows.append(row("oracle", 0.05, s, seed, objective=0.72, intervals_slo_met_pct=100.0))
            rows.append(row("greedy", 0.05, s, seed, objective=0.75, intervals_slo_met_pct=80.0, slo_violation_pct=4))
    text = write_summary(tmp_path, to_frame(rows), "test", get_protocol("default"), reps=REPS)
    assert text.index("| 1 | oracle |") < text.index("| 2 | infadapter |") < text.index("| 3 | greedy |")
    assert "Meet the SLO (interval attainment at least 95 %): oracle, infadapter; below it" in text
    assert "Score: each episode's objective over `oracle`'s" in text
    assert "| 1 | oracle | 100.00 [100.00, 100.00] | 100 [100, 100] | 1.0000 [1.0000, 1.0000] |" in text


def test_summary_with_one_scenario_says_the_intervals_are_over_seeds_only(tmp_path):
    frame = synthetic(agents=2, betas=(0.05,), scenarios=1, seeds=3)
    text = write_summary(tmp_path, frame, "test", get_protocol("default"), reps=REPS)
    assert "one scenario: only the seeds are resampled" in text
    assert "| 1 of 1 | 0.05 |" in text  # one beta: each front is its one point


def test_an_agent_with_one_complete_seed_limits_the_common_seeds(tmp_path):
    frame = synthetic(agents=3, betas=(0.05,), scenarios=2, seeds=3)
    frame = frame[(frame["agent"] != "agent1") | (frame["seed"] == 0)]  # agent1: seed 0 only
    text = write_summary(tmp_path, frame, "test", get_protocol("default"), reps=REPS)
    assert "Seeds left out of the aggregates (some agent lacks a scenario at them): 1, 2." in text


def test_without_infadapter_there_is_no_comparison_with_it(tmp_path):
    frame = synthetic(agents=3, betas=(0.05,), scenarios=2, seeds=2)
    text = write_summary(tmp_path, frame[frame["agent"] != "infadapter"], "test", get_protocol("default"), reps=REPS)
    assert "P(> infadapter) [95 % CI]" not in text and "No comparison with `infadapter`" in text


def test_figures_are_drawn_for_big_and_tiny_sweeps(tmp_path):
    for name, frame in [("big", synthetic()), ("tiny", synthetic(agents=1, betas=(0.05,), scenarios=1, seeds=1))]:
        assert performance_profile(frame, tmp_path / f"profile_{name}.png", reps=REPS).stat().st_size > 10_000
        assert pareto_figure(frame, tmp_path / f"pareto_{name}.png").stat().st_size > 10_000


def test_a_sweep_with_many_seeds_and_scenarios_is_summarised_quickly(tmp_path):
    frame = synthetic(agents=8, betas=(0.02, 0.1), scenarios=31, seeds=5)
    start = time.perf_counter()
    write_summary(tmp_path, frame, "test", get_protocol("default"))  # the default 2000 resamples
    assert time.perf_counter() - start < 60  # about 5 s here; a full sweep (17 agents, 5 betas) about 17 s


def test_the_leaderboard_command_draws_the_profile_and_the_fronts(tmp_path):
    from infadapter_scripts import leaderboard

    args = [
        "--agents",
        "infadapter",
        "static-over",
        "--seeds",
        "0",
        "--scenarios",
        "test1",
        "--betas",
        "0.05",
        "--backend",
        "serial",
    ]
    assert leaderboard.main([*args, "--timeline-agent", "none", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "performance_profile.png").stat().st_size > 10_000
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    text = (tmp_path / "summary.md").read_text()
    assert "one scenario: only the seeds are resampled" in text and "| infadapter | 1 of 1 | 0.05 |" in text
