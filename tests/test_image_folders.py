"""Folders of PNG/JPEG images: scanned, loaded whole or streamed, the same pixels either way."""

import numpy as np
import pytest
from PIL import Image

from tfvae import image_folders


def _write(folder, arrays, suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(arrays):
        Image.fromarray(pixels).save(folder / f"{i:03d}{suffix}")
    return folder


@pytest.fixture
def colour(tmp_path, rng):
    pixels = rng.integers(0, 256, size=(7, 12, 20, 3), dtype=np.uint8)
    _write(tmp_path / "photos" / "a", pixels[:4])
    _write(tmp_path / "photos" / "b", pixels[4:])  # subfolders are read too, in sorted order
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    return tmp_path / "photos", pixels


def test_scan_finds_every_image_below_and_the_shape_of_x(colour):
    folder, pixels = colour
    paths, shape = image_folders.scan(folder)
    assert len(paths) == 7 and shape == (12, 20, 3)
    assert paths == sorted(paths)


def test_loaded_and_streamed_images_are_the_same_pixels_over_255(colour):
    folder, pixels = colour
    paths, shape = image_folders.scan(folder)
    expected = pixels.astype(np.float32) / 255
    np.testing.assert_allclose(image_folders.load_images(paths, shape, chunk=3), expected, atol=1e-6)
    batches = [batch.numpy() for batch in image_folders.stream(paths, shape, batch_size=3)]
    assert [len(batch) for batch in batches] == [3, 3, 1]
    np.testing.assert_allclose(np.concatenate(batches), expected, atol=1e-6)
    shuffled = np.concatenate([batch.numpy() for batch in image_folders.stream(paths, shape, 3, shuffle=True)])
    np.testing.assert_allclose(np.sort(shuffled.ravel()), np.sort(expected.ravel()), atol=1e-6)


def test_grayscale_images_have_one_channel_and_other_sizes_are_resized(tmp_path, rng):
    folder = _write(tmp_path / "gray", [rng.integers(0, 256, size=(8, 10), dtype=np.uint8) for _ in range(2)])
    _write(tmp_path / "gray" / "z", [rng.integers(0, 256, size=(16, 20), dtype=np.uint8)], suffix=".jpg")
    paths, shape = image_folders.scan(folder)
    assert shape == (8, 10, 1)
    assert image_folders.load_images(paths, shape).shape == (3, 8, 10, 1)


def test_memory_budget_sizes_and_decoded_bytes():
    assert image_folders.parse_bytes("2GB") == 2 * 1024**3 == image_folders.DEFAULT_MEMORY_BUDGET
    assert image_folders.parse_bytes("500MB") == 500 * 1024**2
    assert image_folders.parse_bytes("64kb") == image_folders.parse_bytes("64K") == 65536
    assert image_folders.parse_bytes("1000") == 1000
    assert image_folders.decoded_bytes(2000, (32, 32, 3)) == 2000 * 32 * 32 * 3 * 4
    assert image_folders.fits(10, (4, 4, 1), 640) and not image_folders.fits(11, (4, 4, 1), 640)
    for bad in ("lots", "-1GB", "0", "2 PB"):
        with pytest.raises(ValueError, match="memory_budget"):
            image_folders.parse_bytes(bad)


def test_a_folder_without_images_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"`data`.*PNG|`data`.*\.png"):
        image_folders.scan(tmp_path / "empty")
