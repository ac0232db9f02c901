"""One harness over every registered part: posteriors, priors, likelihoods, objectives.

A new part registered in its family's registry is picked up by these tests
without editing them (an objective must add its independent reference in
`OBJECTIVE_REFERENCES`, which a test checks). The variants trained on data
of their kind, evaluated and exported are at the end, marked slow.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
import tfvae
from tfvae import latent, likelihoods, objectives, priors, scores
from tfvae.registry import serialize

FAMILIES = {"posterior": latent.POSTERIORS, "prior": priors.PRIORS, "likelihood": likelihoods.LIKELIHOODS}
MODEL_PARTS = [(family, name) for family, registry in FAMILIES.items() for name in registry.names()]
FEATURES, LATENT = 6, 2


def _data(likelihood_name, rows=32, seed=0):
    """Rows of the kind a likelihood models: binary, real, or counts 0..16."""
    rng = np.random.default_rng(seed)
    if likelihood_name == "bernoulli":  # two patterns with 5% of the pixels flipped: something to learn
        patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], "float32")[rng.integers(0, 2, rows)]
        return np.abs(patterns - (rng.uniform(size=(rows, FEATURES)) < 0.05)).astype("float32")
    if likelihood_name == "poisson":
        return rng.integers(0, 17, (rows, FEATURES)).astype("float32")
    return rng.normal(size=(rows, FEATURES)).astype("float32")


def _tiny_vae(prior=None, likelihood="bernoulli", objective=None, num_components=3):
    """6 -> 4 -> (2, 2) -> 4 -> 6 x params_per_feature, with the part under test."""
    encoder = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(4, "tanh")])
    width = FEATURES * likelihoods.params_per_feature(likelihood)
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(width)])
    if prior in ("vamp", "mixture"):
        prior = {"class_name": prior, "config": {"num_components": num_components}}
    return tfvae.VAE(encoder, decoder, LATENT, likelihood=likelihood, prior=prior, objective=objective)


def _model_for(family, name):
    if family == "prior":
        return _tiny_vae(prior=name), "bernoulli"
    if family == "likelihood":
        return _tiny_vae(likelihood=name), name
    return _tiny_vae(), "bernoulli"  # the posterior family: every model has one


def _part(model, family):
    return {"posterior": model.latent, "prior": model.prior, "likelihood": model.likelihood_layer}[family]


@pytest.mark.parametrize("family, name", MODEL_PARTS)
def test_part_shapes(family, name):
    model, kind = _model_for(family, name)
    x = _data(kind, rows=5)
    part = _part(model, family)
    assert FAMILIES[family].name_of(part) == name
    z_mean, z_log_sigma = model.encode(x)
    assert z_mean.shape == z_log_sigma.shape == (5, LATENT)
    assert model.decode(z_mean).shape == (5, FEATURES)
    assert model.sample(3, seed=1).shape == (3, FEATURES)
    assert model.elbo(x).shape == model.elbo(x, sample=False).shape == (5,)
    assert model.prior.distribution(model).event_shape == [LATENT]
    assert model.likelihood(z_mean).batch_shape == [5]
    assert tuple(model.decoder.output_shape[1:]) == model.likelihood_layer.params_shape()
    assert np.all(np.isfinite(scores.anomaly_score(model, x)))


@pytest.mark.parametrize("family, name", MODEL_PARTS)
def test_part_config_round_trip_through_keras_file_in_safe_mode(family, name, tmp_path):
    model, kind = _model_for(family, name)
    x = _data(kind, rows=8)
    model.compile()
    model.fit(x, epochs=1, batch_size=8, verbose=0)  # weights away from their initial values
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(_part(loaded, family)) is type(_part(model, family))
    assert _part(loaded, family).get_config() == _part(model, family).get_config()
    np.testing.assert_allclose(loaded.elbo(x, sample=False), model.elbo(x, sample=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores.anomaly_score(loaded, x), scores.anomaly_score(model, x), rtol=1e-5, atol=1e-5)
    # The family's get() reads the part back from its serialized form, and returns an instance as is.
    part = _part(model, family)
    again = FAMILIES[family].get(serialize(part))
    assert type(again) is type(part) and again.get_config() == part.get_config()
    assert FAMILIES[family].get(part) is part


@pytest.mark.parametrize("family, name", MODEL_PARTS)
def test_part_one_training_step_moves_its_weights(family, name):
    model, kind = _model_for(family, name)
    x = _data(kind, rows=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [weight.numpy().copy() for weight in model.trainable_weights]
    logs = model.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(logs["loss"][0])
    moved = [not np.array_equal(old, weight.numpy()) for old, weight in zip(before, model.trainable_weights)]
    assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]
    own = _part(model, family).trainable_weights
    assert all(any(w is v for v in model.trainable_weights) for w in own)  # the part's weights train too


@pytest.mark.slow
@pytest.mark.parametrize("family, name", MODEL_PARTS)
def test_part_float32_litert_export_matches_keras(family, name, tmp_path):
    model, kind = _model_for(family, name)
    x = _data(kind, rows=32)
    model.compile()
    model.fit(x, epochs=2, batch_size=16, verbose=0)
    report = export.tflite(model, tmp_path / "vae.tflite", part="vae", parity_data=x)  # raises if it disagrees
    assert not any("FLEX" in op or "CUSTOM" in op for op in report.ops)
    assert not any("RANDOM" in op or "MULTINOMIAL" in op for op in report.ops)
    assert set(report.signatures["sample"]["inputs"]) == set(model.prior.noise_names)
    score = next(row for row in report.parity if row.signature == "score")
    assert score.max_relative_error <= 1e-4


# ------------------------------------------------------------------ objectives


def _by_hand(model, x, seed):
    """The pieces of every objective, computed with numpy from the bodies' weights and the same noise.

    Returns:
        `(reconstruction, analytic_kl, log_q, log_p)` per example, for a
        Bernoulli model with the N(0, I) prior: -log p(x|z), KL(q || N(0, I)),
        log q(z|x) and log N(z; 0, I) at the model's sample z.
    """
    features = model.encoder(x).numpy()
    z_mean = features @ model.z_mean_head.kernel.numpy() + model.z_mean_head.bias.numpy()
    raw = features @ model.z_log_sigma_head.kernel.numpy() + model.z_log_sigma_head.bias.numpy()
    bound = model.log_sigma_bound
    log_sigma = bound * np.tanh(raw / bound)
    epsilon = tf.random.stateless_normal(z_mean.shape, seed, alg="philox").numpy()
    z = z_mean + np.exp(log_sigma) * epsilon
    logits = model.decoder(z.astype("float32")).numpy()
    log_px = np.sum(x * logits - np.logaddexp(0.0, logits), axis=1)
    kl = np.sum(0.5 * (np.exp(2 * log_sigma) + z_mean**2 - 1.0) - log_sigma, axis=1)
    log_q = np.sum(-0.5 * epsilon**2 - log_sigma - 0.5 * np.log(2 * np.pi), axis=1)
    log_p = np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), axis=1)
    return -log_px, kl, log_q, log_p


#: name -> (the objective in its reference setting, its loss from the pieces computed by hand).
OBJECTIVE_REFERENCES = {
    "elbo": (objectives.ELBO(), lambda rec, kl, log_q, log_p: rec + kl),
    # IWAE with k = 1 is the one-sample ELBO with a Monte Carlo KL.
    "iwae": (objectives.IWAE(num_samples=1), lambda rec, kl, log_q, log_p: rec + log_q - log_p),
    # With alpha = beta = gamma = 1 the decomposition adds up to log q(z|x) - log p(z): the minibatch
    # estimator of log q(z) cancels.
    "beta_tcvae": (objectives.BetaTCVAE(1.0, 1.0, 1.0, dataset_size=1000),
                   lambda rec, kl, log_q, log_p: rec + log_q - log_p),
}


def test_every_registered_objective_has_a_reference():
    assert set(OBJECTIVE_REFERENCES) == set(objectives.OBJECTIVES.names())


@pytest.mark.parametrize("name", objectives.OBJECTIVES.names())
def test_objective_loss_equals_an_independent_computation(name):
    objective, reference = OBJECTIVE_REFERENCES[name]
    assert objectives.get(name).__class__ is type(objective)
    model = _tiny_vae(objective=objective)
    x = _data("bernoulli", rows=16)
    seed = tf.constant([3, 4], tf.int32)
    loss, metrics = objective(model, tf.constant(x), None, False, seed)
    assert set(metrics) == set(objective.metric_names)
    np.testing.assert_allclose(loss, reference(*_by_hand(model, x, seed)), rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_the_elbo_and_its_monte_carlo_forms_agree_on_average():
    """IWAE(1) and beta-TCVAE(1, 1, 1) estimate the analytic-KL ELBO without bias: over many draws they agree."""
    model = _tiny_vae()
    x = tf.constant(_data("bernoulli", rows=4))
    draws = 2000
    losses = {}
    for name, (objective, _) in OBJECTIVE_REFERENCES.items():
        one_draw = tf.function(lambda seed, objective=objective: objective(model, x, None, False, seed)[0])
        losses[name] = np.array([one_draw(tf.constant([seed, 7], tf.int32)) for seed in range(draws)])
    for name in ("iwae", "beta_tcvae"):
        standard_error = losses[name].std(axis=0) / np.sqrt(draws)
        assert np.all(np.abs(losses[name].mean(axis=0) - losses["elbo"].mean(axis=0)) < 5 * standard_error), name


def test_beta_tcvae_weights_change_the_loss():
    x = tf.constant(_data("bernoulli", rows=16))
    seed = tf.constant([1, 2], tf.int32)
    model = _tiny_vae()
    ones, _ = objectives.BetaTCVAE(1.0, 1.0, 1.0)(model, x, None, False, seed)
    heavy, terms = objectives.BetaTCVAE(1.0, 6.0, 1.0)(model, x, None, False, seed)
    np.testing.assert_allclose(heavy - ones, 5.0 * terms["total_correlation"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", objectives.OBJECTIVES.names())
def test_objective_gradients_reach_every_trainable_weight(name):
    objective, _ = OBJECTIVE_REFERENCES[name]
    model = _tiny_vae(objective=objective)
    x = tf.constant(_data("bernoulli", rows=16))
    with tf.GradientTape() as tape:
        loss, _ = objective(model, x, None, True, tf.constant([5, 6], tf.int32))
        loss = tf.reduce_mean(loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, gradients) if g is None or not np.any(g.numpy())]
    assert not missing


@pytest.mark.parametrize("name", objectives.OBJECTIVES.names())
def test_a_few_steps_lower_the_objective(name):
    model = _tiny_vae(objective=objectives.get(name, dataset_size=64))
    x = _data("bernoulli", rows=64)
    model.compile(optimizer=keras.optimizers.Adam(2e-2))
    keras.utils.set_random_seed(0)
    before = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    model.fit(x, epochs=40, batch_size=64, verbose=0)
    after = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert after < before - 0.5, (before, after)


def test_objective_metrics_are_the_models_metrics():
    model = _tiny_vae(objective="beta_tcvae")
    model.compile()
    logs = model.fit(_data("bernoulli", rows=16), epochs=1, batch_size=16, verbose=0).history
    assert set(logs) == {"loss", *objectives.BetaTCVAE.metric_names}


def test_shortcuts_build_the_same_objective_and_refuse_to_mix():
    model = _tiny_vae(objective=None)
    assert isinstance(model.objective, objectives.ELBO)
    shortcut = tfvae.mlp_vae(FEATURES, (4,), LATENT, iwae_samples=3, beta=0.5)
    assert isinstance(shortcut.objective, objectives.IWAE) and shortcut.objective.get_config() == {
        "num_samples": 3, "beta": 0.5, "kl_warmup_steps": 0}
    assert "objective" not in shortcut.get_config() and "prior" not in shortcut.get_config()
    with pytest.raises(ValueError, match="`objective`"):
        tfvae.mlp_vae(FEATURES, (4,), LATENT, beta=2.0, objective="elbo")


def test_a_decoder_of_the_wrong_width_for_the_likelihood_is_refused():
    with pytest.raises(ValueError, match=r"`decoder`.*\(batch, 12\).*2 per feature"):
        tfvae.VAE(keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(4)]),
                  keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(FEATURES)]),
                  LATENT, likelihood="gaussian_per_pixel")


def test_unknown_parts_are_named():
    with pytest.raises(ValueError, match="`prior`.*'cauchy'"):
        tfvae.mlp_vae(FEATURES, (4,), LATENT, prior="cauchy")
    with pytest.raises(ValueError, match="`objective`.*'vq'"):
        tfvae.mlp_vae(FEATURES, (4,), LATENT, objective="vq")
    with pytest.raises(TypeError, match="`prior`"):
        tfvae.mlp_vae(FEATURES, (4,), LATENT, prior=3)


# ------------------------------------------- each variant on data of its kind


def _digits(kind):
    """Digits as the variant models them: binarized, scaled to [0, 1], or raw pixel counts 0..16."""
    options = {"binary": dict(binarize=True), "scaled": dict(), "counts": dict(scale=False)}[kind]
    (x_train, _), (x_test, _) = tfvae.datasets.load("digits", **options)
    return x_train, x_test


VARIANTS = {
    "vamp_prior": (dict(likelihood="bernoulli", prior=priors.VampPrior(20)), "binary"),
    "mixture_prior": (dict(likelihood="bernoulli", prior=priors.MixtureOfGaussians(5)), "binary"),
    "per_pixel_gaussian": (dict(likelihood="gaussian_per_pixel"), "scaled"),
    "poisson_counts": (dict(likelihood="poisson"), "counts"),
    "beta_tcvae": (dict(likelihood="bernoulli", objective=objectives.BetaTCVAE(beta=4.0, dataset_size=1437)),
                   "binary"),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_fits_evaluates_and_exports_with_parity(variant, tmp_path):
    from export import _litert

    options, kind = VARIANTS[variant]
    x_train, x_test = _digits(kind)
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(64, (64,), 4, **options)
    untrained = tfvae.evaluate(model, x_test, importance_samples=20)
    model.compile()
    history = model.fit(x_train, epochs=30, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    results = tfvae.evaluate(model, x_test, importance_samples=20)
    assert np.isfinite(results["nll"]) and results["nll"] < untrained["nll"] - 1.0, (untrained["nll"], results["nll"])

    saved = export.saved_model(model, tmp_path / "saved_model", parity_data=x_test)
    assert {row.signature for row in saved.parity} >= {"score", "sample"}
    report = export.tflite(model, tmp_path / "vae.tflite", part="vae", parity_data=x_test)
    assert not any("FLEX" in op or "CUSTOM" in op or "RANDOM" in op for op in report.ops)
    # The exported score is the model's own: -log p(x|z_mean) with its likelihood, plus the KL to its prior
    # (analytic where the prior has one, else its estimate at z_mean).
    x = x_test[:50]
    served = _litert.run((tmp_path / "vae.tflite").read_bytes(), "score", {"x": x})["score"]
    z_mean, z_log_sigma = model.encode(x)
    posterior = model.posterior(x)
    kl = model.prior.kl(posterior, model)
    if kl is None:
        kl = posterior.log_prob(z_mean) - model.prior.distribution(model).log_prob(z_mean)
    own = (kl - model.likelihood(z_mean).log_prob(x)).numpy()
    np.testing.assert_allclose(served, own, rtol=1e-4, atol=1e-3)
    if "prior" in variant:  # not the N(0, I) score
        standard = own + model.prior.distribution(model).log_prob(z_mean).numpy() - np.sum(
            -0.5 * z_mean.numpy() ** 2 - 0.5 * np.log(2 * np.pi), axis=1)
        assert np.max(np.abs(standard - own)) > 0.1


def test_the_poisson_table_equals_tfp_poisson_on_counts():
    import tensorflow_probability as tfp

    layer = likelihoods.Poisson((FEATURES,), max_count=20)
    params = tf.constant(np.random.default_rng(0).normal(size=(8, FEATURES)), tf.float32)
    x = _data("poisson", rows=8)
    log_rate = layer.log_rate_bound * np.tanh(params.numpy() / layer.log_rate_bound)
    expected = tfp.distributions.Poisson(log_rate=log_rate).log_prob(x).numpy().sum(axis=1)
    np.testing.assert_allclose(layer.distribution(params).log_prob(x), expected, rtol=1e-5, atol=1e-4)
