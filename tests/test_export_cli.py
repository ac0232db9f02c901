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
        "FILES.md", "decoder.tflite", "encoder.tflite", "encoder_int8.tflite", "files.json", "manifest.json",
        "saved_model", "score.tflite", "score_int8.tflite", "vae.tflite", "vae_int8.tflite",
    ]  # each file carries its metadata; FILES.md and files.json describe them (export.describe), the manifest
    # lists which model wrote them
    assert (out / "saved_model" / "assets" / "tfvae.json").is_file()
    lines = done.stdout.splitlines()
    assert sum(line.startswith("[") and "done" in line for line in lines) == 8  # one progress line per artifact
    table = [line for line in lines if not line.startswith(("[", "parity on", "score thresholds", "warning:"))]
    # The parity table ends at the first blank line (the files' ops follow it).
    table = table[:next((i for i, line in enumerate(table) if not line.strip()), len(table))]
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
    assert "on rows that did not set it" in lines[-1]


@pytest.mark.slow
def test_all_rerun_keeps_what_the_same_model_wrote(run_dir):
    out = run_dir / "export"
    if not out.exists():  # run alone: the first `all` is this test's own
        assert _command("all", run_dir).returncode == 0
    before = {name: (out / name).read_bytes() for name in ("encoder.tflite", "vae_int8.tflite")}
    done = _command("all", run_dir)
    assert done.returncode == 0, done.stderr
    assert sum("kept (written for this model before)" in line for line in done.stdout.splitlines()) == 8
    assert {name: (out / name).read_bytes() for name in before} == before


#: A shorter `all` for the tests below: the SavedModel and two LiteRT files.
FEW = (("encoder.tflite", "encoder", None), ("encoder_int8.tflite", "encoder", "int8"))


def _copy_run(run_dir, folder):
    folder.mkdir()
    for name in ("model.keras", "run.json"):
        shutil.copy(run_dir / name, folder / name)
    return folder


def _weights_of(out):
    return {name: metadata.read(out / name)["model"]["weights_sha256"] for name in sorted(os.listdir(out))
            if name.endswith(".tflite") or name == "saved_model"}


@pytest.mark.slow
def test_all_writes_what_passes_lists_what_fails_and_replaces_an_older_models_files(run_dir, tmp_path, capsys,
                                                                                    monkeypatch):
    from export import acceptance

    run = _copy_run(run_dir, tmp_path / "run")
    out = run / "export"
    monkeypatch.setattr(cli, "ALL_TFLITE", FEW)
    accepted = acceptance.Z_MEAN_SIGMAS
    monkeypatch.setattr(acceptance, "Z_MEAN_SIGMAS", -1.0)  # every int8 encoder now fails the acceptance rule
    status = cli.main(["all", str(run)])
    captured = capsys.readouterr()
    assert status == 1 and len(captured.err.splitlines()) == 1 and "encoder_int8.tflite" in captured.err
    assert "not written: encoder_int8.tflite" in captured.out
    assert sorted(os.listdir(out)) == ["FILES.md", "encoder.tflite", "files.json", "manifest.json", "saved_model"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["encoder_int8.tflite"]["status"] == "failed"
    assert manifest["artifacts"]["encoder.tflite"]["status"] == "written"
    first = (out / "encoder.tflite").read_bytes()

    monkeypatch.setattr(acceptance, "Z_MEAN_SIGMAS", accepted)
    assert cli.main(["all", str(run)]) == 0  # no --overwrite needed: the same model
    captured = capsys.readouterr()
    assert captured.out.count("kept (written for this model before)") == 2 and captured.err == ""
    assert (out / "encoder.tflite").read_bytes() == first and (out / "encoder_int8.tflite").is_file()
    old = set(_weights_of(out).values())

    model = tfvae.load_model(run / "model.keras")  # train on: a new model in the same run folder
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(tfvae.datasets.load("digits", binarize=True)[0][0], epochs=1, batch_size=128, verbose=0)
    model.save(run / "model.keras")
    monkeypatch.setattr(acceptance, "Z_MEAN_SIGMAS", -1.0)
    assert cli.main(["all", str(run)]) == 1
    capsys.readouterr()
    # The new model's int8 file failed: the older model's is gone, not left beside the new files.
    assert sorted(os.listdir(out)) == ["FILES.md", "encoder.tflite", "files.json", "manifest.json", "saved_model"]
    assert set(_weights_of(out).values()) == {metadata.weights_sha256(model)} and not old & set(_weights_of(out).values())

    (out / "encoder.tflite").write_bytes(b"not ours")  # a file tfvae-export did not write
    assert cli.main(["all", str(run)]) != 0
    assert "--overwrite" in capsys.readouterr().err and (out / "encoder.tflite").read_bytes() == b"not ours"


def test_normal_data_sets_the_thresholds_and_contamination_warns(run_dir, tmp_path, capsys):
    _, (raw_test, _) = tfvae.datasets.load("digits", scale=False)
    third = len(raw_test) // 3
    noise = (np.random.default_rng(0).integers(0, 2, (third, 64)) * 16).astype(np.float32)
    np.save(tmp_path / "clean.npy", raw_test)
    np.save(tmp_path / "mixed.npy", np.concatenate([raw_test[third:], noise]))
    for name, warned in (("clean", False), ("mixed", True)):
        out = tmp_path / f"{name}.tflite"
        status = cli.main(["tflite", str(run_dir / "model.keras"), "--part", "score", "--out", str(out),
                           "--normal-data", str(tmp_path / f"{name}.npy")])
        captured = capsys.readouterr()
        assert status == 0, captured.err
        assert ("warning:" in captured.out and "look like they hold anomalies" in captured.out) == warned, name
        thresholds = metadata.read(out)["score_thresholds"]
        assert thresholds["computed_on"] == f"360 rows of {name}.npy"
        assert "did not set it" in captured.out


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_entry_point_is_installed():
    executable = shutil.which("tfvae-export")
    if executable is None:
        pytest.skip("tfvae-export is not on PATH (package not installed)")
    done = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "saved-model" in done.stdout and "tflite" in done.stdout


@pytest.mark.slow
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


@pytest.mark.slow
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
