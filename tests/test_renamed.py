"""Renamed arguments: `iwae_samples` (training) and `importance_samples` (evaluation) under their old name."""

import warnings

import numpy as np
import pytest

import tfvae
from tfvae import _renamed, cli


def test_old_cli_flags_still_work_and_say_so_in_one_line(capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["train", "--iwae-samples", "3"]).iwae_samples == 3
    assert parser.parse_args(["train"]).iwae_samples == 1
    assert parser.parse_args(["evaluate", "runs/x"]).importance_samples == 1000
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["train", "--num-samples", "3"]).iwae_samples == 3
    assert capsys.readouterr().err == "tfvae train: --num-samples is deprecated; use --iwae-samples\n"
    assert parser.parse_args(["evaluate", "runs/x", "--num-samples", "7"]).importance_samples == 7
    assert capsys.readouterr().err == "tfvae evaluate: --num-samples is deprecated; use --importance-samples\n"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "--iwae-samples" in help_text and "--num-samples" not in help_text


def _renamed_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if "is deprecated; use" in str(w.message)]


def test_old_keywords_still_work_warn_once_at_the_callers_line():
    x = np.random.default_rng(0).random((5, 6)).astype("float32")
    model, caught = _renamed_warnings(lambda: tfvae.mlp_vae(6, (4,), 2, num_samples=3))
    assert model.iwae_samples == 3 and model.objective.num_samples == 3
    assert [str(w.message) for w in caught] == ["`num_samples` is deprecated; use `iwae_samples`"]
    assert caught[0].filename == __file__  # where a user would change it, shown by Python's default filters
    new = model.log_likelihood(x, importance_samples=4, seed=0)
    old, caught = _renamed_warnings(lambda: model.log_likelihood(x, num_samples=4, seed=0))
    np.testing.assert_array_equal(old, new)
    assert [str(w.message) for w in caught] == ["`num_samples` is deprecated; use `importance_samples`"]
    assert caught[0].filename == __file__
    new = tfvae.evaluate(model, x, importance_samples=4, elbo_samples=2)
    old, caught = _renamed_warnings(lambda: tfvae.evaluate(model, x, num_samples=4, elbo_samples=2))
    assert old == new and new["importance_samples"] == 4 and len(caught) == 1


def test_both_names_at_once_are_refused():
    model = tfvae.mlp_vae(6, (4,), 2)
    with pytest.raises(TypeError, match="both `importance_samples` and its old name `num_samples`"):
        tfvae.evaluate(model, np.zeros((3, 6)), importance_samples=5, num_samples=5)
    with pytest.raises(TypeError, match="both `iwae_samples` and its old name `num_samples`"):
        tfvae.mlp_vae(6, (4,), 2, iwae_samples=2, num_samples=2)


def test_new_names_warn_nothing_and_silent_renames_stay_silent(recwarn):
    assert _renamed.new_keywords({"iwae_samples": 4}, {"num_samples": "iwae_samples"}) == {"iwae_samples": 4}
    assert _renamed.new_keywords({"num_samples": 2}, {"num_samples": "iwae_samples"}, warn=False) == {
        "iwae_samples": 2}
    assert not recwarn.list


def test_an_evaluation_of_the_previous_release_still_formats():
    results = tfvae.evaluate(tfvae.mlp_vae(6, (4,), 2), np.zeros((3, 6)), importance_samples=3, elbo_samples=1)
    old = {("num_samples" if key == "importance_samples" else key): value for key, value in results.items()}
    assert tfvae.format_evaluation(old) == tfvae.format_evaluation(results)
    assert "NLL, k=3 importance samples" in tfvae.format_evaluation(old)


# Every `tfvae` and `tfvae-export` command of the previous release's README (release of 2026-11-26).
PREVIOUS_README_COMMANDS = [
    "tfvae train",
    "tfvae-export all runs/digits",
    "tfvae-export saved-model runs/digits/model.keras --out out/saved_model --data digits",
    "tfvae-export tflite runs/digits/model.keras --part encoder --quantize int8 --data digits "
    "--out out/encoder_int8.tflite",
    "tfvae evaluate runs/digits",
    "tfvae train --num-samples 5 --out runs/iwae5",
    "tfvae evaluate runs/iwae5",
    "tfvae train --data digits --strategy multi-worker --batch-size 256 --out runs/digits",
]


@pytest.mark.parametrize("command", PREVIOUS_README_COMMANDS)
def test_the_previous_readmes_commands_still_parse(command, capsys):
    from export.cli import build_parser as export_parser

    program, *argv = command.split()
    args = (cli.build_parser() if program == "tfvae" else export_parser()).parse_args(argv)
    if "--num-samples" in argv:
        assert args.iwae_samples == 5 and "deprecated; use --iwae-samples" in capsys.readouterr().err
