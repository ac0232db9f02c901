"""The tfvae-export command: saved-model, tflite and all on a tiny saved run; bad input is one line."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import tfvae
from export import cli, metadata

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(digits, tmp_path_factory):
    """A run folder like `tfvae train` writes: model.keras and run.json."""
    (x_train, _), _ = digits
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli",
                          preprocessing={"dataset": "digits", **tfvae.datasets.preprocessing_for("digits", True, True)})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x_train, epochs=2, batch_size=128, verbose=0)
    path = tmp_path_factory.mktemp("runs") / "digits"
    path.mkdir()
    model.save(path / "model.keras")
    (path / "run.json").write_text(json.dumps({"data": "digits", "seed": 0}))
    return path


def _command(*args):
    """`python -m export ARGS` in a fresh process, as a user runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "export", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


@pytest.mark.slow
def test_all_writes_every_artifact_and_one_table(run_dir):
    done = _command("all", run_dir)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # TensorFlow's log lines are kept out of the user's way
    out = run_dir / "export"
    assert sorted(os.listdir(out)) == [
        "FILES.md", "decoder.tflite", "encoder.tflite", "encoder_int8.tflite", "files.json", "saved_model",
        "score.tflite", "score_int8.tflite", "vae.tflite", "vae_int8.tflite",
    ]  # each file carries its metadata; FILES.md and files.json describe them all (export.describe)
    assert (out / "saved_model" / "assets" / "tfvae.json").is_file()
    lines = done.stdout.splitlines()
    assert sum(line.startswith("[") and "done" in line for line in lines) == 8  # one progress line per artifact
    table = [line for line in lines if not line.startswith(("[", "parity on", "score thresholds"))]
    assert table[0].split()[:2] == ["artifact", "size"]
    names = ("SavedModel", "vae float32", "vae int8", "encoder float32", "encoder int8", "score float32",
             "score int8", "decoder float32")
    for name in names:
        assert sum(line.startswith(name) for line in table) == 1
    assert "360 rows of the digits test split" in done.stdout and "1437 rows" in done.stdout
    errors = {}  # artifact -> the "max |err|" cells of its rows, the score's relative error instead of its absolute
    for line in table[1:]:
        if not line.startswith(" "):
            artifact = line.split("  ")[0]
        numbers = re.findall(r"\d\.\d+e[-+]\d+", line)
        errors.setdefault(artifact, []).append(float(numbers[1] if "score.score" in line else numbers[0]))
    for name in ("SavedModel", "vae float32", "encoder float32", "score float32", "decoder float32"):
        assert errors[name] and max(errors[name]) <= 1e-5, (name, errors[name])
    assert len(errors["SavedModel"]) == 8  # 6 signatures, encode/serving_default with 2 outputs each
    assert len(errors["vae int8"]) == 6  # 5 signatures, encode with 2 outputs
    thresholds = metadata.read(out / "vae_int8.tflite")["score_thresholds"]
    assert thresholds["computed_on"] == "360 rows of the digits test split"
    assert f"{thresholds['by_false_positive_rate']['0.01']:.4g}" in lines[-1] and "score > threshold" in lines[-1]


def test_all_refuses_to_overwrite_then_overwrites(run_dir):
    out = run_dir / "export"
    if not out.exists():
        pytest.skip("needs the artifacts of test_all_writes_every_artifact_and_one_table")
    before = (out / "encoder.tflite").read_bytes()
    done = _command("all", run_dir)
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    assert "already exists" in done.stderr and "--overwrite" in done.stderr
    assert (out / "encoder.tflite").read_bytes() == before


