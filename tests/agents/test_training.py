"""Training from the README's own commands, sweeps on every backend, and the experiments that
settle training choices (``infadapter compare-training``)."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import infadapter_env  # noqa: F401
from infadapter_agents.learned.agent import CHECKPOINTS, SHIPPED, LearnedAgent
from infadapter_scripts import compare_training, train_rl

README = Path(__file__).resolve().parents[2] / "README.md"
TINY = ["--total-timesteps", "256", "--num-envs", "4", "--episode-length-s", "300", "--no-evaluate"]


def readme_train_commands() -> list[str]:
    """Every ``infadapter train`` command line in the README's code blocks (comments dropped)."""
    commands, in_code = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        found = re.match(r"\s*(?:\.venv/bin/)?infadapter train (.*)", line) if in_code else None
        if found:
            commands.append(found.group(1).split(" #")[0].strip())
    return commands


def shrunk(command: str, tmp: Path, name: str) -> list[str]:
    """The command with one seed, a tiny budget, here (serial: the backends are compared below) and
    its output in ``tmp``; every other flag kept."""
    replaced = ("--seeds", "--seed", "--total-timesteps", "--out", "--log-dir", "--num-envs", "--backend")
    kept, skipping = [], False
    for token in shlex.split(command):
        if token.startswith("--"):
            skipping = token in replaced
        if not skipping:
            kept.append(token)
    return [*kept, "--seeds", "0", *TINY, "--out", str(tmp / name), "--log-dir", str(tmp / "logs")]


def test_the_readme_lists_every_shipped_agents_command():
    commands = readme_train_commands()
    for name in SHIPPED:
        agent = json.loads((CHECKPOINTS / name / "agent.json").read_text())
        made_by = agent.get("reproduce", agent["run_by"])  # the command under today's defaults
        assert made_by.removeprefix("infadapter train ") in commands, f"README lacks the command of {name}: {made_by}"


def test_every_training_command_of_the_readme_trains(tmp_path):
    commands = readme_train_commands()
    assert len(commands) >= 5  # the quick start, the two examples, the shipped agents' commands
    for k, command in enumerate(commands):
        argv = shrunk(command, tmp_path, f"run{k}")
        assert train_rl.main(argv) == 0, command
        sweep = "--algos" in argv or "--sweep-betas" in argv
        agents = sorted((tmp_path / f"run{k}").iterdir()) if sweep else [tmp_path / f"run{k}"]
        for folder in agents:
            assert json.loads((folder / "agent.json").read_text())["plays"] == "seed0"
            meta = json.loads((folder / "seed0" / "meta.json").read_text())
            assert meta["args"]["algo"] in shlex.split(command) and meta["args"]["total_timesteps"] == 256
            # the recorded command spells out what a default change would alter
            assert {"--over-budget", "--total-timesteps", "--algo"} <= set(shlex.split(meta["command"]))
            policy = LearnedAgent(folder)
            env = gym.make("InfAdapter-v0")
            obs, info = env.reset(seed=0)
            policy.reset(info)
            assert env.action_space.contains(np.asarray(policy.act(obs, info)))


