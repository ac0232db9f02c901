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
    return config.getoption("--run-slow") or in_ci() or "slow" in (config.getoption("markexpr") or "")


def in_ci():
    """Whether the environment variable CI says this is a CI run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


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


#: The files of `tfvae-export all` as the `tiny_export` fixture writes them: (file name, part, quantize).
TINY_EXPORT_FILES = (
    ("vae.tflite", "vae", None), ("vae_int8.tflite", "vae", "int8"), ("encoder.tflite", "encoder", None),
    ("encoder_int8.tflite", "encoder", "int8"), ("score.tflite", "score", None),
    ("score_int8.tflite", "score", "int8"), ("decoder.tflite", "decoder", None),
)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """A tiny digits model (3 epochs, raw pixels in) and its export folder: the files of `tfvae-export all`.

    Returns:
        `(model, raw_test, folder)`: `raw_test` the raw test pixels (0..16) that set the thresholds.
    """
    import export

    (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(64, (32,), 4, likelihood="bernoulli",
                          preprocessing=tfvae.datasets.preprocessing_for("digits", binarize=True))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(tfvae.datasets.apply_preprocessing(x_train, model.preprocessing), epochs=3, batch_size=64, verbose=0)
    folder = tmp_path_factory.mktemp("tiny_export")
    export.saved_model(model, folder / "saved_model", parity_data=x_test, normal_data=x_test)
    for name, part, quantize in TINY_EXPORT_FILES:
        export.tflite(model, folder / name, part=part, quantize=quantize, parity_data=x_test, normal_data=x_test,
                      representative_data=x_train if quantize == "int8" else None)
    return model, x_test.astype(np.float32), folder
