"""The `tfvae` command: once in a fresh process as a user runs it, the rest in-process."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tfvae import cli


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tfvae", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_writes_a_run_folder(tmp_path):
    result = _run("train", "--epochs", "2", "--hidden", "16", "--latent-dim", "2", "--out", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test ELBO:" in result.stdout
    run = tmp_path / "run"
    for name in ("model.keras", "history.csv", "run.json", "metrics.json", "loss.png", "reconstructions.png",
                 "samples.png", "latent.png"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["elbo"] < 0 and np.isclose(metrics["elbo"], -(metrics["reconstruction"] + metrics["kl"]))
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3


def test_train_on_a_csv_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "table.csv", rng.normal(size=(40, 5)), delimiter=",")
    status = cli.main(["train", "--data", "table.csv", "--epochs", "1", "--hidden", "4", "--latent-dim", "2"])
    assert status == 0, capsys.readouterr().err
    options = json.loads((tmp_path / "runs" / "table" / "run.json").read_text())
    assert options["likelihood"] == "gaussian"
    assert options["data"] == str(tmp_path / "table.csv")  # absolute: evaluate and export work from anywhere


@pytest.mark.slow
def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path):
    result = _run("train", "--data", "nothing_here", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "`data`" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_command_imports_outside_gc_and_a_python_caller_does_not(tmp_path):
    # main(list) from Python leaves the collector alone; main() reads sys.argv as the command
    # does, imports with the collector off and freezes what the imports left (the bad run
    # folder then ends both with exit status 2). The collector is on again after, unless it
    # was off before.
    code = (
        "import gc, json, sys\n"
        "from tfvae import _cli, cli\n"
        "out = {'python': [cli.main(['evaluate', 'no_such_run']), gc.get_freeze_count(), gc.isenabled()]}\n"
        "sys.argv = ['tfvae', 'evaluate', 'no_such_run']\n"
        "out['command'] = [cli.main(), gc.get_freeze_count(), gc.isenabled()]\n"
        "gc.disable()\n"
        "with _cli.start_up_outside_gc():\n"
        "    inside = gc.isenabled()\n"
        "out['disabled before'] = [inside, gc.isenabled()]\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["python"] == [2, 0, True], result.stderr
    status, frozen, enabled = out["command"]
    assert status == 2 and enabled
    assert frozen > 100_000  # TensorFlow, Keras and TFP's objects (about 500,000 measured)
    assert out["disabled before"] == [False, False]


@pytest.mark.slow
def test_a_ctrl_c_during_the_commands_imports_is_raised_after_them():
    # tfvae._cli.ctrl_c_held: the block goes on after the SIGINT, which is raised at its end;
    # where SIGINT is ignored it stays ignored and nothing is raised.
    code = (
        "import os, signal\n"
        "from tfvae import _cli\n"
        "def run():\n"
        "    done = []\n"
        "    try:\n"
        "        with _cli.ctrl_c_held():\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "            done.append('after the signal')\n"
        "    except KeyboardInterrupt:\n"
        "        done.append('raised at the end')\n"
        "    return done\n"
        "print(run(), signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print(run(), signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert result.stdout.splitlines() == [
        "['after the signal', 'raised at the end'] True",
        "['after the signal'] True",
    ], result.stderr


def test_bad_option_value_is_named_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["train", "--latent-dim", "0", "--epochs", "1"])
    err = capsys.readouterr().err
    assert status != 0 and len(err.splitlines()) == 1 and "latent_dim=0" in err
    assert not os.path.exists(tmp_path / "runs" / "digits" / "model.keras")


# ------------------------------------------------- image folders, validation, messages (issue: own data)


def _write_pngs(folder, n, shape=(16, 24, 3), seed=0):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        Image.fromarray(pixels[..., 0] if shape[-1] == 1 else pixels).save(folder / f"{i:03d}.png")
    return folder


def _help(argv, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv)
    return " ".join(capsys.readouterr().out.split())


def test_every_help_shows_the_defaults_and_the_main_help_names_tfvae_export(capsys):
    from tfvae import resumable

    main = _help(["--help"], capsys)
    assert "tfvae-export --help" in main
    train = _help(["train", "--help"], capsys)
    for option, default in (("--epochs", "150"), ("--batch-size", "64"), ("--memory-budget", "2GB"),
                            ("--validation-split", "0.0"), ("--early-stopping", "None"), ("--body", "auto"),
                            ("--backup-every", str(resumable.BACKUP_EVERY))):
        assert f"{option}" in train and f"(default: {default})" in train.split(option, 2)[-1], option
    evaluate = _help(["evaluate", "--help"], capsys)
    assert "(default: 1000)" in evaluate and "(default: 0)" in evaluate


def test_a_missing_data_file_says_no_such_file_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["train", "--data", "bc.csv", "--epochs", "1"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "No such file or folder: " + str(tmp_path / "bc.csv") in err and "check the path" in err


def _run_folder(tmp_path, data, model):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": str(data), "likelihood": "gaussian", "seed": 0}))
    model.save(run / "model.keras")
    return run


def test_a_moved_data_file_is_named_with_what_to_do(tmp_path, capsys):
    import tfvae

    run = _run_folder(tmp_path, tmp_path / "moved_away.csv", tfvae.mlp_vae(5, (4,), 2))
    status = cli.main(["evaluate", str(run), "--importance-samples", "2"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1, err
    assert str(tmp_path / "moved_away.csv") in err and "no longer there" in err and "move it back" in err
    assert str(run / "run.json") in err


def test_data_of_another_width_than_the_model_is_named_with_what_to_do(tmp_path, capsys):
    import tfvae

    np.savetxt(tmp_path / "table.csv", np.random.default_rng(0).normal(size=(30, 4)), delimiter=",")
    run = _run_folder(tmp_path, tmp_path / "table.csv", tfvae.mlp_vae(5, (4,), 2))
    status = cli.main(["evaluate", str(run), "--importance-samples", "2"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "rows of shape (5,)" in err and "now have shape (4,)" in err and "Restore the data" in err


def test_early_stopping_without_a_validation_split_is_refused(tmp_path, capsys):
    status = cli.main(["train", "--early-stopping", "3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "--validation-split 0.1" in err, err


@pytest.mark.slow
def test_train_on_a_folder_of_pngs_in_memory_and_streamed_then_evaluate_elsewhere(tmp_path, monkeypatch, capsys):
    folder = _write_pngs(tmp_path / "pngs", 40)
    monkeypatch.chdir(tmp_path)
    common = ["train", "--data", "pngs", "--epochs", "1", "--filters", "4,8", "--latent-dim", "2", "--batch-size", "8"]
    assert cli.main([*common, "--out", "in_memory"]) == 0, capsys.readouterr().err
    # 40 images of 16x24x3 float32 take 184,320 bytes decoded: a 100KB budget streams them.
    assert cli.main([*common, "--out", "streamed", "--memory-budget", "100KB"]) == 0, capsys.readouterr().err
    for run in ("in_memory", "streamed"):
        options = json.loads((tmp_path / run / "run.json").read_text())
        assert options["data"] == str(folder) and options["body"] == "conv" and options["likelihood"] == "bernoulli"
        model = __import__("tfvae").load_model(tmp_path / run / "model.keras")
        assert model.event_shape == (16, 24, 3)
        assert (tmp_path / run / "reconstructions.png").exists()
    monkeypatch.chdir(tmp_path / "in_memory")  # the absolute path in run.json is found from anywhere
    assert cli.main(["evaluate", str(tmp_path / "streamed"), "--importance-samples", "2"]) == 0, capsys.readouterr().err


@pytest.mark.slow
def test_validation_split_and_early_stopping(tmp_path, capsys):
    from tfvae import run

    result = run.train(out=tmp_path / "run", hidden=(8,), latent_dim=2, epochs=40, learning_rate=0.05,
                       validation_split=0.2, early_stopping=1, verbose=0)
    history = result["history"]
    assert "val_loss" in history.history
    assert history.params["steps"] == -(-1150 // 64)  # 1,437 training digits, 287 held out to validate on
    assert len(history.history["loss"]) < 40  # stopped early
    assert json.loads((tmp_path / "run" / "run.json").read_text())["early_stopping"] == 1


def test_train_choices_come_from_the_registries():
    from tfvae import _cli, likelihoods, objectives, priors

    parser = cli.build_parser()
    for flag, registry in (("--prior", priors.PRIORS), ("--objective", objectives.OBJECTIVES),
                           ("--likelihood", likelihoods.LIKELIHOODS)):
        for name in registry.names():
            assert getattr(parser.parse_args(["train", flag, name]), flag[2:]) == name
        with pytest.raises(_cli.UsageError) as refused:
            parser.parse_args(["train", flag, "nope"])
        assert all(repr(name) in str(refused.value) for name in registry.names())


def test_train_with_a_prior_an_objective_and_a_count_likelihood(tmp_path, monkeypatch, capsys):
    import tfvae

    monkeypatch.chdir(tmp_path)
    status = cli.main(["train", "--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--prior", "vamp",
                       "--objective", "beta_tcvae", "--beta", "3", "--likelihood", "poisson", "--out", "run"])
    assert status == 0, capsys.readouterr().err
    options = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (options["prior"], options["objective"], options["likelihood"]) == ("vamp", "beta_tcvae", "poisson")
    model = tfvae.load_model(tmp_path / "run" / "model.keras")
    assert type(model.prior).__name__ == "VampPrior" and model.objective.beta == 3.0
    assert model.objective.dataset_size == 1437 and model.preprocessing.get("divisor", 1) == 1  # raw counts


def test_every_argument_of_run_train_is_a_flag_with_its_default():
    import inspect

    from tfvae import cli, run

    parsed = vars(cli.build_parser().parse_args(["train"]))
    for name, parameter in inspect.signature(run.train).parameters.items():
        if name in ("verbose", "callbacks"):  # Python-only: progress output and Keras callbacks
            continue
        assert name in parsed, f"run.train's {name!r} has no tfvae train flag"
        assert parsed[name] == parameter.default, (name, parsed[name], parameter.default)
    assert {name: parsed[name] for name in run.DEFAULTS} == run.DEFAULTS
