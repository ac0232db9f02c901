"""Shared fixtures: tiny models and the bundled digits, no network."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tfvae  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (always run when the environment variable CI is set)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: runs notebooks or several Python processes (10 s to minutes each); skipped unless --run-slow "
        "is given, CI is set in the environment, or -m selects slow tests",
    )
    # TFP 0.25 still imports distutils' LooseVersion; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore:distutils Version classes are deprecated:DeprecationWarning")


def run_slow(config):
    """Whether tests marked slow run: on request, and always in CI (CI runs everything).

    CI services set CI=true; `.ci/run` stays the README's plain `pytest`.
    """
    return (
        config.getoption("--run-slow")
        or os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        or "slow" in (config.getoption("markexpr") or "")
    )


def pytest_collection_modifyitems(config, items):
    if run_slow(config):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits():
    """Binarized digits: (x_train, y_train), (x_test, y_test), x of shape (n, 64)."""
    return tfvae.datasets.load("digits", binarize=True)


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
