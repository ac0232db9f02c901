"""tfvae.xla_cache: the commands keep XLA's compiled programs on disk; the flag works on this TensorFlow."""
import json
import os
import subprocess
import sys

import pytest

from tfvae import xla_cache


def test_enable_adds_the_flag_to_the_users_other_xla_flags():
    env = {"TF_XLA_FLAGS": "--tf_xla_auto_jit=0"}
    assert xla_cache.enable("cache", env) == "cache"
    assert env["TF_XLA_FLAGS"].split() == ["--tf_xla_auto_jit=0", "--tf_xla_persistent_cache_directory=cache"]


def test_a_cache_the_user_named_is_kept(monkeypatch):
    monkeypatch.setenv("TFVAE_XLA_CACHE", "ours")
    env = {"TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory=theirs"}
    assert xla_cache.enable(environ=env) == "theirs"
    assert env == {"TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory=theirs"}


def test_tfvae_xla_cache_moves_or_turns_off_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TFVAE_XLA_CACHE", raising=False)
    assert xla_cache.default_directory() == str(tmp_path / "tfvae" / "xla")
    monkeypatch.setenv("TFVAE_XLA_CACHE", "")
    env = {}
    assert xla_cache.enable(environ=env) is None
    assert env == {}


FIT = """
import json, os, sys
from tfvae import _cli
with _cli.command_start_up(True):  # what the tfvae command does in its own process
    import keras, numpy as np, tfvae
keras.utils.set_random_seed(0)
x = (np.random.default_rng(0).random((64, 6)) > 0.5).astype("float32")
model = tfvae.mlp_vae(6, (8,), 2, likelihood="bernoulli")
model.compile(jit_compile=True)
history = model.fit(x, epochs=2, batch_size=16, verbose=0)
print(json.dumps({"path": model.fit_path, "flags": os.environ["TF_XLA_FLAGS"], "loss": history.history["loss"]}))
"""


@pytest.mark.slow
def test_a_second_process_reuses_the_first_ones_programs_and_trains_the_same(tmp_path):
    # TensorFlow's persistor logs at verbosity 3 when it loads a program instead of compiling it.
    env = {**os.environ, "TFVAE_XLA_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "0",
           "TF_CPP_VMODULE": "device_executable_persistor=3"}
    env.pop("TF_XLA_FLAGS", None)
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", FIT], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        runs[-1]["programs"] = sorted(os.listdir(tmp_path / "cache"))
        runs[-1]["loaded"] = "Loading cached entry" in done.stderr
    first, second = runs
    assert first["path"] == "epoch loop + XLA"
    assert first["flags"] == f"--tf_xla_persistent_cache_directory={tmp_path / 'cache'}"
    assert first["programs"] and all(name.endswith(".pb") for name in first["programs"])
    assert not first["loaded"] and second["loaded"]
    assert second["programs"] == first["programs"]  # nothing new compiled
    assert second["loss"] == first["loss"]


def test_enable_with_its_defaults_sets_the_processes_flags_to_the_default_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TFVAE_XLA_CACHE", raising=False)
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    assert xla_cache.enable() == str(tmp_path / "tfvae" / "xla")
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={tmp_path / 'tfvae' / 'xla'}"
