"""A `.keras` file saved by tfvae 0.1.0 loads in today's code and computes the same numbers.

`tests/data/vae_0_1_0.keras` is a small digits model (64-32-4, Bernoulli) saved by release 0.1.0;
`vae_0_1_0_outputs.npz` holds what that release computed from it on eight test digits.
"""

from pathlib import Path

import numpy as np

import tfvae

DATA = Path(__file__).parent / "data"


def test_a_keras_file_of_the_previous_release_loads_and_gives_the_same_outputs():
    model = tfvae.load_model(DATA / "vae_0_1_0.keras")
    expected = np.load(DATA / "vae_0_1_0_outputs.npz")
    z_mean, z_log_sigma = model.encode(expected["x"])
    np.testing.assert_allclose(z_mean, expected["z_mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z_log_sigma, expected["z_log_sigma"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.decode(expected["z_mean"]), expected["x_mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.elbo(expected["x"], sample=False), expected["elbo"], rtol=1e-5, atol=1e-4)
