"""Reading every kind of image Pillow reads, Z-scoring, and counting colours."""

import numpy as np
import pytest
from PIL import Image

import segmentation_GMM as sg
import utils
from segmentation_GMM import channel_stats, distinct_colours, load


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)


def save(tmp_path, img, name, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_rgb_roundtrip(tmp_path, rgb):
    image = utils.load_image(save(tmp_path, Image.fromarray(rgb), "a.png"))
    np.testing.assert_array_equal(image, rgb)


def test_rgba_drops_alpha(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    image = utils.load_image(save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png"))
    np.testing.assert_array_equal(image, rgb)


def test_palette_becomes_rgb(tmp_path, rgb):
    pal = Image.fromarray(rgb).quantize(8)
    image = utils.load_image(save(tmp_path, pal, "p.png"))
    assert image.shape == (12, 20, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.asarray(pal.convert("RGB")))


def test_greyscale_has_one_channel(tmp_path, rgb):
    image = utils.load_image(save(tmp_path, Image.fromarray(rgb[:, :, 0]), "g.png"))
    assert image.shape == (12, 20, 1)
    np.testing.assert_array_equal(image[:, :, 0], rgb[:, :, 0])


def test_sixteen_bit_keeps_its_values(tmp_path):
    values = np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 250
    image = utils.load_image(save(tmp_path, Image.fromarray(values), "g16.png"))
    assert image.shape == (12, 20, 1) and image.dtype == np.uint16
    np.testing.assert_array_equal(image[:, :, 0], values)


def test_cmyk_becomes_rgb(tmp_path, rgb):
    cmyk = Image.fromarray(rgb).convert("CMYK")
    image = utils.load_image(save(tmp_path, cmyk, "c.jpg", quality=95))
    assert image.shape == (12, 20, 3)
    np.testing.assert_array_equal(image, np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB")))


def test_exif_rotation_is_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = save(tmp_path, Image.fromarray(rgb), "r.jpg", exif=exif, quality=95)
    image = utils.load_image(path)
    assert image.shape == (20, 12, 3)


def test_load_z_scores_each_channel(tmp_path, rgb):
    h, w, c, image_norm = load(save(tmp_path, Image.fromarray(rgb), "a.png"))
    assert (h, w, c) == (12, 20, 3) and image_norm.shape == (240, 3)
    np.testing.assert_allclose(image_norm.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(image_norm.std(0), 1, rtol=1e-12)
    np.testing.assert_allclose(image_norm[:, 1],
                               (rgb[:, :, 1].ravel() - rgb[:, :, 1].mean()) / rgb[:, :, 1].std())


def test_load_constant_channel_does_not_divide_by_zero(tmp_path, rgb):
    rgb[:, :, 2] = 99
    *_, image_norm = load(save(tmp_path, Image.fromarray(rgb), "a.png"))
    assert np.all(np.isfinite(image_norm))
    np.testing.assert_array_equal(image_norm[:, 2], 0)


def test_weighted_stats_equal_pixel_stats(rgb):
    colours, counts, _ = distinct_colours(rgb)
    pixels = rgb.reshape(-1, 3).astype(float)
    mean, std = channel_stats(colours.astype(float), counts)
    np.testing.assert_allclose(mean, pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(0), rtol=1e-12)


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint8, 1), (np.uint16, 1),
                                            (np.uint16, 3), (np.float32, 3)])
def test_distinct_colours_match_numpy_unique(dtype, channels):
    rng = np.random.default_rng(1)
    high = 70000 if dtype == np.uint16 else 256
    palette = rng.integers(0, min(high, 65536), size=(30, channels)).astype(dtype)
    image = palette[rng.integers(0, 30, size=(16, 16))]
    colours, counts, inverse = distinct_colours(image)
    expected, expected_counts = np.unique(image.reshape(-1, channels), axis=0, return_counts=True)
    order = np.lexsort(colours.T[::-1])
    np.testing.assert_array_equal(colours[order], expected)
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_array_equal(colours[inverse], image.reshape(-1, channels))


@pytest.mark.parametrize("block", [None, 16])
def test_distinct_colours_counted_at_once_or_block_by_block(monkeypatch, block):
    """Up to 16 MP the keys are platform integers counted at once; beyond, 32-bit ones
    counted block by block (here a 16-pixel block stands in for a large photo)."""
    if block:
        monkeypatch.setattr(sg, "BINCOUNT_BLOCK", block)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 4, size=(20, 30, 3)).astype(np.uint8) * 60
    colours, counts, inverse = distinct_colours(image)
    expected, expected_counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    order = np.lexsort(colours.T[::-1])
    np.testing.assert_array_equal(colours[order], expected)
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_array_equal(colours[inverse], image.reshape(-1, 3))
    assert inverse.dtype == (np.int32 if block else np.intp)


def test_write_atomic_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        utils.write_atomic(str(target), broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_atomic_gives_ordinary_permissions(tmp_path):
    import os
    umask = os.umask(0o022)
    try:
        utils.write_atomic(str(tmp_path / "a.txt"), lambda tmp: open(tmp, "w").close())
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
