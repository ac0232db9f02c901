import numpy as np
import pytest
from matplotlib.figure import Figure

import tfvae
from tfvae import plot


@pytest.fixture(scope="module")
def model():
    return tfvae.mlp_vae(64, (8,), 3, likelihood="bernoulli")


def _check(figure, path):
    assert isinstance(figure, Figure)
    assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"


def test_every_plot_returns_a_figure_and_writes_a_png(model, digits, tmp_path):
    (_, _), (x_test, y_test) = digits
    history = {"loss": [3.0, 2.0], "reconstruction": [2.5, 1.5], "kl": [0.5, 0.5], "val_loss": [3.1, 2.2]}
    cases = {
        "loss": lambda p: plot.loss_curves(history, p),
        "recon": lambda p: plot.reconstructions(model, x_test, n=5, path=p),
        "samples": lambda p: plot.prior_samples(model, n=9, path=p),
        "latent_pca": lambda p: plot.latent_map(model, x_test, color_by=y_test, path=p),
        "latent_first_two": lambda p: plot.latent_map(model, x_test, method="first_two", path=p),
        "traversal": lambda p: plot.latent_traversal(model, x_test[0], dimension=1, path=p),
        "interpolation": lambda p: plot.interpolation(model, x_test[0], x_test[1], steps=5, path=p),
    }
    for name, draw in cases.items():
        path = tmp_path / f"{name}.png"
        _check(draw(path), path)


def test_tables_that_are_not_images_are_drawn_as_heat_maps(tmp_path):
    model = tfvae.mlp_vae(6, (4,), 2)
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    for name, figure in {
        "recon": plot.reconstructions(model, x, path=tmp_path / "recon.png"),
        "samples": plot.prior_samples(model, n=5, path=tmp_path / "samples.png"),
        "traversal": plot.latent_traversal(model, x[0], 0, path=tmp_path / "traversal.png"),
    }.items():
        _check(figure, tmp_path / f"{name}.png")


def test_bad_plot_arguments(model, digits):
    (_, _), (x_test, _) = digits
    with pytest.raises(ValueError, match="dimension"):
        plot.latent_traversal(model, x_test[0], dimension=3)
    with pytest.raises(ValueError, match="method"):
        plot.latent_map(model, x_test, method="tsne")
