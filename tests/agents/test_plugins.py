"""Agents of one's own: registered in a script, named by a module:attribute spec, or installed as an
entry point; made by ``infadapter_agents.make`` and played by the leaderboard on every backend."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import infadapter_agents

POLICIES = '''
from infadapter_agents import Agent

CORES = 12


class Fixed(Agent):
    """ResNet50 on a fixed number of cores."""

    name = "fixed50"

    def __init__(self, cores=CORES):
        self.cores = cores

    def act(self, observation, info):
        return self.settings.action([0, 0, 1, 0, 0], [0, 0, self.cores, 0, 0])


def make_fixed(**options):
    return Fixed(**options)


def make_nothing():
    return object()
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch, isolated_registry) -> Path:
    """A folder on sys.path holding ``my_policies.py``, ``broken_policies.py`` and an installed-looking
    distribution whose entry points (group infadapter.agents) name them; the registry restored after."""
    (tmp_path / "my_policies.py").write_text(POLICIES)
    (tmp_path / "broken_policies.py").write_text("raise RuntimeError('this plugin is broken')\n")
    info = tmp_path / "my_policies-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-policies\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[infadapter.agents]\nfixed-ep = my_policies:make_fixed\nbroken-ep = broken_policies:make\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_make_takes_a_module_attribute_spec(plugins):
    agent = infadapter_agents.make("my_policies:make_fixed", cores=8)
    assert agent.name == "my_policies:make_fixed" and agent.cores == 8  # the spec names the agent
    assert infadapter_agents.make("my_policies:Fixed").name == "fixed50"  # ... or the factory's own name
    assert {"my_policies:make_fixed", "fixed50"} <= set(infadapter_agents.names())


def test_entry_points_are_agents(plugins):
    assert "fixed-ep" in infadapter_agents.names()  # listed without importing the plugin
    assert infadapter_agents.make("fixed-ep", cores=4).cores == 4
    with pytest.raises(ValueError, match=r"agent 'broken-ep': entry point broken-ep = 'broken_policies:make'.*broken"):
        infadapter_agents.make("broken-ep")
    with pytest.raises(ValueError, match="'fixed-ep' is registered already"):
        infadapter_agents.register("fixed-ep", lambda: None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:make", "agent spec 'no_such_module_xyz:make': no module 'no_such_module_xyz'"),
        ("my_policies:missing", "module 'my_policies' has no attribute 'missing'"),
        ("my_policies:CORES", "CORES is not callable"),
        ("broken_policies:make", "importing 'broken_policies' failed: RuntimeError: this plugin is broken"),
        ("my_policies:", "agent spec 'my_policies:' is not module:attribute"),
        ("my_policies", "unknown agent 'my_policies'; valid agents: infadapter, ms+"),
        ("my_policies:make_nothing", "its factory returned <object object"),
    ],
)
def test_bad_agents_are_named(plugins, spec, message):
    with pytest.raises(ValueError) as caught:
        infadapter_agents.make(spec)
    assert message in str(caught.value)


def test_register_refuses_bad_input_and_replaces_on_request(plugins):
    from my_policies import Fixed

    with pytest.raises(ValueError, match="'hpa' is registered already"):
        infadapter_agents.register("hpa", Fixed)
    with pytest.raises(ValueError, match="must be callable"):
        infadapter_agents.register("mine", "Fixed")  # type: ignore[arg-type]
    infadapter_agents.register("mine", Fixed)
    infadapter_agents.register("mine", lambda: Fixed(cores=4), replace=True)  # a notebook cell run again
    assert infadapter_agents.make("mine").cores == 4
    assert set(infadapter_agents.registrations()) == {"mine"}


# A user's script run as ``python -c``: like a notebook, its __main__ has no file that a worker could
# import, so its class reaches the workers by value.
SCRIPT = """
import sys
import infadapter_agents
from infadapter_agents import Agent
from infadapter_scripts import leaderboard