def test_seeds_without_out_go_to_runs_not_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train_rl.main(["--algo", "a2c", "--seeds", "0", *TINY, "--log-dir", "logs"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("InfAdapter-v0__a2c__seeds__")
    assert (folder / "agent.json").is_file() and (folder / "seed0" / "model.zip").is_file()


def weights(folder: Path, algo: str) -> dict[str, np.ndarray]:
    from infadapter_agents.learned.agent import algorithm_class

    model = algorithm_class(algo).load(str(folder / "model.zip"), device="cpu")
    return {k: v.numpy() for k, v in model.policy.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_sweep_trains_the_same_policies_on_every_backend(tmp_path, backend):
    sweep = ["--algos", "ppo", "a2c", "--sweep-betas", "0.02,0.1", *TINY, "--log-dir", str(tmp_path / "logs")]
    assert train_rl.main([*sweep[:-2], "--seeds", "0", "--out", str(tmp_path / "serial"), *sweep[-2:]]) == 0
    argv = [*sweep, "--seeds", "0", "--backend", backend, "--workers", "2", "--out", str(tmp_path / backend)]
    assert train_rl.main(argv) == 0
    folders = sorted(p.name for p in (tmp_path / backend).iterdir())
    assert folders == ["a2c__beta0.02", "a2c__beta0.1", "ppo__beta0.02", "ppo__beta0.1"]
    logs = list((tmp_path / "logs").glob("*/progress.csv"))
    assert len(logs) == 8  # every training logged apart, even those that started together
    for name in folders:
        algo = name.split("__")[0]
        serial, other = (
            weights(tmp_path / "serial" / name / "seed0", algo),
            weights(tmp_path / backend / name / "seed0", algo),
        )
        assert serial.keys() == other.keys()
        assert all(np.array_equal(serial[k], other[k]) for k in serial), name
        meta = json.loads((tmp_path / backend / name / "seed0" / "meta.json").read_text())
        assert meta["args"]["beta"] == float(name.split("beta")[1])
        assert "--backend" not in meta["command"] and f"--beta {name.split('beta')[1]}" in meta["command"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algos", "ppo,dqn"], "unknown algorithm 'dqn'"),
        (["--sweep-betas", "0.1", "--betas", "0.1,0.2"], "exclude each other"),
        (["--seeds", "0", "--backend", "slurm"], "unknown backend 'slurm'"),
        (["--algo", "a2c", "--algos", "ppo"], "give --algo (one algorithm) or --algos (a sweep), not both"),
        (["--beta", "0.1", "--sweep-betas", "0.1,0.2"], "give --beta (one beta) or --sweep-betas"),
        (["--backend", "ray"], "--backend applies to --seeds and sweeps"),
        (["--seeds", "0", "--address", "ray://x:10001"], "--address is the Ray cluster of --backend ray"),
        (["--seeds", "0", "--collect-only"], "--collect-only needs --out"),
    ],
)
def test_sweep_flags_are_checked(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train_rl.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing trained


@pytest.mark.slow
def test_an_experiment_trains_its_arms_scores_them_and_resumes(tmp_path, capsys):
    argv = [
        "--experiment", "budget-trace", "--seeds", "0", "1", "--total-timesteps", "256", "--windows", "2",
        "--simulator", "fast", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    assert compare_training.main(argv) == 0
    out = tmp_path / "out" / "budget-trace"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"maskable-ppo", "ppo-scale", "infadapter"}
    assert all(len(summary["arms"][arm]["seed_objectives"]) == 2 for arm in ("maskable-ppo", "ppo-scale"))
    assert summary["command"].startswith("infadapter compare-training --experiment budget-trace")
    assert "Verdict:" in (out / "table.md").read_text() and (out / "learning_curves.png").is_file()
    for arm in ("maskable-ppo", "ppo-scale"):  # each trained, and scored, under the budget trace
        meta = json.loads((tmp_path / "runs" / "budget-trace" / arm / "seed0" / "meta.json").read_text())
        assert meta["train_env"]["budget_trace"] == "tenant-then-failure"
    assert (
        json.loads((tmp_path / "runs/budget-trace/ppo-scale/seed1/meta.json").read_text())["train_env"]["over_budget"]
        == "scale"
    )
    capsys.readouterr()
    assert compare_training.main(argv) == 0  # a second run retrains and replays nothing
    err = capsys.readouterr().err
    assert err.count("trained already") == 2 and "episodes in" not in err
    assert compare_training.main([*argv, "--windows", "3"]) == 2  # other settings: no stale scores
    assert "holds scores made with" in capsys.readouterr().err
    assert compare_training.main([*argv, "--out", str(tmp_path / "out2"), "--beta", "0.1"]) == 2
    assert "was trained with {'beta': 0.05}" in capsys.readouterr().err
    # Under the trace, both arms' actions fit the cores available: none is rejected or cut.
    for arm in ("maskable-ppo", "ppo-scale"):
        policy = LearnedAgent(tmp_path / "runs" / "budget-trace" / arm)
        env = gym.make("InfAdapter-v0", budget_trace="tenant-then-failure")
        obs, info = env.reset(seed=0)
        policy.reset(info)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
            done = terminated or truncated
            used = sum(r * c for r, c in zip(info["replicas"], info["cores_per_replica"], strict=True))
            assert used <= info["available_cores"], (arm, info["time_s"])
            assert info["action_fix"] not in ("over_budget_kept_previous", "budget_cut"), (arm, info["time_s"])
    # A policy trained with a budget trace sees the cores available; without a trace, all of them.
    policy = LearnedAgent(tmp_path / "runs" / "budget-trace" / "maskable-ppo")
    env = gym.make("InfAdapter-v0", budget_trace="tenant-then-failure")
    obs, info = env.reset(seed=0)
    policy.reset(info)
    assert policy.policy_input(obs).shape[1] == obs.size
    assert env.action_space.contains(np.asarray(policy.act(obs, info)))
    plain = gym.make("InfAdapter-v0")
    obs, info = plain.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy.reset(info)
    assert any("budget_trace=None" in str(w.message) for w in caught)
    assert policy.policy_input(obs)[0, -1] == 1.0  # the whole budget available (its share)
    assert plain.action_space.contains(np.asarray(policy.act(obs, info)))


def test_an_unknown_experiment_is_named(capsys):
    assert compare_training.main(["--experiment", "dropout"]) == 2
    assert "unknown experiment 'dropout'; valid: over-budget, budget-trace" in capsys.readouterr().err
