"""The region hierarchy (issue 11): merges, cuts, the saved file, the options.

What can be known exactly is checked on images the tests make; the cuts are
compared with SciPy's own readings of a linkage matrix (``cut_tree``,
``fcluster``), and the merge cost with the closed form computed from the
pixels by NumPy.
"""

import json
import os
import warnings

import numpy as np
import pytest
from scipy.cluster import hierarchy as scipy_hierarchy
from sklearn.metrics import adjusted_rand_score

import gmmseg
import utils
from gmmseg import hierarchy
from gmmseg.params import ParameterWarning
from gmmseg.pipeline import segment_file


def same_partition(a, b):
    return adjusted_rand_score(np.ravel(a), np.ravel(b)) == pytest.approx(1.0)


def patchwork(seed=0):
    """Two flat halves, dark blue and light orange, each split into shaded patches.

    The patches of one half differ by a few Delta E, the halves by about 80,
    across a hard vertical edge.
    """
    rng = np.random.default_rng(seed)
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, :40] = (30, 40, 120)
    image[:, 40:] = (230, 160, 90)
    for top in range(0, 60, 20):
        for left in range(0, 80, 20):
            image[top:top + 20, left:left + 20] += rng.integers(0, 6, 3).astype(np.uint8)
    return image


@pytest.mark.parametrize("order", ["learned", "likelihood"])
def test_two_flat_halves_with_a_hard_edge_merge_last(order):
    image = patchwork()
    result = gmmseg.segment(image, 6, hierarchy=True, n_regions=2, progress=False,
                            merge_order=order)
    merges = result["merges"]
    assert len(merges) + 1 == result["fine"].max() + 1 > 2
    left = np.zeros(image.shape[:2], bool)
    left[:, :40] = True
    assert same_partition(result["regions"], left)
    # The last merge is the costliest by far: the halves' colours differ by
    # about 80 Delta E, the patches within a half by a few. The learned cost,
    # a probability, calls it wrong almost surely, the others far less so.
    if order == "likelihood":
        assert merges[-1, 2] > 10 * merges[-2, 2]
    else:
        assert merges[-1, 2] > 0.99 and merges[-2, 2] < 0.75


def test_merge_cost_is_the_log_likelihood_lost_times_the_border_contrast():
    image = np.zeros((10, 12, 3), np.uint8)
    image[:, :6] = (200, 30, 30)
    image[:, 6:] = (40, 40, 200)
    image[::2, :6] += 20  # stripes: the left region has a colour variance of its own
    fine = np.zeros((10, 12), np.int32)
    fine[:, 6:] = 1
    merges = hierarchy.build_hierarchy(fine, image, order="likelihood")
    lab, across_columns, _ = hierarchy.border_contrast(image)

    def n_log_det(pixels):
        cov = np.cov(pixels, rowvar=False, bias=True) + hierarchy.REG_LAB * np.eye(3)
        return len(pixels) * np.log(np.linalg.det(cov))

    colours = lab.reshape(-1, 3)
    lost = 0.5 * (n_log_det(colours) - n_log_det(colours[fine.ravel() == 0])
                  - n_log_det(colours[fine.ravel() == 1]))
    contrast = across_columns[:, 5].mean()  # the border: columns 5 | 6
    np.testing.assert_allclose(merges, [[0, 1, lost / fine.size * contrast, 2]],
                               rtol=1e-9)


@pytest.fixture(scope="module", params=["learned", "likelihood"])
def fitted(request):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8).repeat(4, 0).repeat(4, 1)
    result = gmmseg.segment(image, 8, hierarchy=True, n_regions=1, progress=False,
                            merge_order=request.param)
    return result["fine"], result["merges"]


def test_merges_are_a_valid_monotone_linkage_and_an_ultrametric(fitted):
    fine, merges = fitted
    n = fine.max() + 1
    assert n > 20
    assert scipy_hierarchy.is_valid_linkage(merges)
    assert scipy_hierarchy.is_monotonic(merges)
    assert merges[-1, 3] == n  # the last merge holds every fine region
    d = scipy_hierarchy.cophenet(merges)
    from scipy.spatial.distance import squareform

    d = squareform(d)
    # d(a, c) <= max(d(a, b), d(b, c)) for every triple
    assert (d[:, None, :] <= np.maximum(d[:, :, None], d[None, :, :]) + 1e-12).all()