class Greedy(Agent):
    def act(self, observation, info):
        return self.settings.action([0, 0, 1, 0, 0], [0, 0, 14, 0, 0])

infadapter_agents.register("greedy", Greedy)
sys.exit(leaderboard.main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "backend", ["serial", pytest.param("local", marks=pytest.mark.slow), pytest.param("ray", marks=pytest.mark.slow)]
)
def test_agents_of_ones_own_reach_every_backend(plugins, backend, tmp_path):
    out = tmp_path / "out"
    agents = ["greedy,", "my_policies:Fixed", "fixed-ep"]  # registered in __main__, a spec, an entry point
    args = [
        "--agents",
        *agents,
        "--seeds",
        "0",
        "--scenarios",
        "test1",
        "--betas",
        "0.05",
        "--no-figures",
        "--out",
        str(out),
    ]
    environ = os.environ | {"PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args, "--backend", backend, "--workers", "2"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "leaderboard.csv").open(newline="") as handle:
        rows = {row["agent"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"greedy", "fixed50", "fixed-ep"}
    assert float(rows["greedy"]["mean_cores"]) == 14 and float(rows["fixed50"]["mean_cores"]) == 12
    assert json.loads(rows["fixed50"]["agent_options"]) == {"agent": "fixed50", "agent_source": "my_policies:Fixed"}
    if backend != "serial":
        return
    # Who played the rows: the spec and the entry point are imported again and replay their actions;
    # an agent registered only in the sweep's __main__ cannot be made elsewhere, and is named.
    validate = [
        sys.executable,
        "-m",
        "infadapter_scripts.cli",
        "validate",
        "--rerun-agents",
        str(out / "leaderboard.csv"),
    ]
    checked = subprocess.run(validate, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 1 and "2 of 3 rows valid" in checked.stdout, checked.stdout + checked.stderr[-2000:]
    assert "(greedy beta=0.05 test1 seed=0): cannot re-run the agent: unknown agent 'greedy'" in checked.stdout


def test_a_factory_that_cannot_reach_the_workers_is_named(plugins, tmp_path, monkeypatch, capsys):
    from infadapter_scripts import leaderboard

    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as without cloudpickle: plain pickle
    infadapter_agents.register("local-lambda", lambda: infadapter_agents.make("static-under"))
    args = ["--agents", "local-lambda", "--seeds", "0", "--scenarios", "test1", "--betas", "0.05", "--no-figures"]
    assert leaderboard.main([*args, "--backend", "local", "--workers", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "agent 'local-lambda': its factory <function" in err and "cannot be sent to the worker processes" in err
    assert "install cloudpickle" in err


def test_unknown_agents_in_the_paper_protocol_list_its_contenders_and_the_others(capsys, tmp_path):
    from infadapter_scripts import leaderboard

    args = ["--protocol", "paper-2023", "--agents", "vpa", "--out", str(tmp_path)]
    assert leaderboard.main(args) == 2
    err = capsys.readouterr().err
    assert "unknown agent 'vpa'; valid agents: infadapter, ms+, vpa-18/throttled" in err
    assert "other registered agents: oracle, vpa-18" in err and "module:attribute spec" in err


def test_the_spec_module_of_a_command_may_sit_in_the_current_folder(plugins, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from infadapter_scripts.cli import main
        sys.path.remove('')  # as the installed `infadapter` command: the current folder not on the path
        sys.exit(main(sys.argv[1:]))
        """
    )
    out = tmp_path / "out"
    args = [
        "leaderboard",
        "--agents",
        "my_policies:make_fixed",
        "--seeds",
        "0",
        "--scenarios",
        "test1",
        "--betas",
        "0.05",
    ]
    done = subprocess.run(
        [sys.executable, "-c", script, *args, "--backend", "serial", "--no-figures", "--out", str(out)],
        cwd=plugins,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "my_policies:make_fixed" in (out / "leaderboard.csv").read_text()
