"""The exact FIFO queue kernels against closed-form queueing results and against simpy."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from infadapter_env.sim.queueing import (
    erlang_c,
    fifo_finish_times,
    fifo_sojourn_batch,
    mm1_sojourn_tail,
    mmc_sojourn_tail,
    mmc_wait_tail,
)

N_REQUESTS = 1_000_000


def poisson_queue(rate: float, service_rate: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1 / rate, n)), rng.exponential(1 / service_rate, n)


def test_mm1_sojourn_tail_and_mean_within_one_percent():
    rate, service_rate = 0.5, 1.0
    arrival, service = poisson_queue(rate, service_rate, N_REQUESTS, seed=1)
    sojourn = np.array(fifo_finish_times(arrival.tolist(), service.tolist(), 1)) - arrival
    assert sojourn.mean() == pytest.approx(1 / (service_rate - rate), rel=0.01)
    for t in (0.5, 1.0, 2.0, 4.0):  # P = 0.78 .. 0.14
        assert (sojourn > t).mean() == pytest.approx(mm1_sojourn_tail(t, rate, service_rate), rel=0.01)


def test_mmc_erlang_c_and_waiting_tails_within_one_percent():
    rate, service_rate, servers = 3.0, 1.0, 4
    arrival, service = poisson_queue(rate, service_rate, N_REQUESTS, seed=2)
    finish = np.array(fifo_finish_times(arrival.tolist(), service.tolist(), servers))
    wait = finish - service - arrival
    sojourn = finish - arrival
    assert (wait > 1e-12).mean() == pytest.approx(erlang_c(servers, rate / service_rate), rel=0.01)
    for t in (0.25, 0.5, 1.0):
        assert (wait > t).mean() == pytest.approx(mmc_wait_tail(t, rate, service_rate, servers), rel=0.01)
    for t in (0.5, 1.0, 2.0, 3.0):
        assert (sojourn > t).mean() == pytest.approx(mmc_sojourn_tail(t, rate, service_rate, servers), rel=0.01)


def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # textbook: c = 2, a = 1
    with pytest.raises(ValueError, match="offered load"):
        erlang_c(2, 2.0)


def test_batched_kernel_equals_the_heap_kernel():
    rng = np.random.default_rng(3)
    arrival = np.cumsum(rng.exponential(0.1, (6, 3000)), axis=1)
    service = rng.gamma(2.0, 0.15, (6, 3000))
    workers = np.array([1, 2, 3, 4, 5, 6])
    batch = fifo_sojourn_batch(arrival, service, workers)
    for row, k in enumerate(workers):
        heap = np.array(fifo_finish_times(arrival[row].tolist(), service[row].tolist(), int(k))) - arrival[row]
        np.testing.assert_allclose(batch[row], heap, rtol=1e-12, atol=1e-12)


def simpy_sojourns(arrival: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """The same queue written with simpy's Resource (FIFO requests)."""
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=servers)
    out = np.zeros(arrival.size)

    def request(i: int):
        yield env.timeout(arrival[i])
        with workers.request() as slot:
            yield slot
            yield env.timeout(service[i])
        out[i] = env.now - arrival[i]

    for i in range(arrival.size):
        env.process(request(i))
    env.run()
    return out


@pytest.mark.parametrize("servers", [1, 3])
def test_heap_kernel_agrees_with_simpy(servers):
    rng = np.random.default_rng(4)
    arrival = np.cumsum(rng.exponential(0.4, 2000))
    service = rng.gamma(4.0, 0.25 * servers / 4, 2000)
    ours = np.array(fifo_finish_times(arrival.tolist(), service.tolist(), servers)) - arrival
    np.testing.assert_allclose(ours, simpy_sojourns(arrival, service, servers), rtol=1e-9, atol=1e-9)


def test_request_level_simulator_is_an_exact_mmc_queue():
    """The request-level simulator itself, end to end: Poisson counts per second with uniform times
    inside each second make a Poisson process; one ResNet50 replica with 4 workers and exponential
    service (CV 1, mean 100 ms) is an M/M/4 queue. 10^6 requests."""
    from dataclasses import replace

    from infadapter_env.sim.request import RequestSimulator
    from infadapter_env.world.profiles import load_profile, shipped_world

    rate, service_rate, workers, cores = 30.0, 10.0, 4, 4
    shipped = shipped_world().service_model
    mean = shipped.mean_service_s.copy()
    cv = shipped.service_cv.copy()
    mean[2, cores], cv[2, cores] = 1 / service_rate, 1.0
    service = replace(shipped, mean_service_s=mean, service_cv=cv)
    assert service.workers[2, cores] == workers
    rng = np.random.default_rng(11)
    seconds = int(N_REQUESTS / rate)
    counts = rng.poisson(rate, seconds).astype(float)
    engine = RequestSimulator(load_profile(750, "measured"), service, "proportional", 1e9, "poisson", rng)
    engine.start_episode(counts, [(0, 0), (0, 0), (1, cores), (0, 0), (0, 0)])
    latencies = []
    interval = 1000
    for start in range(0, seconds - interval + 1, interval):
        records = engine.run_interval(start, interval, [(0, 0), (0, 0), (1, cores), (0, 0), (0, 0)], [interval + 1] * 5)
        latencies.append(records.latency_s)
    sojourn = np.concatenate(latencies)
    assert sojourn.size > 0.99 * N_REQUESTS and not np.isnan(sojourn).any()
    for t in (0.05, 0.1, 0.2):  # P = 0.70 .. 0.20: where 10^6 correlated samples resolve 1 %
        expected = mmc_sojourn_tail(t, rate, service_rate, workers)
        assert (sojourn > t).mean() == pytest.approx(expected, rel=0.01)
