"""When tests marked `slow` run: on request (`--run-slow`, `-m slow`) and always in CI."""

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

