"""Data as scientists have it: full bit depth, many channels, 3-D volumes, masks (issue 20).

Every case is synthetic with known classes, scored by scikit-learn's
adjusted Rand index against the truth; files are written with the libraries
that define their formats (tifffile, nibabel, imagecodecs).
"""

import json

import nibabel
import numpy as np
import pytest
import tifffile
from sklearn.metrics import adjusted_rand_score

import gmmseg
import segmentation_GMM as sg
from gmmseg import cli as command_line
from gmmseg import readers
from gmmseg.params import MASK_LABEL


def ari(truth, labels):
    return adjusted_rand_score(np.ravel(truth), np.ravel(labels))


@pytest.fixture
def blocks():
    """A (12, 30, 36) volume of three classes in 16 bits, above 255, with its truth."""
    truth = np.zeros((12, 30, 36), int)
    truth[:, 15:] = 1
    truth[6:, :, 18:] = 2
    rng = np.random.default_rng(0)
    volume = np.array([1000, 5000, 9000])[truth] + rng.normal(0, 500, truth.shape)
    return np.clip(volume, 0, 65535).astype(np.uint16), truth


def test_a_volume_is_segmented_in_3d(blocks):
    volume, truth = blocks
    result = gmmseg.segment(volume, 3, progress=False)
    assert result.labels.shape == volume.shape
    assert ari(truth, result.labels) > 0.99
    # The full 16 bits: each class's mean is found in the volume's own units.
    np.testing.assert_allclose(np.sort(result.means_rgb[:, 0]), [1000, 5000, 9000], rtol=0.02)


def test_six_channels_are_fitted_together():
    # Classes that no single channel separates: each differs in two of six.
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(3), 400).reshape(30, 40)
    centres = np.zeros((3, 6))
    centres[1, :2] = 4
    centres[2, 2:4] = 4
    image = centres[truth] + rng.normal(0, 1, (30, 40, 6))
    result = gmmseg.segment(image, 3, channel_axis=-1, progress=False)
    assert result.model.gmm.mus.shape == (3, 6)
    assert ari(truth, result.labels) > 0.95
    # Without it, a last axis of more than 4 is a volume's (documented).
    assert gmmseg.segment(image, 3, progress=False).labels.shape == image.shape


