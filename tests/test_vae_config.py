"""A VAE's Keras config: this release's round trip, and the keys an older release wrote."""

import warnings

import keras
import numpy as np

import tfvae
from tfvae import vae_config

X = np.random.default_rng(0).random((4, 6)).astype("float32")


def test_a_default_models_config_holds_only_what_the_previous_release_knew():
    config = tfvae.mlp_vae(6, (4,), 2).get_config()
    assert not {"iwae_samples", "num_samples", "prior", "objective"} & set(config)


def test_an_iwae_model_round_trips_through_a_keras_file(tmp_path):
    model = tfvae.mlp_vae(6, (4,), 2, iwae_samples=3, beta=0.5)
    model.save(tmp_path / "iwae.keras")
    loaded = keras.saving.load_model(tmp_path / "iwae.keras", safe_mode=True)
    assert loaded.iwae_samples == 3 and loaded.objective.get_config() == model.objective.get_config()
    np.testing.assert_allclose(loaded.encode(X)[0], model.encode(X)[0], rtol=1e-6)


def test_an_older_config_with_num_samples_loads_without_a_warning():
    config = tfvae.mlp_vae(6, (4,), 2).get_config()
    config["num_samples"] = 3  # as the previous release wrote every model's config
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = vae_config.from_config(tfvae.VAE, config)
    assert model.iwae_samples == 3 and model.objective.num_samples == 3
    assert not [w for w in caught if "deprecated; use" in str(w.message)]  # the file's age is not the caller's doing