def test_asking_for_n_regions_gives_n_regions_as_scipy_cuts_them(fitted):
    fine, merges = fitted
    n = fine.max() + 1
    reference = scipy_hierarchy.cut_tree(merges)  # (n, n): column t has n - t clusters
    for count in range(1, n + 1):
        regions = hierarchy.cut(fine, merges, n_regions=count)
        assert regions.max() + 1 == count == len(np.unique(regions))
        assert same_partition(regions, reference[:, n - count][fine])
    assert hierarchy.cut(fine, merges, n_regions=10 * n).max() + 1 == n


def test_cutting_at_a_level_applies_every_merge_up_to_it(fitted):
    fine, merges = fitted
    for level in np.quantile(merges[:, 2], [0.0, 0.3, 0.7, 0.95, 1.0]):
        regions = hierarchy.cut(fine, merges, level=level)
        reference = scipy_hierarchy.fcluster(merges, level, criterion="distance")
        assert same_partition(regions, reference[fine])
        assert regions.max() + 1 == len(merges) + 1 - np.sum(merges[:, 2] <= level)
    zero_merges = np.sum(merges[:, 2] <= 0)
    assert hierarchy.cut(fine, merges, level=0.0).max() + 1 == len(merges) + 1 - zero_merges


def test_the_saved_hierarchy_reproduces_every_cut(tmp_path):
    image = patchwork(seed=1)
    path = tmp_path / "patchwork.png"
    from PIL import Image

    Image.fromarray(image).save(path)
    record, = segment_file(str(path), 6, out=str(tmp_path / "out"), level=0.5, progress=False)
    fine, merges = hierarchy.load_hierarchy(tmp_path / "out" / "patchwork_k6_hierarchy.npz")
    result = gmmseg.segment(image, 6, hierarchy=True, progress=False)
    np.testing.assert_array_equal(fine, result["fine"])
    np.testing.assert_array_equal(merges, result["merges"])
    for count in range(1, len(merges) + 2):
        assert np.array_equal(hierarchy.cut(fine, merges, n_regions=count),
                              hierarchy.cut(result["fine"], result["merges"], n_regions=count))
    written = np.asarray(Image.open(tmp_path / "out" / "patchwork_k6_regions.png"))
    np.testing.assert_array_equal(written, hierarchy.cut(fine, merges, level=0.5))
    assert record["n_regions"] == written.max() + 1
    assert record["fine_regions"] == len(merges) + 1
    with open(tmp_path / "out" / "patchwork_k6.json") as f:
        saved = json.load(f)
    assert (saved["hierarchy"], saved["level"], saved["regions"]) == (True, 0.5, None)
    assert os.path.getsize(tmp_path / "out" / "patchwork_k6_hierarchy.png") > 0


def test_the_default_level_cuts_where_the_constant_says():
    image = patchwork()
    result = gmmseg.segment(image, 6, hierarchy=True, progress=False)
    assert np.array_equal(result["regions"], hierarchy.cut(result["fine"], result["merges"],
                                                           level=hierarchy.DEFAULT_LEVEL))


def test_a_level_above_one_warns_that_the_learned_heights_are_probabilities():
    with pytest.warns(ParameterWarning, match="level 3: the learned order.s heights"):
        result = gmmseg.segment(patchwork(), 6, level=3.0, progress=False)
    assert result["regions"].max() == 0  # every merge applied: one region
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gmmseg.segment(patchwork(), 6, level=3.0, merge_order="likelihood", progress=False)


def test_fine_regions_are_at_least_the_hierarchy_size():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    result = gmmseg.segment(image, 4, hierarchy=True, progress=False)
    smallest = np.bincount(result["fine"].ravel()).min()
    assert smallest >= hierarchy.fine_min_region(image.shape[:2])
    assert hierarchy.fine_min_region((321 * 4, 481 * 4)) == 16 * hierarchy.FINE_MIN_REGION


