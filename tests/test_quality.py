"""Segment quality options (--color-space, --spatial, --smooth) and the truth metrics (--truth)."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image
from skimage.color import rgb2lab
from sklearn.metrics import adjusted_rand_score, rand_score
from sklearn.mixture import GaussianMixture

import gmmseg
import segmentation_GMM as sg
import utils
from gmmseg import features
from gmmseg.regions import connected_regions, merge_regions, region_borders
from gmmseg.scores import (
    contingency,
    covering,
    load_truth,
    probabilistic_rand_index,
    table_scores,
    truth_scores,
    variation_of_information,
)
from gmmseg.selection import K_GAIN, choose_k


def noisy_regions(means, truth, noise, seed=0):
    """An 8-bit image painting region r of ``truth`` with colour ``means[r]`` plus noise."""
    rng = np.random.default_rng(seed)
    image = np.asarray(means, dtype=float)[truth] + rng.normal(0, noise, truth.shape + (3,))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def disc_truth(h=48, w=64):
    """A disc in the middle (region 1) on a background (region 0)."""
    rows, cols = np.mgrid[:h, :w]
    return ((rows - h / 2) ** 2 + (cols - w / 2) ** 2 < (h / 3) ** 2).astype(int)


# --------------------------------------------------------------------------
# --smooth
# --------------------------------------------------------------------------

def test_smoothing_raises_adjusted_rand_index():
    truth = disc_truth()
    # Two colours one noise standard deviation apart: pixel by pixel about one
    # in three is on the wrong side, so the plain labels are confetti.
    image = noisy_regions([[110, 110, 110], [135, 135, 135]], truth, noise=25)
    plain = gmmseg.segment(image, 2, progress=False)["labels"]
    smoothed = gmmseg.segment(image, 2, progress=False, smooth=2.0)["labels"]
    plain_ari = adjusted_rand_score(truth.ravel(), plain.ravel())
    smoothed_ari = adjusted_rand_score(truth.ravel(), smoothed.ravel())
    assert plain_ari < 0.5
    assert smoothed_ari > 0.85
    assert smoothed_ari > plain_ari + 0.3


def test_smoothed_argmax_is_argmax_of_blurred_gamma():
    rng = np.random.default_rng(3)
    gamma = rng.dirichlet(np.ones(4), size=30 * 20)
    labels = features.smoothed_argmax(lambda k: gamma[:, k], 4, (30, 20), 1.5)
    # Reference: blur each component with a kernel written out by hand
    # (the same reflection at the border as ndimage's mode="nearest").
    radius = 6
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    kernel /= kernel.sum()
    blurred = np.empty((4, 30, 20))
    for k in range(4):
        image = np.pad(gamma[:, k].reshape(30, 20), radius, mode="edge")
        image = np.apply_along_axis(np.convolve, 0, image, kernel, mode="valid")
        blurred[k] = np.apply_along_axis(np.convolve, 1, image, kernel, mode="valid")
    np.testing.assert_array_equal(labels, np.argmax(blurred, axis=0))


# --------------------------------------------------------------------------
# --color-space lab
# --------------------------------------------------------------------------

def test_lab_matches_sklearn_on_lab_pixels():
    truth = np.repeat(np.arange(3), 300)[np.random.default_rng(1).permutation(900)]
    image = noisy_regions([[200, 40, 40], [40, 160, 60], [60, 60, 200]],
                          truth.reshape(30, 30), noise=12)
    result = gmmseg.segment(image, 3, max_iter=500, tol=1e-10, progress=False,
                            color_space="lab")
    # Independent path: every pixel through skimage, Z-scored, fitted by
    # scikit-learn from the same k-means seed.
    lab = rgb2lab(image / 255.0).reshape(-1, 3)
    x = (lab - lab.mean(0)) / lab.std(0)
    mus, priors, covs = sg.kmeans(3, x, seed=0)
    reference = GaussianMixture(3, reg_covar=sg.REG_COVAR, tol=1e-10, max_iter=500,
                                means_init=mus, weights_init=priors,
                                precisions_init=np.linalg.inv(covs)).fit(x)
    np.testing.assert_allclose(np.sort(result["gmm"].priors), np.sort(reference.weights_),
                               atol=1e-6)
    assert adjusted_rand_score(reference.predict(x), result["labels"].ravel()) == 1.0
    # means_rgb is each label's mean colour in the image's units
    labels = result["labels"].ravel()
    for k in range(3):
        np.testing.assert_allclose(result["means_rgb"][k],
                                   image.reshape(-1, 3)[labels == k].mean(0))


def test_lab_refuses_greyscale():
    with pytest.raises(utils.InputError, match="greyscale"):
        gmmseg.segment(np.zeros((4, 4, 1), dtype=np.uint8) + np.arange(4)[:, None, None], 2,
                       progress=False, color_space="lab")


# --------------------------------------------------------------------------
# --spatial
# --------------------------------------------------------------------------

def same_colour_left_right(h=30, w=60):
    """Left and right blocks of one grey, split by a dark band: regions 0, 2, 1."""
    truth = np.zeros((h, w), dtype=int)
    truth[:, w // 3: 2 * w // 3] = 2
    truth[:, 2 * w // 3:] = 1
    image = noisy_regions([[150, 150, 150], [150, 150, 150], [40, 40, 40]], truth, noise=10)
    return image, truth


@pytest.mark.parametrize("sample, chunk", [(None, None), (700, 257)])
def test_spatial_separates_one_colour_left_and_right(monkeypatch, sample, chunk):
    if sample is not None:  # fit on a sample and label in blocks, as on a big photo
        monkeypatch.setattr(features, "SPATIAL_SAMPLE", sample)
        monkeypatch.setattr(features, "CHUNK", chunk)
    image, truth = same_colour_left_right()
    colour_only = gmmseg.segment(image, 3, progress=False)["labels"]
    spatial = gmmseg.segment(image, 3, progress=False, spatial=1.0)["labels"]
    assert adjusted_rand_score(truth.ravel(), colour_only.ravel()) < 0.6
    assert adjusted_rand_score(truth.ravel(), spatial.ravel()) > 0.95


def test_spatial_responsibilities_match_inference_on_every_pixel(monkeypatch):
    monkeypatch.setattr(features, "CHUNK", 100)  # several blocks, the last one partial
    image, _ = same_colour_left_right(h=12, w=25)
    colours, counts, inverse = sg.distinct_colours(image)
    mean, std = sg.channel_stats(colours.astype(float), counts)
    colours_norm = (colours - mean) / std
    gmm = features.fit_spatial(colours_norm, inverse, (12, 25), 3, 1.0, progress=False)
    component_gamma = features.spatial_gamma(gmm, colours_norm, inverse, (12, 25), 1.0)
    # Every pixel's features built at once, with positions Z-scored by numpy.
    rows, cols = np.mgrid[:12, :25]
    position = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(float)
    x = np.hstack([colours_norm[inverse], (position - position.mean(0)) / position.std(0)])
    gamma, _ = gmm.inference(x)
    for k in range(3):
        np.testing.assert_allclose(component_gamma(k), gamma[:, k], rtol=1e-9, atol=1e-12)
    labels = features.spatial_argmax(gmm, colours_norm, inverse, (12, 25), 1.0)
    np.testing.assert_array_equal(labels.ravel(), np.argmax(gamma, axis=1))


# --------------------------------------------------------------------------
# Truth metrics against closed forms
# --------------------------------------------------------------------------

def test_probabilistic_rand_index_matches_scikit_learn():
    from sklearn.metrics import rand_score

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 7, (40, 30)) * 13  # label values need not be 0 .. n - 1
    truths = rng.integers(-2, 4, (3, 40, 30))
    expected = np.mean([rand_score(t.ravel(), labels.ravel()) for t in truths])
    assert probabilistic_rand_index(labels, truths) == pytest.approx(expected, rel=1e-12)


def test_voi_closed_forms_in_bits():
    s = np.array([0, 0, 1, 1, 1, 2])
    h_s = -(2 / 6 * np.log2(2 / 6) + 3 / 6 * np.log2(3 / 6) + 1 / 6 * np.log2(1 / 6))
    # the same partition under other names
    assert variation_of_information(s, np.array([7, 7, 3, 3, 3, 9])) == pytest.approx(
        0.0, abs=1e-12)
    # against a single region: all of H(S), in bits
    assert variation_of_information(s, np.zeros(6, int)) == pytest.approx(h_s, rel=1e-12)
    assert variation_of_information(np.arange(4), np.zeros(4, int)) == pytest.approx(2.0)
    # two independent halvings: H + H - 0 = 1 bit + 1 bit
    assert variation_of_information(np.array([[0, 0], [1, 1]]),
                                    np.array([[0, 1], [0, 1]])) == pytest.approx(2.0)


def test_probabilistic_rand_index_closed_form():
    s = np.array([[0, 0], [1, 1]])
    # Against [0, 0, 0, 1] the six pixel pairs agree on 3 (counted by hand);
    # against itself on all 6.
    truths = np.array([[[0, 0], [0, 1]], [[5, 5], [2, 2]]])
    assert probabilistic_rand_index(s, truths) == pytest.approx((3 / 6 + 1) / 2)
    scores = truth_scores(s, truths)
    assert scores["pri"] == pytest.approx(0.75)
    assert scores["humans"] == 2
    # VoI against [0,0,0,1], in bits: H(S) = 1, H(G) = H(3/4, 1/4),
    # I = H(G) - H(G|S) with H(G|S) = 1/2 (one half of S is pure, the other a fair split)
    h_g = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    voi_first = 1 + h_g - 2 * (h_g - 0.5)
    assert scores["voi"] == pytest.approx(voi_first / 2)


def test_table_scores_equal_scikit_learn_and_scikit_image_on_random_partitions():
    from skimage.metrics import variation_of_information as skimage_voi

    rng = np.random.default_rng(8)
    for _ in range(5):
        labels = rng.integers(0, rng.integers(1, 9), (12, 9))
        truth = rng.integers(0, rng.integers(1, 6), (12, 9)) * 7
        rand, voi, covered = table_scores(contingency(labels, truth))
        assert rand == pytest.approx(rand_score(truth.ravel(), labels.ravel()), rel=1e-12)
        assert voi == pytest.approx(np.sum(skimage_voi(truth, labels)), abs=1e-12)
        # The covering by brute force, region by region.
        best = [max(np.sum((truth == v) & (labels == u)) / np.sum((truth == v) | (labels == u))
                    for u in np.unique(labels)) for v in np.unique(truth)]
        areas = [np.sum(truth == v) for v in np.unique(truth)]
        assert covered == pytest.approx(np.dot(areas, best) / truth.size, rel=1e-12)


def test_covering_closed_form():
    s = np.array([[0, 0, 1], [0, 1, 1]])
    # Human 1 (top row / bottom row): each of its 3-pixel regions overlaps its
    # best region of s in 2 pixels of a union of 4, so (3 * 1/2 + 3 * 1/2) / 6;
    # human 2 is s renamed, 1; human 3 (one region) meets each half of s in 3
    # of 6 pixels, 1/2. Counted by hand, as evaluation_reg_image.m counts.
    humans = np.array([[[0, 0, 0], [1, 1, 1]], [[7, 7, 3], [7, 3, 3]], np.zeros((2, 3), int)])
    assert covering(s, humans[:1]) == pytest.approx(0.5)
    assert covering(s, humans[1:2]) == pytest.approx(1.0)
    assert covering(s, humans[2:]) == pytest.approx(0.5)
    assert truth_scores(s, humans)["covering"] == pytest.approx(2 / 3)
    # Not symmetric: the humans' regions are the ones covered. One region
    # covering a human who drew two unequal regions scores their larger share.
    assert covering(np.zeros((2, 3), int), np.array([[[0, 0, 0], [0, 0, 1]]])) == \
        pytest.approx(5 / 6 * 5 / 6 + 1 / 6 * 1 / 6)


# --------------------------------------------------------------------------
# Truth files
# --------------------------------------------------------------------------

def test_load_truth_formats(tmp_path):
    rng = np.random.default_rng(4)
    humans = rng.integers(1, 5, size=(3, 6, 8)).astype(np.int32)
    np.save(tmp_path / "one.npy", humans[0])
    np.save(tmp_path / "many.npy", humans)
    np.savez(tmp_path / "many.npz", segs=humans)
    cells = np.empty((1, 3), dtype=object)
    for i in range(3):
        cells[0, i] = {"Segmentation": humans[i].astype(np.uint16),
                       "Boundaries": np.zeros((6, 8), bool)}
    scipy.io.savemat(tmp_path / "bsds.mat", {"groundTruth": cells})
    Image.fromarray((humans[0] * 40).astype(np.uint8)).save(tmp_path / "one.png")
    np.testing.assert_array_equal(load_truth(tmp_path / "one.npy"), humans[:1])
    for name in ("many.npy", "many.npz", "bsds.mat"):
        np.testing.assert_array_equal(load_truth(tmp_path / name), humans)
    png = load_truth(tmp_path / "one.png")
    assert png.shape == (1, 6, 8)
    assert adjusted_rand_score(png.ravel(), humans[0].ravel()) == 1.0


def test_cli_truth_writes_scores(cli, tmp_path):
    truth = disc_truth(30, 40)
    image = noisy_regions([[150, 30, 30], [90, 160, 220]], truth, noise=6)
    Image.fromarray(image).save(tmp_path / "disc.png")
    # the second "human" also splits the disc in two, so the scores are not trivial
    other = truth.copy()
    other[:15][truth[:15] == 1] = 2
    np.save(tmp_path / "truth.npy", np.stack([truth, other]))
    done = cli("--image", tmp_path / "disc.png", "--k", "2", "--truth", tmp_path / "truth.npy",
               "--color-space", "lab", "--smooth", "1", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    assert "PRI" in done.stdout and "VoI" in done.stdout
    record = json.loads((tmp_path / "res" / "disc_k2.json").read_text())
    labels = np.asarray(Image.open(tmp_path / "res" / "disc_k2_labels.png")).ravel()
    scores = record["truth"]
    assert scores["path"] == str(tmp_path / "truth.npy")
    assert scores["humans"] == 2
    assert scores["pri"] == pytest.approx(
        (rand_score(truth.ravel(), labels) + rand_score(other.ravel(), labels)) / 2)
    assert scores["ari"] == pytest.approx(
        (adjusted_rand_score(truth.ravel(), labels) + adjusted_rand_score(other.ravel(), labels))
        / 2)
    assert adjusted_rand_score(truth.ravel(), labels) == 1.0
    # So VoI is 0 against the first human, and against the second, which
    # refines the labels, the information the split adds: H(other) - H(truth),
    # in bits.
    def h(partition):
        p = np.unique(partition, return_counts=True)[1] / partition.size
        return -np.sum(p * np.log2(p))
    assert scores["voi"] == pytest.approx((h(other) - h(truth)) / 2, rel=1e-9)
    assert scores["pri"] < 1.0
    # the first human is covered exactly; the second's two pieces of the disc
    # are each covered by the whole disc
    assert scores["covering"] == pytest.approx(
        (1 + covering(labels.reshape(truth.shape), other[None])) / 2)
    assert 0.5 < scores["covering"] < 1.0
    assert record["color_space"] == "lab" and record["smooth"] == 1.0


# --------------------------------------------------------------------------
# Bad input: one line, exit 2
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["smooth", "spatial", "space", "missing", "shape", "garbage",
                                  "float", "grey", "region", "video"])
def test_bad_quality_input_one_line_exit_2(cli, tmp_path, case):
    image = noisy_regions([[150, 30, 30], [90, 160, 220]], disc_truth(30, 40), noise=6)
    Image.fromarray(image).save(tmp_path / "disc.png")
    Image.fromarray(image[:, :, 0]).save(tmp_path / "grey.png")
    np.save(tmp_path / "small.npy", np.zeros((10, 10), int))
    np.save(tmp_path / "float.npy", np.zeros((30, 40)))
    (tmp_path / "garbage.npy").write_text("not an array")
    args = {"smooth": ["--smooth", "-1"],
            "spatial": ["--spatial", "wide"],
            "space": ["--color-space", "hsv"],
            "missing": ["--truth", tmp_path / "nope.npy"],
            "shape": ["--truth", tmp_path / "small.npy"],
            "garbage": ["--truth", tmp_path / "garbage.npy"],
            "float": ["--truth", tmp_path / "float.npy"],
            "grey": ["--color-space", "lab", "--image", tmp_path / "grey.png"],
            "region": ["--min-region", "-5"],
            "video": ["--video", tmp_path / "disc.png", "--smooth", "2"]}[case]
    if "--image" not in args and "--video" not in args:
        args = ["--image", tmp_path / "disc.png", *args]
    done = cli(*args, "--k", "2", "--out", tmp_path / "res")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "res").exists()  # refused before any output


# --------------------------------------------------------------------------
# --k auto's gain rule
# --------------------------------------------------------------------------

def test_choose_k_gain_rule():
    def records(gains):
        ll = np.concatenate([[-3.0], -3.0 + np.cumsum(gains)])
        return [{"k": k, "log_likelihood": value, "bic": -value} for k, value in
                zip(range(2, 2 + len(ll)), ll, strict=False)]
    step = K_GAIN
    # gains 2->3 large, 3->4 small, 4->5 large again: the first small one decides
    assert choose_k(records([10 * step, 0.5 * step, 10 * step]))["k"] == 3
    assert choose_k(records([0.5 * step, 10 * step]))["k"] == 2
    # never small: the largest K tried
    assert choose_k(records([10 * step, 5 * step, 2 * step]))["k"] == 5
    # BIC still means the lowest BIC (here: the highest log-likelihood)
    assert choose_k(records([10 * step, 0.5 * step, 10 * step]), "bic")["k"] == 5


def test_cli_k_auto_gain_on_three_blobs(cli, tmp_path):
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 400)
    means = np.array([[200, 40, 40], [40, 160, 60], [60, 60, 200]], float)
    image = (means[truth] + rng.normal(0, 12, (1200, 3))).reshape(30, 40, 3)
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(tmp_path / "b.png")
    done = cli("--image", tmp_path / "b.png", "--k", "auto", "--k-max", "6", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "kept k=3" in done.stdout
    record = json.loads((tmp_path / "b_k3.json").read_text())
    selection = record["selection"]
    assert selection["criterion"] == "gain" and selection["k"] == [2, 3, 4, 5, 6]
    gains = np.diff(selection["log_likelihood"])
    assert gains[0] >= K_GAIN > gains[1]


# --------------------------------------------------------------------------
# --min-region
# --------------------------------------------------------------------------

def test_connected_regions_split_and_fold():
    labels = np.zeros((6, 9), dtype=np.uint8)
    labels[:, 3:6] = 1          # a band of label 1 splits label 0 in two
    labels[1, 1] = 1            # a one-pixel speck of 1 inside the left part
    regions, folded = connected_regions(labels, min_area=2)
    # the speck took the region and label around it
    assert folded[1, 1] == 0 and regions[1, 1] == regions[0, 0]
    np.testing.assert_array_equal(folded[:, 3:6], 1)
    # left, band, right: three regions numbered 0..2, each one of the parts
    assert sorted(np.unique(regions)) == [0, 1, 2]
    parts = np.zeros((6, 9), int)
    parts[:, 3:6], parts[:, 6:] = 1, 2
    assert adjusted_rand_score(parts.ravel(), regions.ravel()) == 1.0
    # nothing is large enough: nothing is folded, the speck stays its own region
    regions, folded = connected_regions(labels, min_area=100)
    assert len(np.unique(regions)) == 4
    np.testing.assert_array_equal(folded, labels)


def test_cli_min_region_writes_regions_and_scores_them(cli, tmp_path):
    # two discs of one colour on a background: one label, two regions
    truth = np.zeros((30, 60), int)
    rows, cols = np.mgrid[:30, :60]
    truth[(rows - 15) ** 2 + (cols - 15) ** 2 < 80] = 1
    truth[(rows - 15) ** 2 + (cols - 45) ** 2 < 80] = 2
    image = noisy_regions([[40, 60, 160], [200, 180, 40], [200, 180, 40]], truth, noise=5)
    Image.fromarray(image).save(tmp_path / "two.png")
    np.save(tmp_path / "truth.npy", truth)
    done = cli("--image", tmp_path / "two.png", "--k", "2", "--min-region", "20",
               "--truth", tmp_path / "truth.npy", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    regions_png = Image.open(tmp_path / "two_k2_regions.png")
    assert regions_png.mode.startswith("I")  # 16-bit
    regions = np.asarray(regions_png).astype(int)
    record = json.loads((tmp_path / "two_k2.json").read_text())
    assert record["n_regions"] == 3 and record["min_region"] == 20
    assert adjusted_rand_score(truth.ravel(), regions.ravel()) == 1.0
    assert record["truth"]["pri"] == pytest.approx(1.0)
    assert record["truth"]["voi"] == pytest.approx(0.0, abs=1e-9)
    # the labels themselves still have two values: the discs share one
    labels = np.asarray(Image.open(tmp_path / "two_k2_labels.png"))
    assert labels[15, 15] == labels[15, 45] != labels[0, 0]


# --------------------------------------------------------------------------
# --merge
# --------------------------------------------------------------------------

def stripes(colours, width=3, height=4):
    """Vertical stripes, one colour each, and their region map 0, 1, 2, ..."""
    regions = np.repeat(np.arange(len(colours)), width)[None].repeat(height, axis=0)
    return np.asarray(colours, dtype=np.uint8)[regions], regions


def test_region_borders_of_stripes_and_a_square():
    _, regions = stripes([[0, 0, 0]] * 3)
    np.testing.assert_array_equal(region_borders(regions)[0], [[0, 1], [1, 2]])
    square = np.zeros((5, 5), int)
    square[1:4, 1:4] = 1
    square[2, 2] = 2  # inside region 1 only
    np.testing.assert_array_equal(region_borders(square)[0], [[0, 1], [1, 2]])
    # The ring around the 3x3 square touches it along 4 sides of 3 pixels; the
    # centre touches the square on its 4 sides. Summed values: 2 across columns,
    # 3 across rows.
    _, length, total = region_borders(square, np.full((5, 4), 2.0), np.full((4, 5), 3.0))
    np.testing.assert_array_equal(length, [12, 4])
    np.testing.assert_array_equal(total, [6 * 2 + 6 * 3, 2 * 2 + 2 * 3])


def test_merge_regions_joins_similar_neighbours_only():
    colours = [[200, 30, 30], [206, 34, 30], [30, 30, 200]]
    image, regions = stripes(colours)
    lab = rgb2lab(np.array([colours], dtype=float) / 255)[0]
    close = np.linalg.norm(lab[0] - lab[1])
    assert 1 < close < 10  # a few Delta E apart, the blue far away
    merged = merge_regions(regions, image, close + 0.01)
    assert adjusted_rand_score([0, 0, 1], merged[0, ::3]) == 1.0
    merged = merge_regions(regions, image, close - 0.01)
    assert len(np.unique(merged)) == 3
    # red and blue are never neighbours of each other's colour: all merge
    # only when the threshold passes the red-blue difference
    assert len(np.unique(merge_regions(regions, image, 1000.0))) == 1


def test_merge_regions_compares_merged_means():
    # Grey levels 100, 104, 108, 112 side by side, the threshold between one
    # and two steps. Lightness steps shrink as grey brightens, so 108-112
    # merges first (mean 110); 104 is then 1.5 steps from it, and 100-104
    # merges next. A chain of the original neighbours would make one region.
    grey = np.array([100, 104, 108, 112], dtype=np.uint8)
    image, regions = stripes(grey[:, None])
    image = image[:, :, :1]
    lightness = rgb2lab(np.repeat(grey[:, None], 3, axis=1)[None] / 255)[0, :, 0]
    step = lightness[1] - lightness[0]
    merged = merge_regions(regions, image, 1.2 * step)
    assert np.all(np.diff(lightness)[::-1] < np.diff(lightness)[0] + 1e-12)
    assert adjusted_rand_score([0, 0, 1, 1], merged[0, ::3]) == 1.0
