"""When tests marked `slow` run: on request (`--run-slow`, `-m slow`) and always in CI."""

import ast
import pathlib
import types

import pytest
from conftest import run_slow


def _config(run_slow_option=False, markexpr=""):
    options = {"--run-slow": run_slow_option, "markexpr": markexpr}
    return types.SimpleNamespace(getoption=options.__getitem__)


@pytest.mark.parametrize(
    "ci, option, markexpr, expected",
    [
        (None, False, "", False),  # a developer's plain `pytest`
        ("", False, "", False),
        ("false", False, "", False),
        ("0", False, "", False),
        ("true", False, "", True),  # CI services set CI=true; .ci/run is the plain `pytest`
        ("1", False, "", True),
        (None, True, "", True),
        (None, False, "slow", True),
        (None, False, "not slow", True),  # -m decides: nothing is skipped on top of it
    ],
)
def test_slow_tests_run_on_request_and_in_ci(monkeypatch, ci, option, markexpr, expected):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert bool(run_slow(_config(option, markexpr))) is expected



def _starts_processes(tree):
    """{names of the module's functions that start a process, directly or through another of them}."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    calls = {name: {sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", None)
                    for sub in ast.walk(node) if isinstance(sub, ast.Call)}
             for name, node in functions.items()}
    starting = {name for name, node in functions.items()
                if any(isinstance(sub, ast.Attribute) and getattr(sub.value, "id", None) == "subprocess"
                       and sub.attr in ("run", "Popen", "check_call", "check_output") for sub in ast.walk(node))}
    while True:
        more = {name for name, called in calls.items() if called & starting} - starting
        if not more:
            return starting
        starting |= more


def _marked_slow(node):
    return any("slow" in ast.unparse(decorator) for decorator in node.decorator_list)


def test_every_test_that_starts_a_process_is_marked_slow():
    unmarked = []
    for path in sorted(pathlib.Path(__file__).parent.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_slow = any(isinstance(node, ast.Assign) and "pytestmark" in ast.unparse(node.targets[0])
                          and "slow" in ast.unparse(node.value) for node in tree.body)
        starting = _starts_processes(tree)
        unmarked += [f"{path.name}::{name}" for name in sorted(starting)
                     if name.startswith("test_") and not module_slow and not _marked_slow(
                         next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name))]
    assert unmarked == [], "tests that start a process without @pytest.mark.slow: " + ", ".join(unmarked)


def test_the_process_finder_follows_helpers():
    tree = ast.parse("import subprocess\ndef _run(): subprocess.run(['x'])\ndef test_a(): _run()\ndef test_b(): pass\n")
    assert _starts_processes(tree) == {"_run", "test_a"}
