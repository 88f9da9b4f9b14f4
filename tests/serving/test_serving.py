"""Real serving: the models, the profiler's search, and a live profile on Ray Serve (a tiny model,
one core, short tests) that plugs into the env."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from infadapter_env.serving import profiler  # noqa: E402
from infadapter_env.serving.loadgen import LoadResult, poisson_times  # noqa: E402
from infadapter_env.serving.models import PUBLISHED_TOP1, model_spec, resnet  # noqa: E402


@pytest.mark.parametrize(
    ("name", "parameters"),
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032), ("resnet101", 44_549_160)],
)
def test_the_resnets_have_torchvisions_parameter_counts(name, parameters):
    """Written here (torchvision does not import beside this torch); the same layers as torchvision's."""
    model = resnet(name)
    assert sum(p.numel() for p in model.parameters()) == parameters
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_model_names_and_files_are_checked(tmp_path):
    assert model_spec("resnet50").arch == "50"  # as the paper's profile names it
    assert model_spec("resnet-tiny").input_side == 64
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        model_spec("resnet19")
    with pytest.raises(ValueError, match="no model file"):
        model_spec(f"mine={tmp_path / 'absent.pt'}")
    (tmp_path / "weights.csv").write_text("x\n")
    with pytest.raises(ValueError, match=r"is not a model file \(\.pt2, \.onnx, \.pt\)"):
        model_spec(f"mine={tmp_path / 'weights.csv'}")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.pt cannot be loaded: "):
        model_spec(f"junk={tmp_path / 'junk.pt'}").check_loads()  # before any server starts
    exported = tmp_path / "tiny.pt2"
    x = torch.randn(1, 3, 64, 64)
    torch.export.save(torch.export.export(resnet("resnet-tiny"), (x,)), str(exported))
    spec = model_spec(f"mine={exported}", input_side=64)
    assert spec.arch == "mine" and spec.load()(x).shape == (1, 1000)
    onnx_file = tmp_path / "tiny.onnx"
    model = resnet("resnet-tiny")
    torch.onnx.export(model, (x,), str(onnx_file))
    from_onnx = model_spec(str(onnx_file))
    assert (from_onnx.name, from_onnx.input_side) == ("tiny", 64)  # the side read from the file
    with torch.inference_mode():
        assert torch.allclose(from_onnx.load()(x), model(x), atol=1e-4)
    with pytest.raises(ValueError, match=r"--accuracy mine=0\.75"):
        profiler.accuracies([spec], {})
    assert profiler.accuracies([model_spec("resnet18")], {}) == {"resnet18": PUBLISHED_TOP1["resnet18"]}
    table = tmp_path / "accuracy.csv"
    table.write_text("model,top1_accuracy\nmine,0.81\n")
    assert profiler.accuracies([spec], profiler.read_accuracy_table(table)) == {"mine": 0.81}
    table.write_text("model,top1_accuracy\nmine,high\n")
    with pytest.raises(ValueError, match=r"accuracy\.csv, line 2: expected columns model,top1_accuracy"):
        profiler.read_accuracy_table(table)


def test_the_search_is_the_original_binary_search():
    """auto_tuner/experiments/capacity_experiment.py: between 0.3 and 1 (1.2 above 100 req/s) x the
    saturation throughput, the highest whole rate whose P99 is within the SLO."""
    tested = []

    def p99(rate):  # a server whose P99 passes 500 ms above 37 req/s
        tested.append(rate)
        return 100.0 + 11.0 * max(rate - 0, 0)

    assert profiler.search(p99, 50.0, 500) == (36, 496.0)
    assert min(tested) >= 15 and max(tested) <= 50
    assert profiler.search(lambda rate: 1e9, 50.0, 500) == (0, None)  # nothing meets it
    tested.clear()
    profiler.search(p99, 200.0, 500)
    assert max(tested) <= 240  # 1.2 x above 100 req/s


def test_the_profilers_p99_is_the_largest_2_s_window():
    sent = np.arange(0.0, 6.0, 0.01)
    latency = np.where(sent < 2.0, 100.0, 20.0)  # slow only in the first window
    result = LoadResult(sent, latency, np.ones(sent.size, dtype=bool), 6.0)
    # TF-Serving's buckets: 100 ms lies in (68.0, 122.4]; histogram_quantile interpolates inside it
    assert 100.0 < result.profiler_p99_ms() <= 122.5
    failed = LoadResult(sent, latency, sent > 0.1, 6.0)  # 1.7 % never answered
    assert failed.profiler_p99_ms() == float("inf")
    times = poisson_times(np.random.default_rng(0), 100.0, 50.0)
    assert times.max() < 50.0 and abs(times.size - 5000) < 300