def test_channel_axis_moves_the_channels_last(blocks):
    volume, truth = blocks
    channels_first = np.stack([volume, volume // 2])  # (2, z, y, x)
    moved = gmmseg.segment(channels_first, 3, channel_axis=0, progress=False)
    last = gmmseg.segment(np.moveaxis(channels_first, 0, -1), 3, progress=False)
    np.testing.assert_array_equal(moved.labels, last.labels)
    # None: no channel axis, so a (h, w, 3) array is a volume of 3 slices.
    flat = gmmseg.segment(volume[:3].transpose(1, 2, 0), 3, channel_axis=None, progress=False)
    assert flat.labels.shape == (30, 36, 3)


def test_the_mask_is_honoured(blocks):
    volume, truth = blocks
    mask = np.ones(truth.shape, bool)
    mask[:, :, :5] = False
    wild = volume.copy()
    wild[~mask] = 60000  # a fourth intensity outside: it must not get a component
    result = gmmseg.segment(wild, 3, mask=mask, progress=False)
    assert (result.labels[~mask] == MASK_LABEL).all()
    assert result.labels[mask].max() < 3
    assert ari(truth[mask], result.labels[mask]) > 0.99
    # The fit saw the inside alone: the same model as a fit on those voxels.
    inside = gmmseg.segment(volume[mask][:, None], 3, progress=False)
    np.testing.assert_allclose(result.model.gmm.mus, inside.model.gmm.mus)
    # Smoothing takes the mask too, and keeps the outside out.
    smoothed = gmmseg.segment(wild, 3, mask=mask, smooth=1.0, progress=False)
    assert (smoothed.labels[~mask] == MASK_LABEL).all()
    assert ari(truth[mask], smoothed.labels[mask]) > 0.99


def test_float_rows_sort_as_numpy_sorts_them():
    # The 64-bit word path gives np.unique's colours, counts and inverse.
    rng = np.random.default_rng(2)
    pixels = rng.choice([-1.5, -0.0, 0.0, 2.25, 7.0], size=(500, 1))
    colours, counts, inverse = sg._unique_rows(pixels)
    expected, expected_counts = np.unique(pixels + 0.0, return_counts=True)
    order = np.argsort(colours[:, 0])
    np.testing.assert_array_equal(colours[order, 0], expected)
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_array_equal(colours[inverse], pixels + 0.0)
    pairs = rng.choice([0.5, 1.5], size=(300, 2)).astype(np.float32)
    colours, counts, inverse = sg._unique_rows(pairs)
    assert sorted(map(tuple, colours.tolist())) == sorted(
        map(tuple, np.unique(pairs, axis=0).tolist()))
    np.testing.assert_array_equal(colours[inverse], pairs)


# --------------------------------------------------------------------------
# Files: TIFF, NIfTI, 16-bit PNG, through the command line
# --------------------------------------------------------------------------

def test_tiff_stack_and_nifti_volume_on_the_command_line(tmp_path, blocks, capsys):
    volume, truth = blocks
    tifffile.imwrite(tmp_path / "stack.tif", volume)  # multi-page grey: a z-stack
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [-10, 5, 7]
    nibabel.save(nibabel.Nifti1Image(volume.astype(np.int16), affine), tmp_path / "vol.nii.gz")
    out = tmp_path / "out"
    for name in ("stack.tif", "vol.nii.gz"):
        assert command_line.main(["--image", str(tmp_path / name), "--k", "3",
                                  "--out", str(out)]) == 0
    stack = tifffile.imread(out / "stack_k3_labels.tif")
    np.testing.assert_array_equal(stack, np.load(out / "stack_k3_labels.npy"))
    assert ari(truth, stack) > 0.99
    record = json.loads((out / "stack_k3.json").read_text())
    assert record["input"]["axes"] in ("QYX", "ZYX", "IYX")
    assert record["input"]["channel_axis"] is None
    assert record["input"]["spatial_shape"] == list(volume.shape)
    assert record["n_pixels"] == volume.size
    written = nibabel.load(out / "vol_k3_labels.nii.gz")
    np.testing.assert_allclose(written.affine, affine)
    assert ari(truth, np.asarray(written.dataobj)) > 0.99
    assert json.loads((out / "vol_k3.json").read_text())["input"]["affine"] == affine.tolist()
    assert (out / "vol_k3_segmentation.png").stat().st_size > 0


def test_sixteen_bit_colour_png_keeps_its_bits(tmp_path, capsys):
    import imagecodecs

    rng = np.random.default_rng(3)
    truth = np.repeat(np.arange(2), 600).reshape(30, 40)
    image = np.array([[1000, 3000, 9000], [30000, 2000, 1000]])[truth]
    image = np.clip(image + rng.normal(0, 200, image.shape), 0, 65535).astype(np.uint16)
    (tmp_path / "rgb16.png").write_bytes(imagecodecs.png_encode(image))
    assert command_line.main(["--image", str(tmp_path / "rgb16.png"), "--k", "2",
                              "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "rgb16_k2.json").read_text())
    means = np.array(sorted(record["means_rgb"]))
    np.testing.assert_allclose(means, [[1000, 3000, 9000], [30000, 2000, 1000]], rtol=0.03)


def test_tiff_channels_and_a_mask_file(tmp_path, blocks, capsys):
    volume, truth = blocks
    two = np.stack([volume, 65535 - volume], axis=1)  # (z, c, y, x): ImageJ's order
    tifffile.imwrite(tmp_path / "two.tif", two, imagej=True, metadata={"axes": "ZCYX"})
    mask = np.ones(truth.shape, np.uint8)
    mask[:4] = 0
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    assert command_line.main(["--image", str(tmp_path / "two.tif"), "--k", "3", "--mask",
                              str(tmp_path / "mask.tif"), "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "two_k3.json").read_text())
    assert record["input"]["channel_axis"] == 1 and len(record["means"][0]) == 2
    assert record["n_pixels"] == int(mask.sum())
    labels = np.load(tmp_path / "out" / "two_k3_labels.npy")
    assert (labels[:4] == MASK_LABEL).all()
    assert ari(truth[4:], labels[4:]) > 0.99


# --------------------------------------------------------------------------
# Bad input: one line, exit 2
# --------------------------------------------------------------------------

def _one_line_exit_2(argv, capsys, *words):
    assert command_line.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_bad_volume_inputs(tmp_path, blocks, capsys):
    volume, _ = blocks
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    tifffile.imwrite(tmp_path / "small.tif", volume[:, :10])
    out = ["--out", str(tmp_path / "out")]
    _one_line_exit_2(["--image", str(tmp_path / "stack.tif"), "--mask",
                      str(tmp_path / "small.tif"), *out], capsys, "--mask", "shape")
    _one_line_exit_2(["--image", str(tmp_path / "stack.tif"), "--channel-axis", "5", *out],
                     capsys, "--channel-axis")
    _one_line_exit_2(["--image", str(tmp_path / "stack.tif"), "--min-region", "10", *out],
                     capsys, "--min-region", "volume")
    with pytest.raises(ValueError, match="mask has shape"):
        gmmseg.segment(volume, 3, mask=np.ones((2, 2), bool), progress=False)
    with pytest.raises(ValueError, match="channel_axis"):
        gmmseg.segment(volume, 3, channel_axis=-5, progress=False)


def test_headers_claiming_a_billion_values_are_refused_before_reading(tmp_path, capsys):
    # A 1x1 TIFF whose header is made to claim 40000 x 30000 pixels.
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((1, 1), np.uint8))
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        offsets = {name: tags[name].valueoffset for name in ("ImageWidth", "ImageLength")}
        kind = {name: tags[name].dtype for name in offsets}
    data = bytearray(path.read_bytes())
    for name, size in (("ImageWidth", 40000), ("ImageLength", 30000)):
        width = 2 if kind[name] == 3 else 4
        data[offsets[name]:offsets[name] + width] = size.to_bytes(width, "little")
    path.write_bytes(bytes(data))
    # A NIfTI header alone, claiming 1000^3 voxels.
    header = nibabel.Nifti1Header()
    header.set_data_shape((1000, 1000, 1000))
    header.set_data_dtype(np.uint8)
    nifti = tmp_path / "bomb.nii"
    nifti.write_bytes(header.binaryblock + b"\0" * 4)
    for bomb in (path, nifti):
        _one_line_exit_2(["--image", str(bomb), "--out", str(tmp_path / "out")], capsys,
                         "too large")


def test_nibabel_missing_is_one_line(tmp_path, blocks, capsys, monkeypatch):
    volume, _ = blocks
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / "vol.nii")
    monkeypatch.setitem(__import__("sys").modules, "nibabel", None)
    _one_line_exit_2(["--image", str(tmp_path / "vol.nii"), "--out", str(tmp_path / "out")],
                     capsys, "nibabel", "requirements-volumes.txt")
    with pytest.raises(ValueError, match="nibabel"):
        readers.read(tmp_path / "vol.nii")


# --------------------------------------------------------------------------
# The spatial prior inside EM (mrf)
# --------------------------------------------------------------------------

def _noisy_blocks(shape, seed):
    """Three classes in blocks, grey levels 0, 1, 2 under noise of sigma 0.6."""
    truth = np.zeros(shape, int)
    truth[..., shape[-1] // 2:] = 1
    truth[shape[0] // 2:, ..., shape[-1] // 4: 3 * shape[-1] // 4] = 2
    rng = np.random.default_rng(seed)
    return np.array([0.0, 1.0, 2.0])[truth] + rng.normal(0, 0.6, shape), truth


@pytest.mark.parametrize("shape, beta", [((60, 80), 2.0), ((20, 40, 40), 1.0)])
def test_the_potts_prior_holds_noisy_classes_together(shape, beta):
    image, truth = _noisy_blocks(shape, 0)
    plain = ari(truth, gmmseg.segment(image, 3, progress=False).labels)
    result = gmmseg.segment(image, 3, mrf=beta, progress=False)
    # The mixture alone scatters the classes (as scikit-learn's does: about 0.35 here).
    assert plain < 0.5
    assert ari(truth, result.labels) > 0.9
    # max_iter bounds the whole fit, the warm-up's, the exact and the prior's steps.
    short = gmmseg.segment(image, 3, mrf=beta, max_iter=12, progress=False)
    steps = max(len(short.warm_up_history) - 1, 0) + len(short.log_likelihood_history) - 1
    assert steps <= 12
    # A model with the prior labels another image with it, its parameters fixed.
    other, other_truth = _noisy_blocks(shape, 1)
    assert ari(other_truth, result.model.segment(other).labels) > 0.9


@pytest.mark.parametrize("shape", [(5, 6, 7), (6, 8, 4), (7, 9), (1, 5), (3, 1, 2), (1, 1)])
def test_each_colours_neighbour_sums_are_the_face_neighbours(shape):
    """Each checkerboard colour's sums, from the other colour's values alone, are SciPy's."""
    from scipy import ndimage

    from gmmseg.mrf import Checkerboard

    values = np.random.default_rng(4).random(shape)
    kernel = ndimage.generate_binary_structure(len(shape), 1).astype(float)
    kernel[(1,) * len(shape)] = 0
    expected = ndimage.correlate(values, kernel, mode="constant").ravel()
    board = Checkerboard(shape)
    colour, positions = board.locate(np.arange(values.size))
    assert board.size == values.size and np.unique(positions).size == values.size
    np.testing.assert_array_equal(colour, np.sum(np.indices(shape), axis=0).ravel() % 2)
    for own in (0, 1):
        stored = np.full(board.size, np.nan)  # own colour's values are never read
        stored[positions[colour != own]] = values.ravel()[colour != own]
        sums = board.neighbour_sums(stored, np.full(board.size, np.nan), own)
        np.testing.assert_allclose(sums[positions[colour == own]], expected[colour == own],
                                   rtol=1e-12)


def test_a_sweep_of_the_prior_is_the_mean_field_update_computed_plainly():
    """One red-black sweep inside a mask against the update written out with SciPy."""
    from scipy import ndimage
    from scipy.stats import multivariate_normal

    from gmmseg import mrf

    volume, _ = _noisy_blocks((7, 9, 10), 3)
    volume = np.round(volume, 1)  # repeated values: the steps on the distinct colours
    mask = np.ones(volume.shape, bool)
    mask[0, :4] = mask[:, :, -2:] = False
    colours, counts, inverse = sg.distinct_colours(volume[mask][:, None])
    assert 2 * len(colours) < mask.sum()
    mus, priors, covs = sg.kmeans(3, colours, counts)
    gmm = sg.GMM(3, mus, covs, priors)
    q = mrf.mean_field(gmm, colours, counts, inverse, mrf.layout(mask.shape, mask), 1.5, 0,
                       update=False, progress=False)[0]
    # By hand: the fit's responsibilities, then each half from the other's latest.
    log_n = np.stack([multivariate_normal.logpdf(volume[..., None], mus[k], covs[k])
                      for k in range(3)])
    full = np.exp(log_n + np.log(priors)[:, None, None, None])
    full = np.where(mask, full / full.sum(axis=0), 0)
    cross = ndimage.generate_binary_structure(3, 1).astype(float)
    cross[1, 1, 1] = 0
    parity = np.sum(np.indices(volume.shape), axis=0) % 2
    for half in (0, 1):
        field = np.stack([ndimage.correlate(full[k], cross, mode="constant") for k in range(3)])
        new = np.exp(log_n + 1.5 * field)
        new /= new.sum(axis=0)
        cells = mask & (parity == half)
        full[:, cells] = new[:, cells]
    np.testing.assert_allclose(q, full[:, mask].T, atol=2e-6)


def test_the_priors_steps_on_pixels_and_on_colours_are_one_model(monkeypatch):
    from gmmseg import mrf

    volume, _ = _noisy_blocks((10, 20, 24), 5)
    volume = np.round(volume, 1)
    mask = np.ones(volume.shape, bool)
    mask[:, :2] = False
    by_colour = gmmseg.segment(volume, 3, mask=mask, mrf=1.0, progress=False)
    monkeypatch.setattr(mrf, "_by_pixel", lambda n_colours, n_pixels: True)
    by_pixel = gmmseg.segment(volume, 3, mask=mask, mrf=1.0, progress=False)
    np.testing.assert_array_equal(by_colour.labels, by_pixel.labels)
    np.testing.assert_allclose(by_colour.log_likelihood_history,
                               by_pixel.log_likelihood_history, rtol=1e-9)
    np.testing.assert_allclose(by_colour.model.gmm.mus, by_pixel.model.gmm.mus, rtol=1e-6)


def test_with_the_prior_the_plain_fit_ends_at_its_warm_up():
    volume, _ = _noisy_blocks((10, 20, 24), 6)
    colours, counts, _ = sg.distinct_colours(volume.reshape(-1, 1))
    colours_norm, _, _ = sg.zscore_colours(colours, counts)
    gmm, gamma, warm_up = sg.fit_colours(colours_norm, counts, 3, 50, exact=False,
                                         progress=False)
    assert len(warm_up) > 1 and len(gmm.log_likelihood_history) == 1
    expected_gamma, log_likelihood = gmm.inference(colours_norm, counts)
    np.testing.assert_array_equal(gamma, expected_gamma)
    assert gmm.log_likelihood_history[0] == log_likelihood / counts.sum()
    # The same warm-up as a full fit's, which then takes exact steps.
    full, _, full_warm_up = sg.fit_colours(colours_norm, counts, 3, 50, progress=False)
    assert full_warm_up == warm_up and len(full.log_likelihood_history) > 1


def test_the_priors_argmax_is_numpys_with_ties():
    from gmmseg.mrf import _argmax

    q = np.random.default_rng(5).integers(0, 3, (4, 500)).astype(np.float32)  # many ties
    np.testing.assert_array_equal(_argmax(q), np.argmax(q, axis=0))


def test_the_prior_on_two_threads_is_the_one_threads(monkeypatch):
    """The components' fields and the columns' normalisation on EM's threads change no bit."""
    import utils

    monkeypatch.setattr(utils, "PARALLEL_ROWS", 1)  # threads even on this small volume
    volume, _ = _noisy_blocks((12, 30, 30), 2)
    mask = np.ones(volume.shape, bool)
    mask[:, :3] = False
    with utils.em_threads(1):
        one = gmmseg.segment(volume, 3, mask=mask, mrf=1.0, progress=False)
    with utils.em_threads(2):
        two = gmmseg.segment(volume, 3, mask=mask, mrf=1.0, progress=False)
    np.testing.assert_array_equal(one.labels, two.labels)
    assert one.log_likelihood_history == two.log_likelihood_history
    np.testing.assert_array_equal(one.model.gmm.mus, two.model.gmm.mus)


def test_the_prior_inside_a_mask_and_its_refusals(blocks):
    volume, truth = blocks
    mask = np.ones(truth.shape, bool)
    mask[:2] = False
    result = gmmseg.segment(volume, 3, mask=mask, mrf=0.5, progress=False)
    assert (result.labels[~mask] == MASK_LABEL).all()
    assert ari(truth[mask], result.labels[mask]) > 0.99
    with pytest.raises(ValueError, match="^spatial and mrf"):
        gmmseg.segment(volume[0], 3, mrf=1.0, spatial=1.0, progress=False)
    with pytest.raises(ValueError, match="^mrf needs one image"):
        gmmseg.fit([volume[0], volume[1]], 3, mrf=1.0, progress=False)


# --------------------------------------------------------------------------
# Found trying it as a new user would
# --------------------------------------------------------------------------

def test_a_folder_batch_takes_nifti_and_overwrite_leaves_no_stale_labels(tmp_path, blocks,
                                                                         capsys):
    volume, _ = blocks
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", volume)
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), folder / "b.nii.gz")
    out = tmp_path / "out"
    assert command_line.main(["--image", str(folder), "--k", "3", "--jobs", "1",
                              "--out", str(out)]) == 0
    assert {"a_k3.json", "b_k3.json", "b_k3_labels.nii.gz"} <= {p.name for p in out.iterdir()}
    # b.tif of other content replaces b.nii.gz's results: its NIfTI labels go with them.
    tifffile.imwrite(tmp_path / "b.tif", volume[::-1])
    assert command_line.main(["--image", str(tmp_path / "b.tif"), "--k", "3", "--overwrite",
                              "--out", str(out)]) == 0
    assert not (out / "b_k3_labels.nii.gz").exists()
    np.testing.assert_array_equal(tifffile.imread(out / "b_k3_labels.tif"),
                                  np.load(out / "b_k3_labels.npy"))


def test_damaged_files_and_bad_masks_are_one_line_naming_the_right_flag(tmp_path, blocks,
                                                                        capsys):
    volume, _ = blocks
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    whole = (tmp_path / "stack.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(whole[:len(whole) // 2])
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / "vol.nii")
    whole = (tmp_path / "vol.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(whole[:len(whole) // 2])
    nan = np.ones(volume.shape, np.float32)
    nan[0, 0, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    out = ["--out", str(tmp_path / "out")]
    for name in ("cut.tif", "cut.nii"):
        _one_line_exit_2(["--image", str(tmp_path / name), *out], capsys, name)
    _one_line_exit_2(["--image", str(tmp_path / "stack.tif"), "--mask", str(tmp_path / "nan.tif"),
                      *out], capsys, "--mask holds NaN")
    nibabel.save(nibabel.Nifti1Image(np.stack([volume, volume], -1), np.eye(4)),
                 tmp_path / "two.nii.gz")
    _one_line_exit_2(["--image", str(tmp_path / "two.nii.gz"), "--channel-axis", "0", *out],
                     capsys, "--channel-axis", "affine")