def test_a_one_colour_image_is_one_region():
    image = np.full((20, 30, 3), 90, np.uint8)
    with pytest.warns(UserWarning, match="only 1 distinct colour"):
        result = gmmseg.segment(image, 3, hierarchy=True, progress=False)
    assert result["merges"].shape == (0, 4)
    assert (result["regions"] == 0).all()


def test_greyscale_builds_a_hierarchy():
    image = patchwork()[:, :, :1]
    result = gmmseg.segment(image, 6, n_regions=2, progress=False)
    left = np.zeros(image.shape[:2], bool)
    left[:, :40] = True
    assert same_partition(result["regions"], left)


@pytest.mark.parametrize("options, words", [
    ({"n_regions": 0}, "n_regions must be at least 1"),
    ({"n_regions": 2.5}, "n_regions must be a whole number"),
    ({"level": -1.0}, "level must be 0 or more"),
    ({"level": float("nan")}, "level must be 0 or more"),
    ({"n_regions": 3, "level": 1.0}, "give one"),
    ({"hierarchy": True, "merge": 5.0}, "both merge regions"),
    ({"hierarchy": "yes"}, "hierarchy must be True or False"),
    ({"hierarchy": True, "merge_order": "random"}, "merge_order must be one of learned"),
    ({"merge_order": "likelihood"}, "merge_order needs hierarchy"),
])
def test_bad_hierarchy_options_are_refused_by_name(options, words):
    with pytest.raises(utils.InputError) as caught:
        gmmseg.segment(patchwork(), 4, progress=False, **options)
    assert words in str(caught.value) and str(caught.value).split()[0] in options
    assert "--" not in str(caught.value)


def test_command_line_cuts_into_the_regions_asked(cli, tmp_path):
    from PIL import Image

    Image.fromarray(patchwork(seed=2)).save(tmp_path / "patches.png")
    done = cli("--image", "patches.png", "--k", "6", "--regions", "2", "--out", "out")
    assert done.returncode == 0, done.stderr
    assert "2 of " in done.stdout and "fine regions" in done.stdout
    written = np.asarray(Image.open(tmp_path / "out" / "patches_k6_regions.png"))
    left = np.zeros(written.shape, bool)
    left[:, :40] = True
    assert same_partition(written, left)
    assert (tmp_path / "out" / "patches_k6_hierarchy.png").exists()


@pytest.mark.parametrize("args, words", [
    (["--regions", "2", "--level", "1"], "give one"),
    (["--level", "-2"], "--level must be 0 or more"),
    (["--regions", "x"], "regions must be a whole number"),
    (["--regions", "0"], "--regions must be at least 1"),
    (["--hierarchy", "--merge", "5"], "both merge regions"),
    (["--merge-order", "likelihood"], "--merge-order needs --hierarchy: it orders the merges "
                                      "of a hierarchy"),
    (["--hierarchy", "--merge-order", "random"], "invalid choice"),
])
def test_command_line_refuses_bad_cuts_in_one_line(cli, args, words):
    done = cli("--image", os.path.join(os.path.dirname(__file__), "..", "images", "coffee.png"),
               "--out", "out", *args)
    assert done.returncode == 2
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_command_line_refuses_a_hierarchy_for_video(cli, tmp_path):
    done = cli("--video", str(tmp_path), "--regions", "3")
    assert done.returncode == 2
    assert "for images, not --video" in done.stderr


@pytest.mark.parametrize("options, words", [
    ({}, "needs n_regions or level"),
    ({"n_regions": 0}, "n_regions must be from 1"),
    ({"n_regions": 2.5}, "n_regions must be a whole number"),
    ({"level": float("nan")}, "level must be 0 or more"),
    ({"n_regions": 3, "level": 1.0}, "give one"),
])
def test_cut_checks_its_arguments(fitted, options, words):
    fine, merges = fitted
    with pytest.raises(utils.InputError) as caught:
        hierarchy.cut(fine, merges, **options)
    assert words in str(caught.value)


def test_more_regions_than_fine_ones_warns_and_keeps_them_all():
    image = patchwork()
    with pytest.warns(UserWarning, match="fine regions; all are kept"):
        result = gmmseg.segment(image, 6, n_regions=4000, progress=False)
    assert result["regions"].max() + 1 == len(result["merges"]) + 1
