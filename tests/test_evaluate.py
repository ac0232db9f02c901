"""tfvae.evaluate against a model whose log-likelihood is known in closed form.

A linear-Gaussian VAE, z ~ N(0, I) and x | z ~ N(z K + b, s^2 I) (decoder: one
Dense layer with kernel K of shape (d, D)), has the marginal

    p(x) = N(b, K^T K + s^2 I)

and the Gaussian posterior p(z|x) = N((x - b) K^T S / s^2, S) with
S = (I + K K^T / s^2)^-1. Its encoder (`mlp_vae(D, (), d)`: no hidden layer,
linear heads) can represent any Gaussian q with a mean linear in x and a
constant diagonal covariance, so we set q by hand and compare every number
`evaluate` reports with its closed form computed here in float64 numpy.
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow_probability as tfp

import tfvae
from tfvae import cli
from tfvae.evaluation import elbo_parts

tfd = tfp.distributions

SCALE = 0.5
# Rows not orthogonal: the exact posterior is correlated (rho = -0.65), so a
# diagonal q cannot equal it and the ELBO lies strictly below log p(x).
CORRELATED_KERNEL = np.array([[1.0, 0.5, 0.2, -0.3, 0.2], [0.6, 0.2, 0.7, -0.2, 0.5]])
BIAS = np.array([0.3, -0.2, 0.1, 0.0, 0.5])


def _posterior(kernel, scale):
    """Exact posterior covariance S and the matrix A with mean = (x - b) A."""
    precision = np.eye(len(kernel)) + kernel @ kernel.T / scale**2
    covariance = np.linalg.inv(precision)
    return covariance, kernel.T @ covariance / scale**2


def _linear_gaussian_vae(kernel, bias, scale, q_variance):
    """mlp_vae(D, (), d) with decoder (kernel, bias) and q = N(exact posterior mean, diag(q_variance))."""
    latent_dim, input_dim = kernel.shape
    model = tfvae.mlp_vae(input_dim, (), latent_dim, likelihood_scale=scale)
    decoder = model.decoder.layers[-1]
    assert decoder.kernel.shape == kernel.shape and len(model.decoder.layers) == 1
    decoder.kernel.assign(kernel.astype("float32"))
    decoder.bias.assign(bias.astype("float32"))
    _, mean_map = _posterior(kernel, scale)
    model.z_mean_head.kernel.assign(mean_map.astype("float32"))
    model.z_mean_head.bias.assign((-bias @ mean_map).astype("float32"))
    # The head's raw output goes through bound * tanh(. / bound): invert it.
    bound = model.log_sigma_bound
    raw_log_sigma = bound * np.arctanh(0.5 * np.log(q_variance) / bound)
    model.z_log_sigma_head.kernel.assign(np.zeros(kernel.T.shape, "float32"))
    model.z_log_sigma_head.bias.assign(raw_log_sigma.astype("float32"))
    return model


def _exact_log_px(x, kernel, bias, scale):
    return _gaussian_log_prob(x, bias, kernel.T @ kernel + scale**2 * np.eye(kernel.shape[1]))


def _gaussian_log_prob(x, mean, covariance):
    return tfd.MultivariateNormalTriL(mean, np.linalg.cholesky(covariance)).log_prob(x.astype("float64")).numpy()


def _exact_elbo_parts(x, kernel, bias, scale, q_variance):
    """Closed-form E_q[-log p(x|z)] and KL(q || N(0, I)) per example."""
    _, mean_map = _posterior(kernel, scale)
    q_mean = (x - bias) @ mean_map
    residual = x - bias - q_mean @ kernel
    # E_q ||x - b - z K||^2 = ||x - b - m K||^2 + sum_j var_j ||K_j||^2
    expected_squares = np.sum(residual**2, axis=1) + np.sum(q_variance * np.sum(kernel**2, axis=1))
    input_dim = kernel.shape[1]
    reconstruction = 0.5 * input_dim * np.log(2 * np.pi * scale**2) + expected_squares / (2 * scale**2)
    kl = 0.5 * np.sum(q_variance + q_mean**2 - 1 - np.log(q_variance), axis=1)
    return reconstruction, kl


def _sample_x(kernel, bias, scale, n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, kernel.shape[0]))
    return (z @ kernel + bias + scale * rng.normal(size=(n, kernel.shape[1]))).astype("float32")


def test_q_equal_to_the_exact_posterior_gives_log_px_exactly_and_finds_the_dead_unit():
    # Orthogonal rows make the exact posterior diagonal, so q can equal it;
    # then every importance weight equals p(x). The zero third row is a latent
    # unit the decoder ignores: its posterior is the prior, mean 0 for all x.
    kernel = np.array([[1.0, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.8, -0.6, 0.0], [0.0] * 5])
    covariance, _ = _posterior(kernel, SCALE)
    assert np.allclose(covariance, np.diag(np.diag(covariance)))
    model = _linear_gaussian_vae(kernel, BIAS, SCALE, np.diag(covariance))
    x = _sample_x(kernel, BIAS, SCALE, 50, seed=1)
    exact = _exact_log_px(x, kernel, BIAS, SCALE)

    np.testing.assert_allclose(model.log_likelihood(x, importance_samples=1), exact, atol=1e-3)
    results = tfvae.evaluate(model, x, importance_samples=10, elbo_samples=400)
    assert results["nll"] == pytest.approx(-exact.mean(), abs=1e-3)
    # KL(q || p(z|x)) = 0: the ELBO is log p(x) too (up to its sampled reconstruction term).
    assert results["elbo"] == pytest.approx(exact.mean(), abs=0.05)
    assert results["bits_per_dim"] == pytest.approx(-exact.mean() / (5 * math.log(2)), abs=1e-3)
    assert results["active_unit_indices"] == [0, 1] and results["active_units"] == 2
    assert results["posterior_mean_variance"][2] == pytest.approx(0.0, abs=1e-10)


def test_k1000_estimate_matches_the_exact_log_likelihood_and_the_elbo_is_below_it():
    covariance, _ = _posterior(CORRELATED_KERNEL, SCALE)
    # q has the exact posterior mean and the posterior's marginal variances:
    # not the posterior (which is correlated), so KL(q || p(z|x)) = 0.45 nats
    # for every x, but wide enough that importance weights have finite variance.
    q_variance = np.diag(covariance)
    model = _linear_gaussian_vae(CORRELATED_KERNEL, BIAS, SCALE, q_variance)
    x = _sample_x(CORRELATED_KERNEL, BIAS, SCALE, 200, seed=2)
    exact = _exact_log_px(x, CORRELATED_KERNEL, BIAS, SCALE)
    reconstruction, kl = _exact_elbo_parts(x, CORRELATED_KERNEL, BIAS, SCALE, q_variance)
    exact_elbo = -(reconstruction + kl)
    assert exact_elbo.mean() < exact.mean() - 0.4  # the setting has a real gap to close

    results = tfvae.evaluate(model, x, importance_samples=1000, elbo_samples=400, seed=0)

    # The k=1000 estimate closes the 0.45-nat gap to within 0.01 nats on average.
    assert results["nll"] == pytest.approx(-exact.mean(), abs=0.01)
    assert results["nll_standard_error"] == pytest.approx(np.std(exact) / math.sqrt(len(x)), rel=0.05)
    # The ELBO and its parts match their closed forms, and the ELBO is below log p(x).
    assert results["kl"] == pytest.approx(kl.mean(), abs=1e-4)
    assert results["reconstruction"] == pytest.approx(reconstruction.mean(), abs=0.02)
    assert results["elbo"] == pytest.approx(exact_elbo.mean(), abs=0.02)
    assert results["elbo"] < -results["nll"] - 0.4
    # Per example too: typically within 0.03 nats of its exact log p(x), never far off.
    error = np.abs(model.log_likelihood(x, importance_samples=1000, seed=0) - exact)
    assert np.median(error) < 0.03 and np.max(error) < 0.25, (np.median(error), np.max(error))
    # Few samples give a visibly looser bound: k matters.
    few = tfvae.evaluate(model, x, importance_samples=2, elbo_samples=10, seed=0)
    assert few["nll"] > results["nll"] + 0.1


def test_trained_linear_vae_with_a_learned_scale_matches_its_exact_log_likelihood():
    # Fit the linear VAE (learned per-feature scale) to data from a linear
    # Gaussian; then compare with the exact marginal of the learned weights.
    x = _sample_x(CORRELATED_KERNEL, BIAS, SCALE, 512, seed=3)
    model = tfvae.mlp_vae(5, (), 2)
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    model.fit(x, epochs=60, batch_size=128, verbose=0)
    decoder = model.decoder.layers[-1]
    kernel, bias = decoder.kernel.numpy().astype("float64"), decoder.bias.numpy().astype("float64")
    scale = model.likelihood(np.zeros((1, 2), "float32")).stddev().numpy()[0].astype("float64")
    assert not np.allclose(scale, scale[0])  # the scales really are learned per feature
    exact = _gaussian_log_prob(x, bias, kernel.T @ kernel + np.diag(scale**2))

    results = tfvae.evaluate(model, x, importance_samples=1000, seed=0)

    assert results["nll"] == pytest.approx(-exact.mean(), abs=0.01)
    # Trained, q is close to the exact posterior and the gap nearly closed: the
    # ELBO is below log p(x) up to the sampling noise of its reconstruction term.
    assert results["elbo"] <= exact.mean() + 0.01


def test_same_seed_same_numbers_other_seed_other_samples_and_json_ready(digits):
    (_, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    first = tfvae.evaluate(model, x_test[:40], importance_samples=20, seed=5)
    other = tfvae.evaluate(model, x_test[:40], importance_samples=20, seed=6)
    assert first == tfvae.evaluate(model, x_test[:40], importance_samples=20, seed=5)
    # Another seed draws other samples: estimates of the same numbers, not copies.
    assert other["nll"] != first["nll"] and other["elbo"] != first["elbo"]
    assert other["nll"] == pytest.approx(first["nll"], abs=1.0)
    assert json.loads(json.dumps(first)) == first
    table = tfvae.format_evaluation(first)
    for text in ("ELBO", "NLL, k=20", f"{first['nll']:.2f}", "bits per dimension", "active units"):
        assert text in table
    assert len(table.splitlines()) == 10


def test_the_evaluation_functions_are_traced_once_for_every_batch_size(digits, monkeypatch):
    # 50 examples in batches of 16 end with a batch of 2: one trace serves them all.
    (_, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    traces = []
    posterior = model.posterior
    monkeypatch.setattr(model, "posterior", lambda *args, **kwargs: traces.append(1) or posterior(*args, **kwargs))
    reconstruction, kl, _ = elbo_parts(model, x_test[:50], elbo_samples=4, batch_size=16)
    assert len(traces) == 1 and reconstruction.shape == kl.shape == (50,)
    log_px = model.log_likelihood(x_test[:50], importance_samples=20, batch_size=16, samples_per_chunk=8, seed=0)
    assert model._log_weights_chunk.experimental_get_tracing_count() == 1 and log_px.shape == (50,)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"importance_samples": 0}, "importance_samples=0"),
        ({"x": np.zeros((3, 7))}, "shape"),
        ({"labels": [1, 2]}, "labels"),
        ({"active_threshold": -1.0}, "active_threshold=-1.0"),
    ],
)
def test_bad_arguments_are_named(kwargs, pattern):
    model = tfvae.mlp_vae(6, (4,), 2)
    arguments = {"x": np.zeros((3, 6)), **kwargs}
    with pytest.raises(ValueError, match=pattern):
        tfvae.evaluate(model, **arguments)
    with pytest.raises(TypeError, match="model"):
        tfvae.evaluate("model.keras", np.zeros((3, 6)))


def test_conditional_model_needs_its_labels(digits):
    (_, _), (x_test, y_test) = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli", num_classes=10)
    with pytest.raises(ValueError, match="labels"):
        tfvae.evaluate(model, x_test[:10], importance_samples=5)
    results = tfvae.evaluate(model, x_test[:10], labels=y_test[:10], importance_samples=5)
    assert np.isfinite(results["nll"])


def test_cli_trains_a_conditional_iwae_run_and_evaluates_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", "--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--iwae-samples", "3",
            "--conditional", "--out", str(run_dir)]
    assert cli.main(argv) == 0
    options = json.loads((run_dir / "run.json").read_text())
    assert options["iwae_samples"] == 3 and options["conditional"] is True
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.iwae_samples == 3 and model.num_classes == 10
    capsys.readouterr()

    assert cli.main(["evaluate", str(run_dir), "--importance-samples", "7"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((run_dir / "evaluation.json").read_text())
    assert results["importance_samples"] == 7 and results["num_examples"] == 360
    assert f"{results['nll']:.2f}" in printed and "NLL, k=7" in printed

    assert cli.main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "run_dir" in capsys.readouterr().err