def test_tflite_int8_with_digits(run_dir, tmp_path, capsys):
    out = tmp_path / "encoder_int8.tflite"
    status = cli.main(["tflite", str(run_dir / "model.keras"), "--part", "encoder", "--quantize", "int8",
                       "--data", "digits", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert out.is_file() and metadata.read(out)["quantize"] == "int8"
    assert "encoder int8" in captured.out and "z_mean" in captured.out and "sigma" in captured.out
    assert "360 rows of the digits test split" in captured.out
    assert captured.err == ""


def test_tflite_decoder_with_a_file_and_int8_io(run_dir, tmp_path, capsys):
    raw = np.random.default_rng(0).integers(0, 17, (50, 64))  # raw digit-like values: preprocessing applies
    np.save(tmp_path / "raw.npy", raw)
    out = tmp_path / "decoder.tflite"
    status = cli.main(["tflite", str(run_dir / "model.keras"), "--part", "decoder", "--quantize", "int8",
                       "--int8-io", "--data", str(tmp_path / "raw.npy"), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    inputs = metadata.read(out)["signatures"]["decode"]["inputs"]
    assert inputs["z"]["dtype"] == "int8" and inputs["z"]["quantization"]["scale"] > 0
    assert "10 rows of the raw.npy test split" in captured.out


def test_saved_model_command(run_dir, tmp_path, capsys):
    out = tmp_path / "sm"
    status = cli.main(["saved-model", str(run_dir / "model.keras"), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert (out / "saved_model.pb").is_file() and metadata.read(out)["artifact"] == "saved_model"
    assert "serving_default" in captured.out and "synthetic" in captured.out


def test_the_command_imports_outside_gc_and_a_python_caller_does_not(run_dir, tmp_path):
    # As tests/test_cli.py's test of the `tfvae` command: main(list) leaves the collector alone,
    # main() (the command) freezes what its imports left; both export, the collector on after.
    model = run_dir / "model.keras"
    code = (
        "import gc, json, sys\n"
        "from export import cli\n"
        f"args = ['tflite', {str(model)!r}, '--part', 'encoder', '--out']\n"
        f"status = cli.main(args + [{str(tmp_path / 'a.tflite')!r}])\n"
        "out = {'python': [status, gc.get_freeze_count(), gc.isenabled()]}\n"
        f"sys.argv = ['tfvae-export'] + args + [{str(tmp_path / 'b.tflite')!r}]\n"
        "out['command'] = [cli.main(), gc.get_freeze_count(), gc.isenabled()]\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["python"] == [0, 0, True], done.stderr
    status, frozen, enabled = out["command"]
    assert status == 0 and enabled and frozen > 100_000
    assert (tmp_path / "a.tflite").is_file() and (tmp_path / "b.tflite").is_file()


def test_entry_point_is_installed():
    executable = shutil.which("tfvae-export")
    if executable is None:
        pytest.skip("tfvae-export is not on PATH (package not installed)")
    done = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "saved-model" in done.stdout and "tflite" in done.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["tflite", "{missing}", "--out", "{tmp}/e.tflite"], ["no such model file"]),
        (["tflite", "{model}", "--out", "{tmp}/e.tflite", "--quantize", "int4"], ["--quantize", "int4"]),
        (["tflite", "{model}", "--out", "{tmp}/e.tflite", "--quantize", "int8"], ["--data"]),
        (["tflite", "{model}", "--out", "{tmp}/e.onnx"], [".tflite"]),
        (["tflite", "{model}", "--out", "{tmp}/e.tflite", "--int8-io"], ["--int8-io"]),
        (["tflite", "{model}", "--out", "{tmp}/e.tflite", "--data", "{tmp}/none.csv"], ["--data", "none.csv"]),
        (["all", "{tmp}"], ["model.keras"]),
        (["saved-model", "{model}"], ["--out"]),
        (["convert", "{model}"], ["convert"]),
        ([], ["COMMAND"]),
    ],
)
def test_bad_input_is_one_line(run_dir, tmp_path, args, words):
    args = [a.format(missing=tmp_path / "missing.keras", model=run_dir / "model.keras", tmp=tmp_path) for a in args]
    done = _command(*args)
    assert done.returncode != 0
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("tfvae-export: error:") and "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr
    assert os.listdir(tmp_path) == []


def test_bad_data_after_loading_is_one_line(run_dir, tmp_path):
    np.save(tmp_path / "narrow.npy", np.zeros((20, 5)))
    done = _command("tflite", run_dir / "model.keras", "--out", tmp_path / "e.tflite", "--data", tmp_path / "narrow.npy")
    assert done.returncode == 2  # bad input (see tfvae._cli)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "--data" in done.stderr and "(batch, 64)" in done.stderr and "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["narrow.npy"]


def test_in_process_errors_are_one_line(run_dir, tmp_path, capsys):
    (tmp_path / "e.tflite").write_bytes(b"old")
    status = cli.main(["tflite", str(run_dir / "model.keras"), "--out", str(tmp_path / "e.tflite")])
    captured = capsys.readouterr()
    assert status != 0 and len(captured.err.splitlines()) == 1 and "--overwrite" in captured.err
    assert (tmp_path / "e.tflite").read_bytes() == b"old"
