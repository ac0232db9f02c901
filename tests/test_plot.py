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


def _sample_image_crops(shape, n, seed=0):
    """`n` random `shape` crops of scikit-learn's two sample photos, scaled to [0, 1]."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    height, width, _ = shape
    crops = []
    for i in range(n):
        photo = photos[i % len(photos)]
        top, left = rng.integers(photo.shape[0] - height), rng.integers(photo.shape[1] - width)
        crops.append(photo[top:top + height, left:left + width])
    return np.stack(crops).astype("float32") / 255.0


def _drawn(figure):
    """The array of the one image a montage figure draws."""
    (image,) = figure.axes[0].images
    return np.asarray(image.get_array())


def _tiles(drawn, height, width, rows, columns):
    """The images of a montage, cut out of its drawn array (1-pixel gaps)."""
    return np.stack([drawn[row * (height + 1):row * (height + 1) + height,
                           column * (width + 1):column * (width + 1) + width]
                     for row in range(rows) for column in range(columns)])


@pytest.mark.parametrize("shape", [(32, 32, 3), (24, 40, 3), (24, 40, 1)])
def test_images_of_any_shape_and_channel_count_are_drawn_as_images(shape):
    height, width, channels = shape
    model = tfvae.conv_vae(shape, (4, 8), 2)
    x = _sample_image_crops(shape, 4)
    if channels == 1:
        x = x.mean(axis=-1, keepdims=True)
    drawn = _drawn(plot.reconstructions(model, x, n=4))
    assert drawn.shape == (2 * (height + 1) - 1, 4 * (width + 1) - 1) + ((3,) if channels == 3 else ())
    inputs = _tiles(drawn, height, width, 1, 4)
    np.testing.assert_allclose(inputs, x if channels == 3 else x[..., 0], atol=1e-6)
    drawn = _drawn(plot.prior_samples(model, n=6))  # 3 columns, 2 rows
    assert drawn.shape == (2 * (height + 1) - 1, 3 * (width + 1) - 1) + ((3,) if channels == 3 else ())
    for figure in (plot.latent_traversal(model, x[0], 0, values=[-1.0, 0.0, 1.0]),
                   plot.interpolation(model, x[0], x[1], steps=3)):
        assert _drawn(figure).shape == (height, 3 * (width + 1) - 1) + ((3,) if channels == 3 else ())


def test_flat_rows_are_drawn_as_the_image_shape_given():
    model = tfvae.mlp_vae(24 * 40 * 3, (8,), 2, likelihood="bernoulli")
    x = _sample_image_crops((24, 40, 3), 3)
    drawn = _drawn(plot.reconstructions(model, x.reshape(3, -1), image_shape=(24, 40, 3)))
    assert drawn.shape == (2 * 25 - 1, 3 * 41 - 1, 3)
    np.testing.assert_allclose(_tiles(drawn, 24, 40, 1, 3), x, atol=1e-6)
    with pytest.raises(ValueError, match="image_shape"):
        plot.reconstructions(model, x.reshape(3, -1), image_shape=(32, 32, 3))


def test_plot_is_an_attribute_of_tfvae_and_in_its_public_names():
    assert "plot" in tfvae.__all__
    assert tfvae.plot is plot


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(32, 32, 3), (24, 40, 3)])
def test_a_conv_vae_trains_plots_and_exports_on_colour_crops(shape, tmp_path):
    import export
    from export import acceptance

    height, width, _ = shape
    raw = np.round(_sample_image_crops(shape, 160) * 255).astype(np.uint8)  # pixels as a camera gives them
    preprocessing = {"offset": 0.0, "divisor": 255.0, "binarize_threshold": None}
    x = tfvae.datasets.apply_preprocessing(raw, preprocessing)
    x_train, x_test = x[:128], x[128:]
    model = tfvae.conv_vae(shape, (8, 16), 4, preprocessing=preprocessing)  # Bernoulli on [0, 1] pixels
    model.compile()
    history = model.fit(x_train, epochs=3, batch_size=32, validation_data=x_test, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    figure = plot.reconstructions(model, x_test, n=8, path=tmp_path / "reconstructions.png")
    drawn = _drawn(figure)
    assert drawn.shape == (2 * (height + 1) - 1, 8 * (width + 1) - 1, 3)
    reconstructed = _tiles(drawn, height, width, 2, 8)[8:]
    np.testing.assert_allclose(reconstructed, np.asarray(model.reconstruct(x_test[:8])), atol=1e-6)
    assert _drawn(plot.prior_samples(model, n=9, path=tmp_path / "samples.png")).shape[-1] == 3
    # The LiteRT files and the SavedModel take raw uint8 HxWxC pixels and are checked against Keras by the
    # exporters themselves; the int8 file meets the acceptance rule or is not written.
    report = export.tflite(model, tmp_path / "vae.tflite", part="vae", parity_data=raw[128:])
    assert report.signatures and (tmp_path / "vae.tflite").exists()
    int8 = export.tflite(model, tmp_path / "encoder_int8.tflite", quantize="int8", representative_data=raw[:128],
                         parity_data=raw[128:])
    x_raw = int8.signatures["encode"]["inputs"]["x"]
    assert (x_raw["dtype"], x_raw["shape"]) == ("uint8", [-1, *shape]) and not acceptance.failures(int8.parity)
    export.saved_model(model, tmp_path / "saved_model", parity_data=raw[128:])
    assert (tmp_path / "saved_model" / "saved_model.pb").exists()
