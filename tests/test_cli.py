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
    assert json.loads((tmp_path / "runs" / "table" / "run.json").read_text())["likelihood"] == "gaussian"


def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path):
    result = _run("train", "--data", "nothing_here", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "`data`" in result.stderr
    assert "Traceback" not in result.stderr


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
