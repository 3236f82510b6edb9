"""The hierarchy's learned merge order (issue 22): each feature by hand, the file, the trainer.

Each of ``merge_order.FEATURES`` is computed here again from the pixels of an
image of three blocks with NumPy (covariances, histograms, border pixels),
and after a merge against the statistics of a region that was never merged;
the trainer (``bench/train_merges.py``) is run on a tiny synthetic set, never
on BSDS500, and must write the same file bit for bit.
"""

import os
import sys

import numpy as np
import pytest

from gmmseg import hierarchy, merge_order
from gmmseg.params import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks(seed=0):
    """Three vertical blocks of 20 x 10 pixels: red, blue (striped) and grey, with noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros((20, 30, 3))
    image[:, :10] = (200, 40, 40)
    image[:, 10:20] = (40, 60, 190)
    image[::2, 10:20] += 25
    image[:, 20:] = (120, 120, 120)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    fine = np.repeat(np.arange(3), 10)[None].repeat(20, 0)
    return image, fine


def regions_of(image, fine):
    lab, across_columns, across_rows = hierarchy.border_contrast(image)
    texture = merge_order.local_spread(lab[..., 0])
    coarse = hierarchy.lab_contrast(lab, merge_order.COARSE_SCALE)
    return (merge_order.Regions(fine, lab, across_columns, across_rows, texture, coarse),
            lab, across_columns, across_rows, texture, coarse)


def test_each_feature_against_the_pixels():
    image, fine = blocks()
    regions, lab, across_columns, across_rows, texture, coarse = regions_of(image, fine)
    features = dict(zip(merge_order.FEATURES, regions.features(0, np.array([1]))[0],
                        strict=True))
    colours = lab.reshape(-1, 3)
    mine, theirs = fine.ravel() == 0, fine.ravel() == 1

    def n_log_det(pixels):
        cov = np.cov(pixels, rowvar=False, bias=True) + hierarchy.REG_LAB * np.eye(3)
        return len(pixels) * np.log(np.linalg.det(cov))

    lost = 0.5 * (n_log_det(colours[mine | theirs]) - n_log_det(colours[mine])
                  - n_log_det(colours[theirs]))
    border = across_columns[:, 9]  # between columns 9 and 10
    contrast = border.mean()
    expected = {
        "lost": np.log(lost / 400 + 1e-4),
        "likelihood": np.log(lost / 600 * contrast + 1e-9),
        "contrast": np.log(contrast + 0.1),
        **{f"weak_{t:g}": np.mean(border <= t) for t in merge_order.WEAK_CONTRASTS},
        "smaller": np.log(200 / 600), "larger": np.log(200 / 600),
        "border": np.log(20 / np.sqrt(200)),
    }
    difference = colours[theirs].mean(axis=0) - colours[mine].mean(axis=0)
    expected["colour"] = np.log1p(np.linalg.norm(difference))
    expected["lightness"] = np.log1p(abs(difference[0]))
    expected["chroma"] = np.log1p(np.linalg.norm(difference[1:]))

    def histogram(pixels):
        clipped = np.clip(pixels, [0, -60, -60], [100, 60, 60])
        counts = np.histogramdd(clipped, bins=merge_order.HISTOGRAM_BINS,
                                range=[(0, 100), (-60, 60), (-60, 60)])[0]
        return counts.ravel() / len(pixels)

    p, q = histogram(colours[mine]), histogram(colours[theirs])
    used = p + q > 0
    expected["histogram"] = 0.5 * np.sum((p - q)[used] ** 2 / (p + q)[used])
    spread = texture.ravel()
    expected["texture"] = np.log1p(abs(spread[theirs].mean() - spread[mine].mean()))
    # Inside the union: every horizontal pair in columns 0..19 and vertical pair there.
    union = np.r_[across_columns[:, :19].ravel(), across_rows[:, :20].ravel()]
    expected["interior"] = np.log(union.mean() + 0.1)
    inside = [np.r_[across_columns[:, a:a + 9].ravel(), across_rows[:, a:a + 10].ravel()].mean()
              for a in (0, 10)]
    expected["relative"] = np.log((contrast + 0.1) / (max(inside) + 0.1))
    expected["coarse"] = np.log(coarse[0][:, 9].mean() + 0.1)
    # The union is a 20 x 20 square: 80 pixel sides on its outline.
    expected["compactness"] = np.log(80 ** 2 / (4 * np.pi * 400))
    assert set(expected) == set(merge_order.FEATURES)
    for name in merge_order.FEATURES:
        assert features[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    # The striped blue block is textured: its interior contrast is the larger.
    assert inside[1] > inside[0]


def test_a_merged_region_has_the_features_of_one_never_merged():
    image, fine = blocks(1)
    regions = regions_of(image, fine)[0]
    regions.merge(0, 1, 3)
    assert list(regions.neighbours[3]) == [2] and regions.neighbours[0] == {}
    joined = np.where(fine == 2, 1, 0)
    reference = regions_of(image, joined)[0]
    np.testing.assert_allclose(regions.features(2, np.array([3])),
                               reference.features(1, np.array([0])), rtol=1e-9)
    np.testing.assert_allclose(regions.likelihood_cost(3, np.array([2])),
                               reference.likelihood_cost(0, np.array([1])), rtol=1e-9)


def test_the_learned_cost_is_the_logistic_of_its_terms(tmp_path):
    rng = np.random.default_rng(2)
    n = len(merge_order.FEATURES)
    terms = len(merge_order.term_names())
    assert terms == n + n * (n + 1) // 2
    order = merge_order.LearnedOrder(rng.normal(size=n), rng.uniform(0.5, 2, n),
                                     rng.normal(size=terms) / 10, 0.3)
    x = rng.normal(size=(5, n))
    z = (x - order.mean) / order.scale
    linear = z @ order.coef[:n]
    products = sum(order.coef[n + t] * z[:, a] * z[:, b]
                   for t, (a, b) in enumerate(zip(*np.triu_indices(n), strict=True)))
    np.testing.assert_allclose(order.cost(x),
                               1 / (1 + np.exp(linear + products + order.intercept)), rtol=1e-12)
    # Written and read back: the same floats, bit for bit.
    merge_order.write_order(tmp_path / "order.txt", order)
    back = merge_order.read_order(tmp_path / "order.txt")
    for name in ("mean", "scale", "coef"):
        assert np.array_equal(getattr(back, name), getattr(order, name))
    assert back.intercept == order.intercept


def test_a_damaged_order_file_is_refused_by_name(tmp_path):
    path = tmp_path / "order.txt"
    lines = open(merge_order.LEARNED_ORDER).read().splitlines()
    path.write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(ParameterError, match="merge_order") as caught:
        merge_order.read_order(path)
    assert caught.value.parameters == ("merge_order",)
    path.write_text("\n".join(lines).replace("lost ", "lots ") + "\n")
    with pytest.raises(ParameterError, match="its terms"):
        merge_order.read_order(path)
    for bad, words in ((tmp_path / "missing.txt", "no such file"),
                       (os.path.join(ROOT, "images", "coffee.png"), "not text"),
                       (3, "a file's path"), (None, "a file's path")):
        with pytest.raises(ParameterError, match="merge_order") as caught:
            merge_order.read_order(bad)
        assert words in str(caught.value)


def synthetic_set(folder, seed):
    """A tiny BSDS-like set: images of coloured rectangles, two humans each."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", 3), ("val", 2)):
        os.makedirs(folder / split / "images")
        os.makedirs(folder / split / "truth")
        for index in range(count):
            truth = np.zeros((48, 64), np.int32)
            truth[:, rng.integers(20, 44):] = 1
            truth[rng.integers(16, 32):, :rng.integers(16, 30)] = 2
            colours = rng.integers(30, 220, (3, 3))
            image = colours[truth] + rng.normal(0, 12, (48, 64, 3))
            from PIL import Image

            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                folder / split / "images" / f"{100 + index}.jpg", quality=95)
            coarse = np.where(truth == 2, 0, truth)
            np.savez(folder / split / "truth" / f"{100 + index}.npz",
                     segs=np.stack([truth + 1, coarse + 1]))


