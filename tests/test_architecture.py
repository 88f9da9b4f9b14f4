"""The layers and their import direction (docs/architecture.md): world -> sim -> core -> {agents,
serving} -> leaderboard -> command line, lowest first. Every module's AST is walked, function
bodies included, so an import deferred into a function counts like one at the top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where each installed package's source lies in the repository.
SOURCES = {
    "infadapter_env": REPO / "infadapter_env",
    "infadapter_agents": REPO / "agents",
    "infadapter_scripts": REPO / "scripts",
}
# (module prefix, layer rank, layer name): the longest matching prefix decides.
LAYERS = (
    ("infadapter_env.jit", 0, "base"),
    ("infadapter_env.arrays", 0, "base"),
    ("infadapter_env.provenance", 0, "base"),
    ("infadapter_env.options", 0, "base"),
    ("infadapter_env.parallel", 0, "base"),
    ("infadapter_env.world", 1, "world"),
    ("infadapter_env.sim", 2, "sim"),
    ("infadapter_env.core", 3, "core"),
    ("infadapter_agents", 4, "agents"),
    ("infadapter_env.serving", 4, "serving"),
    ("infadapter_env.leaderboard", 5, "leaderboard"),
    ("infadapter_scripts", 6, "command line"),
)
# Base modules directly in infadapter_env/ (at most about six); anything else belongs to a layer.
BASE_MODULES = {"__init__", "jit", "arrays", "provenance", "options", "parallel"}


def layer_of(module: str) -> tuple[int, str] | None:
    if module == "infadapter_env":  # the package root: registers the envs, names the env classes lazily
        return 3, "package root"
    matches = [
        (len(prefix), rank, name)
        for prefix, rank, name in LAYERS
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        return None
    _, rank, name = max(matches)
    return rank, name


def modules() -> dict[str, Path]:
    out = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


def imported(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, module) of every first-party import of a file, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from infadapter_env import x`` may import the submodule ``infadapter_env.x``
            found += [
                (node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in ALL else base) for alias in node.names
            ]
    return [(line, name) for line, name in found if layer_of(name) is not None]


ALL = modules()


def test_imports_go_one_way_lowest_first():
    wrong = []
    for module, path in ALL.items():
        mine = layer_of(module)
        assert mine is not None, module
        for line, target in imported(module, path):
            theirs = layer_of(target)
            assert theirs is not None
            same_layer = theirs[1] == mine[1]
            if theirs[0] > mine[0] or (theirs[0] == mine[0] and not same_layer):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {mine[1]} imports {target} ({theirs[1]})")
    assert not wrong, "imports against the layers' direction:\n" + "\n".join(wrong)


def test_the_package_root_holds_only_the_base_modules():
    loose = {p.stem for p in SOURCES["infadapter_env"].glob("*.py")} - BASE_MODULES
    assert not loose, f"modules directly in infadapter_env/ that belong to a layer: {sorted(loose)}"
    assert len(BASE_MODULES) <= 6


def test_the_environment_package_imports_neither_agents_nor_scripts():
    """The harness gets agents through the registry (``core.agent_registry``: entry points), and the
    command line sits on top: nothing under ``infadapter_env`` imports those packages."""
    wrong = [
        f"{path.relative_to(REPO)}:{line}: {target}"
        for module, path in ALL.items()
        if module.startswith("infadapter_env")
        for line, target in imported(module, path)
        if target.split(".")[0] in ("infadapter_agents", "infadapter_scripts")
    ]
    assert not wrong, "infadapter_env imports a package above it:\n" + "\n".join(wrong)


def test_no_private_names_are_imported_across_packages():
    wrong = []
    for module, path in ALL.items():
        top = module.split(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            crosses = isinstance(node, ast.ImportFrom) and node.module and not node.level
            if crosses and node.module.split(".")[0] != top and layer_of(node.module) is not None:
                wrong += [
                    f"{path.relative_to(REPO)}:{node.lineno}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert not wrong, "private names imported from another package:\n" + "\n".join(wrong)


@pytest.mark.parametrize("walker_input", ["import infadapter_agents", "from infadapter_scripts import play"])
def test_the_walker_sees_imports_inside_function_bodies(tmp_path, walker_input):
    """The contract would pass vacuously if deferred imports were missed."""
    path = tmp_path / "probe.py"
    path.write_text(f"def f():\n    {walker_input}\n")
    targets = [name for _, name in imported("infadapter_env.core.probe", path)]
    assert targets and layer_of(targets[0])[0] > layer_of("infadapter_env.core.probe")[0]


HEAVY = (
    "torch",
    "stable_baselines3",
    "sb3_contrib",
    "ray",
    "matplotlib",
    "pandas",
    "numba",
    "rliable",
    "scipy",
    "pulp",
)


def test_importing_the_package_is_light():
    """``import infadapter_env`` registers the envs and loads none of the training, plotting,
    statistics or compiled-kernel stacks: those load when an env or the harness is first used."""
    code = f"import sys, infadapter_env; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import infadapter_env loaded {loaded}"
    code = "import gymnasium as gym, infadapter_env; print(sorted(i for i in gym.registry if 'InfAdapter' in i))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "InfAdapter-v0" in out and "InfAdapterShort-v0" in out