@pytest.mark.slow
def test_a_profile_measured_on_ray_serve_plugs_into_the_env(tmp_path):
    """The live smoke test (about 40 s): a tiny ResNet on one core, short tests; then resuming
    measures nothing again; then the env plays in the calibrated world."""
    out = tmp_path / "world" / "profile.csv"
    command = [
        sys.executable,
        "-m",
        "infadapter_scripts.cli",
        "profile",
        "--models",
        "resnet-tiny",
        "--cores",
        "1",
        "--slo-ms",
        "500",
        "--accuracy",
        "resnet-tiny=0.5",
        "--p99-test-s",
        "2",
        "--saturation-test-s",
        "1",
        "--saturation-repeats",
        "1",
        "--saturation-rps-per-core",
        "12",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1
    row = rows[0]
    assert (row["ARCH"], row["CPU"], row["SLA"]) == ("resnet-tiny", "1", "500")
    assert 0 < float(row["capacity"]) <= float(row["saturation_tp"]) <= 2 * 12  # a burst of 12 req/s
    assert 0 < float(row["p99_latency"]) <= 500 and float(row["load_time_s"]) > 0
    for made in ("variants.csv", "profile.json", "service_model.csv", "latency_quantiles.npz"):
        assert (out.parent / made).is_file(), made

    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert list(csv.DictReader(out.open())) == rows  # nothing measured twice
    assert "Started Serve" not in again.stderr

    import gymnasium as gym

    env = gym.make("InfAdapter-v0", profile=str(out), slo_ms=500, min_cores=1, budget_cores=1, rate_multiplier=0.01)
    _, info = env.reset(seed=0)
    assert info["variants"] == ["resnet-tiny"]
    _, reward, *_ = env.step(np.array([1]))
    assert np.isfinite(reward)


class FakeServer:
    """A local HTTP server standing in for a model server: answers in ``service_s``, or fails
    (status 500) the first ``failures`` requests."""

    def __init__(self, failures: int, service_s: float = 0.005) -> None:
        import asyncio
        import threading

        from aiohttp import web

        from infadapter_env.serving.server import free_port

        self.failures, self.requests, self.port = failures, 0, free_port()
        self.removed: list[str] = []
        self.readiness_checks = 0

        async def answer(request):
            self.requests += 1
            await asyncio.sleep(service_s)
            return web.Response(status=500 if self.requests <= self.failures else 200, text="{}")

        app = web.Application()
        app.router.add_post("/{name}", answer)
        self.loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    # the ServeBackend methods measure() calls
    def deploy(self, name, spec, cpus):
        return 0.5, 0.1

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def wait_ready(self, name, deadline):
        self.readiness_checks += 1

    def remove(self, name):
        self.removed.append(name)


QUICK = profiler.Tests(
    slos_ms=(500,), p99_test_s=0.5, saturation_test_s=0.3, saturation_repeats=1, saturation_rps_per_core=20.0
)


def test_a_test_with_failed_requests_is_rerun_once_the_server_answers():
    server = FakeServer(failures=3)
    configuration = profiler.measure(profiler.Configuration(model_spec("resnet-tiny"), 1), server, QUICK, [0])
    assert server.readiness_checks == 1 and server.removed == ["resnet-tiny-1c"]
    (row,) = configuration.rows
    assert row["capacity"] > 0 and row["p99_latency"] != ""
    # a 5 ms server answers the whole 20 req/s burst: the profiler says the burst did not saturate it
    assert any("did not saturate the server" in note for note in configuration.notes)


def test_a_server_that_keeps_failing_stops_the_configuration_with_a_clear_error():
    server = FakeServer(failures=10**9)
    configuration = profiler.Configuration(model_spec("resnet-tiny"), 1)
    with pytest.raises(
        profiler.ServerFailure, match=r"resnet-tiny-1c: \d+ of \d+ requests failed twice in the saturation"
    ):
        profiler.measure(configuration, server, QUICK, [0])
    assert configuration.rows == [] and server.removed == ["resnet-tiny-1c"]  # nothing written, server removed


def tiny_world(folder):
    """A one-variant world of resnet-tiny on 1 core (capacities made up for a smoke test), calibrated."""
    from infadapter_scripts.cli import main as cli

    folder.mkdir(parents=True, exist_ok=True)
    profile = folder / "profile.csv"
    header = ",".join(profiler.COLUMNS)
    row = "1,cpu,1,0.5G,resnet-tiny,1,1,1000000,1,1,500,120,20,30,2026-11-29T00:00:00,5.0,0.5"
    profile.write_text(f"{header}\n{row}\n")
    (folder / "variants.csv").write_text(
        "variant,arch,top1_accuracy,load_time_s,memory_gb\nresnet-tiny,resnet-tiny,0.5,5.0,0.5\n"
    )
    assert (
        cli(["calibrate", "--profile", str(profile), "--seeds", "2", "--check-seeds", "3", "--table-requests", "3000"])
        == 0
    )
    return profile


@pytest.mark.slow
def test_live_mode_plays_on_ray_serve_and_survives_a_killed_server(tmp_path):
    """The live smoke test (about 50 s): a tiny model on one core serves three 5 s intervals of
    real requests; its server process is killed in the second; every request stays accounted for,
    the env reports the lost replica, and the next interval is served again."""
    import os
    import signal
    import threading

    import gymnasium as gym
    from ray import serve

    profile = tiny_world(tmp_path / "tiny")
    env = gym.make(
        "InfAdapter-v0",
        backend="live",
        profile=str(profile),
        slo_ms=500,
        min_cores=1,
        budget_cores=1,
        trace=np.full(15, 6.0),
        interval_s=5,
        initial_cores=(1,),
    )
    try:
        env.reset(seed=0)
        infos = [env.step(np.array([1]))[4]]
        pid = serve.get_app_handle("resnet-tiny").pid.remote().result()
        threading.Timer(1.0, lambda: os.kill(pid, signal.SIGKILL)).start()
        infos += [env.step(np.array([1]))[4], env.step(np.array([1]))[4]]
    finally:
        env.close()
    for info in infos:
        assert info["arrivals"] == 30
        assert info["served_in_slo"] + info["over_slo"] + info["dropped"] == info["arrivals"]  # nobody lost
        assert info["latency_p99_ms"] > 0
    assert infos[0]["served_in_slo"] >= 27 and infos[0]["replicas_lost"] == 0
    assert infos[1]["replicas_lost"] == 1
    assert infos[2]["served_in_slo"] + infos[2]["over_slo"] >= 27  # served again


def test_the_vector_env_refuses_live_mode():
    import gymnasium as gym

    with pytest.raises(ValueError, match="backend='live' plays one env on real servers"):
        gym.make_vec("InfAdapter-v0", num_envs=2, vectorization_mode="vector_entry_point", backend="live")
    with pytest.raises(ValueError, match="backend='live' runs the accuracy_first dispatcher only"):
        gym.make("InfAdapter-v0", backend="live", dispatcher="quota")


@pytest.mark.expensive
def test_sim2real_plays_live_and_replays_in_both_simulators(tmp_path):
    """A one-minute episode of the InfAdapter agent on a tiny model (about 2 minutes)."""
    from infadapter_scripts.cli import main as cli

    profile = tiny_world(tmp_path / "tiny")
    out = tmp_path / "s2r"
    argv = [
        "sim2real",
        "--agent",
        "infadapter",
        "--agent-options",
        "capacity_model=measured",
        "--profile",
        str(profile),
    ]
    argv += ["--slo-ms", "500", "--rate-multiplier", "0.05", "--interval-s", "10", "--episode-length-s", "60"]
    assert cli([*argv, "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "intervals.csv").open()))
    assert len(rows) == 6
    for made in ("summary.md", "sim2real.png", "sim2real.json"):
        assert (out / made).is_file()
    assert "| fast |" in (out / "summary.md").read_text()


@pytest.mark.expensive
def test_a_full_profile_of_resnet18_on_one_core(tmp_path):
    """The original profiler's full tests on one real ResNet18 server (about 4 minutes): the
    saturation throughput of one core is what a core serves (16-19 images/s on the Xeon reference,
    ../shared/data/measured), and each SLO's capacity is below it with its P99 within the SLO."""
    from infadapter_scripts.cli import main as cli

    out = tmp_path / "profile.csv"
    assert cli(["profile", "--models", "resnet18", "--cores", "1", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [int(r["SLA"]) for r in rows] == [500, 750, 1000, 1500]
    for row in rows:
        assert 5 <= float(row["saturation_tp"]) <= 40
        assert float(row["capacity"]) <= float(row["saturation_tp"])
        if row["p99_latency"]:
            assert float(row["p99_latency"]) <= int(row["SLA"])


@pytest.mark.expensive
def test_live_mode_switches_variants_make_before_break(tmp_path):
    """A switch from resnet-tiny to ResNet18 (about a minute): while ResNet18 loads the tiny model
    keeps serving (nothing dropped), then it is removed and ResNet18 serves."""
    import gymnasium as gym
    from ray import serve

    from infadapter_scripts.cli import main as cli

    folder = tmp_path / "two"
    folder.mkdir()
    header = ",".join(profiler.COLUMNS)
    rows = [
        "1,cpu,1,0.5G,resnet-tiny,1,1,1000000,1,1,1000,120,20,30,2026-11-29T00:00:00,5.0,0.5",
        "1,cpu,1,0.6G,18,1,1,1000000,1,1,1000,390,9,16,2026-11-29T00:00:00,8.3,0.6",
    ]
    (folder / "profile.csv").write_text("\n".join([header, *rows]) + "\n")
    (folder / "variants.csv").write_text(
        "variant,arch,top1_accuracy,load_time_s,memory_gb\n"
        "resnet-tiny,resnet-tiny,0.5,5.0,0.5\nresnet18,18,0.69758,8.3,0.6\n"
    )
    quick = ["--seeds", "2", "--check-seeds", "3", "--table-requests", "3000"]
    assert cli(["calibrate", "--profile", str(folder / "profile.csv"), *quick]) == 0
    env = gym.make(
        "InfAdapter-v0",
        backend="live",
        profile=str(folder / "profile.csv"),
        slo_ms=1000,
        min_cores=1,
        budget_cores=2,
        trace=np.full(35, 4.0),
        interval_s=5,
        initial_cores=(1, 0),
    )
    try:
        env.reset(seed=0)
        infos = [env.step(np.array(action))[4] for action in ([1, 0], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1])]
        applications = set(serve.status().applications)
    finally:
        env.close()
    assert all(i["dropped"] == 0 for i in infos)  # the tiny model served until ResNet18 answered
    assert infos[1]["served_in_slo_by_variant"][0] > 0  # the switch's interval: tiny still serving
    assert infos[-1]["served_in_slo_by_variant"] == [0.0, infos[-1]["served_in_slo"]]  # then ResNet18 alone
    assert applications == {"resnet18"}  # the tiny model was removed


def test_the_sustained_rate_counts_completions_inside_its_window():
    from infadapter_env.serving.speed_tests import completions_per_s

    sent = np.arange(100) * 0.1  # 10 req/s for 10 s, each answered 2 s later, one failed
    latency = np.full(100, 2000.0)
    ok = np.ones(100, dtype=bool)
    ok[50] = False
    result = LoadResult(sent, np.where(ok, latency, np.nan), ok, 12.0)
    # completions at 2.0 .. 11.9 s: in [4, 8) the 40 answers sent at 2.0 .. 5.9 s, less the failed one
    assert completions_per_s(result, 4.0, 8.0) == pytest.approx(39 / 4)
    assert completions_per_s(result, 20.0, 30.0) == 0.0


@pytest.mark.slow
def test_speed_tests_read_a_real_server_by_burst_and_by_sustained_overload(tmp_path):
    """The speed tests on a tiny ResNet on one core, briefly (about 30 s)."""
    command = [
        sys.executable,
        "-m",
        "infadapter_scripts.cli",
        "speed-tests",
        "--models",
        "resnet-tiny",
        "--repeats",
        "2",
        "--sustained-s",
        "8",
        "--settle-s",
        "3",
        "--overload",
        "1.3",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    record = json.loads((tmp_path / "speed_tests.json").read_text())
    reading = record["readings"]["resnet-tiny-1c"]
    assert len(reading["burst_rps"]) == 2 and reading["saturation_reading_rps"] > 0
    assert reading["sustained_rps"] > 0 and reading["offered_rps"] == pytest.approx(
        1.3 * reading["saturation_reading_rps"], abs=0.01
    )
    assert 0.3 < reading["burst_over_sustained"] < 3.0
    assert "| resnet-tiny-1c |" in done.stdout
