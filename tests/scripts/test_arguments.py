"""Command-line parsing: list flags take commas, spaces or both, in every command."""

from __future__ import annotations

import json

import pytest


def test_list_flags_take_commas_or_spaces():
    from infadapter_env.leaderboard.fast_validation import ValidationOptions
    from infadapter_scripts import leaderboard
    from infadapter_scripts.arguments import parse

    forms = [
        ["--agents", "a,b", "--betas", "0.05,0.1", "--seeds", "0,1,2"],
        ["--agents", "a", "b", "--betas", "0.05", "0.1", "--seeds", "0", "1", "2"],
        ["--agents", "a,", "b", "--betas", "0.05,", "0.1", "--seeds", "0,1", "2"],
        ["--agents", "a", ",b", "--betas", " 0.05 , 0.1 ", "--seeds", "0", "1,2,"],
    ]
    for argv in forms:
        args = parse(leaderboard.Args, argv, prog="infadapter leaderboard")
        assert (args.agents, args.betas, args.seeds) == (["a", "b"], [0.05, 0.1], [0, 1, 2]), argv
    assert parse(ValidationOptions, ["--agents", "hpa,", "mark"], prog="x").agents == ["hpa", "mark"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0,x"], "argument --seeds: 'x' is not an integer; separate values with commas or spaces"),
        (["--betas", "0.1;0.2"], "argument --betas: '0.1;0.2' is not a number"),
        (["--agents", ","], "argument --agents: expected at least one value"),
    ],
)
def test_bad_list_values_are_named(argv, message, capsys):
    from infadapter_scripts import leaderboard
    from infadapter_scripts.arguments import parse

    with pytest.raises(SystemExit) as exited:
        parse(leaderboard.Args, argv, prog="infadapter leaderboard")
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_solve_takes_the_previous_deployment_with_commas_or_spaces(capsys):
    from infadapter_scripts import solve

    outputs = []
    for previous in (["18:4,152:16"], ["18:4", "152:16"], ["18:4,", "152:16"]):
        assert solve.main(["--rate", "80", "--previous", *previous, "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out)["previous"])
    assert outputs == [[4, 0, 0, 0, 16]] * 3
