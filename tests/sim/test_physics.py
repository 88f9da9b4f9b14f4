"""Physics v1 with hand-reasoned answers: the fast model and the request-level reference.

Numbers used below (``profiles/``): ResNet50 on 8 cores serves 78 req/s within the 750 ms SLO
(its profiled capacity) and completes mu = 88.0 req/s when saturated (8 workers, 90.9 ms mean
service); its queue holds 1.25 x 78 = 97.5 waiting requests.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from infadapter_env.sim.fast import server_tables
from infadapter_env.sim.request import RequestSimulator
from infadapter_env.world.profiles import load_profile, shipped_world

RESNET50_8 = (0, 0, 8, 0, 0)
ACTION = np.array(RESNET50_8)


def episode(trace, simulator, seed=0, **kwargs):
    env = gym.make(
        "InfAdapter-v0", trace=np.asarray(trace, dtype=float), initial_cores=RESNET50_8, simulator=simulator, **kwargs
    )
    env.reset(seed=seed)
    infos = []
    for _ in range(env.unwrapped.n_steps):
        infos.append(env.step(ACTION)[4])
    return infos


def pct(infos, key):
    return 100 * sum(i[key] for i in infos) / sum(i["arrivals"] for i in infos)


def test_the_numbers_this_file_reasons_with():
    tables = server_tables(load_profile(750, "measured"))
    assert tables.capacity_rps[2, 8] == 78
    assert tables.service_rps[2, 8] == pytest.approx(88.0, abs=0.05)


def test_capacity_equal_to_the_load_after_a_small_backlog_is_not_mostly_late():
    # Two seconds at twice the load leave a queue; at 78 req/s the server (mu = 88.0) drains it in
    # about eight seconds. Afterwards only the latency tail at the SLO capacity is late (P99 = SLO by
    # definition of capacity: about 1 %). Under the v0 tick model 60 % of requests counted as late.
    trace = [156, 156] + [78] * 298
    fast, reference = episode(trace, "fast"), episode(trace, "request")
    assert pct(fast, "violated") < 6
    assert pct(fast, "violated") == pytest.approx(pct(reference, "violated"), abs=2)
    late_after_drain = sum(i["violated"] for i in fast[1:]) / sum(i["arrivals"] for i in fast[1:])
    assert late_after_drain < 0.02


def test_a_ten_percent_sustained_overload():
    # 96.8 req/s into mu = 88.0: the queue grows by 8.8 req/s and is full (97.5) after ~11 s; from
    # then on every admitted request waits 97.5 / 88.0 = 1.11 s > 750 ms and 8.8 req/s of 96.8 are
    # dropped. Expected: ~98 % violations (all but the first ~6 s), ~9.1 % dropped.
    trace = [1.1 * 88.03] * 300
    for infos in (episode(trace, "fast"), episode(trace, "request")):
        assert 95 <= pct(infos, "violated") <= 100
        assert pct(infos, "dropped") == pytest.approx(9.1, abs=1.0)
        assert infos[-1]["latency_p99_ms"] > 1000


def test_request_level_accounting_and_seeding():
    trace = [60.4] * 120
    infos = episode(trace, "request", seed=3)
    again = episode(trace, "request", seed=3)
    other = episode(trace, "request", seed=4)
    assert [i["latency_p99_ms"] for i in infos] == [i["latency_p99_ms"] for i in again]
    assert [i["latency_p99_ms"] for i in infos] != [i["latency_p99_ms"] for i in other]
    assert sum(i["arrivals"] for i in infos) == round(60.4 * 120)  # whole requests, total kept
    for info in infos:  # every request is served (in or over the SLO) or dropped
        served = sum(info["served_in_slo_by_variant"]) + info["over_slo"]
        assert served + info["dropped"] == info["arrivals"]


def test_a_new_variant_serves_nothing_until_it_is_loaded():
    # Empty start, ResNet50 deployed at t = 0: it loads for 6.82 s and serves from second 7.
    env = gym.make("InfAdapter-v0", trace=np.full(60, 40.0), simulator="request")
    env.reset(seed=0)
    info = env.step(ACTION)[4]
    assert info["dropped"] == 7 * 40
    fast = gym.make("InfAdapter-v0", trace=np.full(60, 40.0))
    fast.reset(seed=0)
    assert fast.step(ACTION)[4]["dropped"] == pytest.approx(7 * 40)


@pytest.mark.parametrize("simulator", ["fast", "request"])
def test_a_variant_removed_with_nothing_starting_stops_at_once(simulator):
    """Make before break with nothing to make: the removed variant serves nothing from the
    decision on and its requests go to the variants left. (The fast model once kept a removed
    variant serving, and uncosted, for as no queue formed.)"""
    env = gym.make("InfAdapter-v0", trace=np.full(120, 20.0), initial_cores=(12, 0, 0, 0, 8), simulator=simulator)
    env.reset(seed=0)
    before = env.step(np.array([12, 0, 0, 0, 8]))[4]
    assert before["served_in_slo_by_variant"][4] > 0.9 * 30 * 20  # ResNet152 (27 req/s) takes nearly everything
    after = env.step(np.array([12, 0, 0, 0, 0]))[4]
    assert after["served_in_slo_by_variant"][4] == 0
    assert after["utilisation"][4] == 0
    assert after["served_in_slo_by_variant"][0] > 0.9 * 30 * 20  # ResNet18 took over
    assert after["cores"] == 12


def test_the_fast_simulator_refuses_input_its_tables_cannot_read():
    """The compiled interval does not bounds-check its reads: it checks what would lead it out."""
    from infadapter_env.sim.cluster import loaded_state
    from infadapter_env.sim.fast import simulate_interval

    tables = server_tables(load_profile(750, "measured", 2))
    state = loaded_state(np.array([[0, 0, 1, 0, 0]]), np.array([[0, 0, 8, 0, 0]]))
    with pytest.raises(ValueError, match="per_tick holds a count that is negative, infinite or NaN"):
        simulate_interval(state, np.array([[10.0, np.nan, 10.0]]), tables)
    too_many = loaded_state(np.array([[0, 0, 1, 0, 0]]), np.array([[0, 0, 25, 0, 0]]))
    with pytest.raises(ValueError, match="cores are outside the profile"):
        simulate_interval(too_many, np.full((1, 3), 10.0), tables)
    narrow = loaded_state(np.array([[0, 0, 1, 0, 0]], dtype=np.int32), np.array([[0, 0, 8, 0, 0]], dtype=np.int32))
    with pytest.raises(TypeError, match="must be int64 arrays"):
        simulate_interval(narrow, np.full((1, 3), 10.0), tables)
    loading = loaded_state(np.array([[0, 0, 1, 0, 0]]), np.array([[0, 0, 8, 0, 0]]))
    loading.loading_left_s[0, 2] = np.nan
    with pytest.raises(ValueError, match="loading_left_s holds NaN"):
        simulate_interval(loading, np.full((1, 3), 10.0), tables)


def test_the_histogram_edges_give_the_bins_the_log_gives():
    """The interval kernel finds a waited latency atom's bin by walking ``bin_edges`` instead of
    taking a log per atom: for any latency, the edges must say what ``latency_bin`` says."""
    from infadapter_env.sim import fast_kernels as k

    edges = server_tables(load_profile(750, "measured", 2)).bin_edges
    rng = np.random.default_rng(3)
    latencies = np.concatenate([10 ** rng.uniform(-4, 3, 200_000), edges[1:-1], np.nextafter(edges[1:-1], 0)])
    by_log = k.atom_bins(latencies[None, :], k.BIN_LOW_S, k.BIN_SCALE, k.N_BINS)[0]
    by_edges = np.searchsorted(edges, latencies, side="right") - 1
    np.testing.assert_array_equal(by_edges, by_log)


def test_quota_dispatcher_is_the_original_interleaved_weighted_round_robin():
    profile = load_profile(750, "measured")
    engine = RequestSimulator(
        profile, shipped_world().service_model, "quota", 1.25, "uniform", np.random.default_rng(0)
    )
    engine.start_episode(np.zeros(1), [(0, 0), (0, 0), (1, 3), (0, 0), (1, 2)])  # capacities 30 and 5
    engine.serving = [(0, 0), (0, 0), (1, 3), (0, 0), (1, 2)]
    quotas = [round(engine._capacity(v)) for v in range(5)]
    assert quotas == [0, 0, 30, 0, 5]
    picks = [engine._next_quota() for _ in range(35 * 3)]
    # Rounds 1..5 visit both variants, rounds 6..30 only ResNet50: 2, 4 five times, then 2 x 25.
    assert picks[:35] == [2, 4] * 5 + [2] * 25
    assert picks.count(2) == 90 and picks.count(4) == 15


def test_observation_and_info_carry_latency():
    env = gym.make("InfAdapter-v0", trace=np.full(90, 60.0), initial_cores=RESNET50_8)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(ACTION)
    from infadapter_env.core.observation import observation_layout

    layout = observation_layout()

    p99 = info["latency_p99_ms_by_variant"]
    assert p99[2] > 0 and p99[0] == 0
    np.testing.assert_allclose(obs[layout.P99_OVER_SLO], np.array(p99) / 750, rtol=1e-6)
    assert 0 < info["latency_p50_ms"] < info["latency_p99_ms"] < 750


@pytest.mark.parametrize("arrivals", ["uniform", "poisson", "loadgen"])
def test_request_level_env_passes_the_gymnasium_checker(arrivals):
    from gymnasium.utils.env_checker import check_env

    env = gym.make("InfAdapter-v0", simulator="request", arrivals=arrivals, dispatcher="quota")
    check_env(env.unwrapped, skip_render_check=True)


def test_vector_env_refuses_the_request_level_simulator():
    with pytest.raises(ValueError, match="fast simulator only"):
        gym.make_vec("InfAdapter-v0", num_envs=2, vectorization_mode="vector_entry_point", simulator="request")


def test_a_load_ending_with_the_interval_serves_from_the_next_one_on():
    # interval 7 s = ceil(6.82 s), ResNet50's load: the first deployment serves the whole second
    # interval even though the next decision already changes it again.
    actions = [[0, 0, 8, 0, 0], [0, 0, 12, 0, 0], [0, 0, 12, 0, 0]]
    for simulator in ("fast", "request"):
        env = gym.make("InfAdapter-v0", trace=np.full(21, 40.0), interval_s=7, simulator=simulator)
        env.reset(seed=0)
        infos = [env.step(np.array(a))[4] for a in actions]
        assert [i["dropped"] for i in infos] == pytest.approx([280, 0, 0])


def test_busy_fraction_counts_the_seconds_a_server_served():
    # ResNet50 (8 cores, mu 88.0) serves 40 req/s until ResNet152 has loaded (9 s), then stops.
    for simulator in ("fast", "request"):
        env = gym.make("InfAdapter-v0", trace=np.full(60, 40.0), initial_cores=RESNET50_8, simulator=simulator)
        env.reset(seed=0)
        info = env.step(np.array([0, 0, 0, 0, 12]))[4]
        assert info["utilisation"][2] == pytest.approx(40 / 88.0, abs=0.05)


def test_requests_moved_at_a_switch_respect_the_new_queue_bound():
    # 100 req/s on ResNet50 at 8 cores (mu 88.0) fills its queue; at 2 cores its bound is 21.25.
    env = gym.make("InfAdapter-v0", trace=np.full(90, 100.0), initial_cores=RESNET50_8, simulator="request")
    env.reset(seed=0)
    for action in ([0, 0, 8, 0, 0], [0, 0, 2, 0, 0]):
        info = env.step(np.array(action))[4]
    assert info["backlog"][2] <= 22  # a request joins while fewer than 21.25 wait


def test_a_free_worker_serves_even_without_a_queue():
    env = gym.make(
        "InfAdapter-v0", trace=np.full(60, 40.0), initial_cores=RESNET50_8, simulator="request", queue_factor=0.0
    )
    env.reset(seed=0)
    infos = [env.step(ACTION)[4] for _ in range(2)]
    assert sum(i["dropped"] for i in infos) < 0.05 * 2400  # only arrivals finding all 8 workers busy


def test_an_interval_result_packs_named_fields():
    """The request-level and live simulators pack their results as the fast model returns its own."""
    from infadapter_env.sim.cluster import IntervalResult

    per_env = {name: np.array([float(i)]) for i, name in enumerate(IntervalResult.ENV_FIELDS)}
    per_variant = {name: np.full((1, 5), 10.0 + i) for i, name in enumerate(IntervalResult.VARIANT_FIELDS)}
    result = IntervalResult.of(**per_env, **per_variant)
    assert result.by_env.shape == (7, 1) and result.by_variant.shape == (5, 1, 5)
    for name, value in (per_env | per_variant).items():
        np.testing.assert_array_equal(getattr(result, name), value)
    with pytest.raises(TypeError, match=r"IntervalResult\.of needs exactly"):
        IntervalResult.of(**per_env)


def test_the_kernels_refuse_output_arrays_of_the_wrong_shape():
    from infadapter_env.core import pipeline_kernels
    from infadapter_env.sim import fast_kernels as fast_sim_kernels
    from infadapter_env.sim.cluster import empty_state, no_quotas

    tables = server_tables(load_profile(750, "measured"))
    state, quotas = empty_state(1, 5), no_quotas(1, 5)
    args = (tuple(state), np.full((1, 30), 10.0), (0, 1.25, 0, quotas.current, quotas.planned), *tables.kernel_tables)
    outputs = [np.empty((2, 1, 5), dtype=np.int64), np.empty((3, 1, 5)), np.empty((5, 1, 5)), np.empty((7, 1))]
    fast_sim_kernels.interval(*args, tuple(outputs))
    assert outputs[3][0, 0] == 300  # arrivals
    outputs[2] = np.empty((5, 1, 4))
    with pytest.raises(ValueError, match="an output array has the wrong shape"):
        fast_sim_kernels.interval(*args, tuple(outputs))
    values = np.zeros((1, 5), dtype=np.int64)
    with pytest.raises(ValueError, match="decode: an output array has the wrong shape"):
        pipeline_kernels.decode(
            values,
            0,
            np.zeros((1, 5), dtype=np.int64),
            5,
            2,
            np.array([20]),
            1,
            values,
            values,
            np.empty((2, 1, 5), dtype=np.int64),
            np.empty((3, 2), dtype=np.int8),
        )


@pytest.mark.parametrize("simulator", ["fast", "request"])
def test_server_speed_scales_what_a_saturated_server_completes(simulator):
    # 150 req/s on ResNet50 at 8 cores (mu = 88.0 req/s): saturated at every speed here, so what it
    # completes (arrivals less drops, once the queue is full) is the service rate times the speed.
    completed = {}
    for speed in (0.85, 1.0, 1.15):
        infos = episode([150.0] * 600, simulator, server_speed=speed)[4:]  # the queue full after 2 min
        arrivals = sum(i["arrivals"] for i in infos)
        completed[speed] = (arrivals - sum(i["dropped"] for i in infos)) / (30 * len(infos))
    assert completed[1.0] == pytest.approx(88.0, rel=0.03)
    assert completed[0.85] == pytest.approx(0.85 * completed[1.0], rel=0.03)
    assert completed[1.15] == pytest.approx(1.15 * completed[1.0], rel=0.03)


def test_server_speed_divides_service_times_and_latencies_and_is_checked():
    world, fast = shipped_world(), shipped_world().at_speed(1.25)
    assert fast.server_speed == 1.25 and fast.at_speed(1.25) is fast and world.server_speed == 1.0
    assert np.allclose(fast.service_model.mean_service_s, world.service_model.mean_service_s / 1.25)
    assert np.allclose(fast.service_model.service_rps, world.service_model.service_rps * 1.25)
    assert np.allclose(fast.latency_table.quantile_s, world.latency_table.quantile_s / 1.25)
    assert gym.make("InfAdapter-v0", server_speed=0.9).unwrapped.settings.recorded()["server_speed"] == 0.9
    for bad in (0, -1, 5, float("nan")):
        with pytest.raises(ValueError, match="server_speed"):
            gym.make("InfAdapter-v0", server_speed=bad)
    with pytest.raises(ValueError, match="backend='live' serves with the real servers' own speed"):
        gym.make("InfAdapter-v0", backend="live", server_speed=0.9)


def test_replica_routing_is_a_recorded_setting_of_the_simulators_only():
    assert gym.make("InfAdapter-v0").unwrapped.settings.recorded()["replica_routing"] == "random"
    env = gym.make("InfAdapter-v0", replica_routing="round_robin", simulator="request")
    assert env.unwrapped.settings.recorded()["replica_routing"] == "round_robin"
    with pytest.raises(ValueError, match=r"replica_routing must be one of 'random', 'round_robin'; got 'least'"):
        gym.make("InfAdapter-v0", replica_routing="least")
    with pytest.raises(ValueError, match="backend='live' routes among a variant's replicas with Ray Serve's own"):
        gym.make("InfAdapter-v0", backend="live", replica_routing="round_robin")