def test_the_trainer_rebuilds_its_file_bit_for_bit(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import train_merges
    finally:
        sys.path.remove(os.path.join(ROOT, "bench"))
    synthetic_set(tmp_path / "data", 0)
    written = []
    for jobs in (1, 2):
        out = tmp_path / f"order{jobs}.txt"
        train_merges.main(["--data", str(tmp_path / "data"), "--out", str(out),
                           "--epochs", "2", "--jobs", str(jobs)])
        written.append(out.read_bytes())
    assert written[0] == written[1]
    # One epoch's file is the regression of the examples of the "likelihood"
    # order's merges, computed here again image by image.
    train_merges.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "one.txt"),
                       "--epochs", "1", "--jobs", "1"])
    found, targets = [], []
    for image_path, truth_path in train_merges.split_paths(tmp_path / "data", "train"):
        image, fine, truths = train_merges._load((image_path, truth_path))
        x, y = train_merges.examples(image, fine, truths, "likelihood")
        assert len(x) == fine.max() and set(np.unique(y)) <= {0.0, 0.5, 1.0}
        found.append(x)
        targets.append(y)
    merge_order.write_order(tmp_path / "again.txt",
                            train_merges.fit_order(np.vstack(found), np.concatenate(targets)))
    assert (tmp_path / "again.txt").read_bytes() == (tmp_path / "one.txt").read_bytes()


def test_a_wide_blur_on_a_shrunk_image_matches_the_exact_one():
    from skimage.filters import gaussian

    rng = np.random.default_rng(5)
    lab = gaussian(rng.normal(0, 30, (160, 240, 3)), 3, channel_axis=-1) + [50, 0, 0]
    lab[:, 120:] += [20, 10, -10]  # a step edge, which the contrast must find
    sigma = 12.0  # scale 12 on an image of under BSDS500's size: above DECIMATE_SIGMA
    assert sigma > hierarchy.DECIMATE_SIGMA
    across_columns, across_rows = hierarchy.lab_contrast(lab, sigma)
    blurred = gaussian(lab, sigma, channel_axis=-1)
    exact = sigma * np.linalg.norm(np.diff(blurred, axis=1), axis=2)
    assert across_columns.shape == exact.shape and across_rows.shape == (159, 240)
    # Within a few per cent away from the edges (a factor 3 here; 9 on a 12 MP photo, where
    # the whole image was within 3 %), where the shrunk image's blocks repeat the edge.
    inside = (slice(12, -12), slice(12, -12))
    assert np.abs(across_columns - exact)[inside].mean() < 0.06 * exact[inside].mean()
    assert np.argmax(across_columns.mean(axis=0)) in (118, 119, 120)
