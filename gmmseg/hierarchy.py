"""A hierarchy of regions: the mixture's fine regions merged pair by pair into one.

The fine regions (``regions.connected_regions`` of the mixture's labels) are
merged, the least different touching pair first, until one region is left.
Each merge is recorded with its height, which never decreases, so the merges
form an ultrametric (as gPb-owt-ucm's contour map does) and are stored as
SciPy's linkage matrix: any cut, by a number of regions or by a height, is
taken afterwards without refitting.

How different two touching regions are is the mixture's own question, asked
of the boundary too: the log-likelihood lost by modelling both with one
Gaussian in CIELAB instead of one each (which grows with the regions' sizes
and with how far apart their colour distributions are, and forgives texture,
whose variance both share), times the mean colour contrast along their shared
border (a weak border between similar colours merges first).

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and
   Hierarchical Image Segmentation", IEEE TPAMI 33(5), 2011 (the ultrametric
   contour map).
.. [2] C. Carson, S. Belongie, H. Greenspan, J. Malik, "Blobworld: image
   segmentation using expectation-maximization and its application to image
   querying", IEEE TPAMI 24(8), 2002.
"""

import heapq
import warnings

import numpy as np

import segmentation_GMM as sg
import utils
from gmmseg import merge_order
from gmmseg.params import ParameterError, ParameterWarning, check_cut
from gmmseg.regions import connected_regions, final_owners, merge_regions

__all__ = [
    "BASE_PIXELS",
    "DEFAULT_LEVEL",
    "DEFAULT_LEVELS",
    "FINE_MIN_REGION",
    "REG_LAB",
    "border_contrast",
    "build_hierarchy",
    "cut",
    "fine_min_region",
    "label_regions",
    "level_of",
    "load_hierarchy",
    "save_hierarchy",
]

# Lab units^2 added to each region's covariance: a flat region (a clipped sky)
# has none of its own, and log|Sigma| must stay finite. One unit is about half
# a just noticeable difference (Delta E 2.3).
REG_LAB = merge_order.REG_LAB

# The image size the contrast's scale is set for: a BSDS500 image (481 x 321).
# A larger photo's borders are blurred over proportionally more pixels, so
# that one border has the same contrast at any resolution.
BASE_PIXELS = 481 * 321

# Fine regions under this many pixels (per ``BASE_PIXELS``: more on a larger
# image) are folded into a neighbour before the hierarchy is built. Without
# it every speck of texture is a node; the merges' Python loop runs once per
# node.
FINE_MIN_REGION = 20

# The height at which ``--hierarchy`` cuts when neither a number of regions nor
# a level is given, per merge order. Learned: the best single height by PRI
# on the 100 BSDS500 validation images (bench/train_merges.py), with fine
# regions of --k 12 --color-space lab --smooth 2 --iters 10; about the
# probability one half, where a merge is as likely wrong as right.
# Likelihood (issue 11): the best single height by PRI on the 30 BSDS500
# training images of bench/bench_bsds.py then, with fine regions of --k 8
# --color-space lab --smooth 2 --iters 10, about 9 regions on a BSDS image.
DEFAULT_LEVELS = {"learned": 0.46, "likelihood": 0.316}
DEFAULT_LEVEL = DEFAULT_LEVELS["learned"]


# Blurs wider than this many pixels are taken on a shrunk image (``lab_contrast``).
# The learned order's coarse blur on a BSDS image is 4 pixels: exact.
DECIMATE_SIGMA = 8.0


def fine_min_region(shape):
    """The smallest fine region of an image of ``shape`` (h, w), in pixels."""
    return max(1, round(FINE_MIN_REGION * shape[0] * shape[1] / BASE_PIXELS))


def border_contrast(image):
    """Colour contrast across each pair of 4-neighbour pixels.

    The image in CIELAB, blurred by a Gaussian of ``sigma`` = 1 pixel per
    ``BASE_PIXELS`` (so, in proportion, the same blur at any size); the
    contrast of two neighbours is the Delta E between their blurred colours,
    times ``sigma``, so that a step between two flat colours has about the
    same contrast at any resolution.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
        c = 1 (grey) or 3 (RGB), in the image's units (``utils.max_value``).

    Returns
    -------
    lab : ndarray of shape (h, w, 3), float64
        The image in CIELAB, not blurred.
    across_columns : ndarray of shape (h, w - 1)
        Between each pixel and its right neighbour.
    across_rows : ndarray of shape (h - 1, w)
        Between each pixel and the one below.
    """
    from skimage.color import rgb2lab

    # Each distinct colour converted once: a photo has far fewer than pixels.
    colours, _, inverse = sg.distinct_colours(image)
    rgb = np.clip(colours / utils.max_value(image), 0.0, 1.0)
    lab = rgb2lab(np.broadcast_to(rgb, (len(rgb), 3))[None])[0][inverse]
    lab = lab.reshape(image.shape[:2] + (3,))
    return (lab, *lab_contrast(lab))


def lab_contrast(lab, scale=1.0):
    """``border_contrast`` of an image already in CIELAB, its blur ``scale`` times wider.

    Parameters
    ----------
    lab : ndarray of shape (h, w, 3)
    scale : float, default=1
        The blur's sigma in units of ``border_contrast``'s.

    Returns
    -------
    across_columns : ndarray of shape (h, w - 1)
    across_rows : ndarray of shape (h - 1, w)

    Notes
    -----
    A blur wider than ``DECIMATE_SIGMA`` is taken on the image shrunk by
    block means (by a factor of sigma / 4, the edge repeated to fill the last
    blocks) and enlarged back by linear interpolation: a blur's cost grows
    with its width. On a 12 MP photo the learned order's coarse contrast
    (sigma 36) took 8.6 s exact and 2.4 s so, within 3 % of it on average.
    The scale ``border_contrast`` uses is never decimated, so the likelihood
    order's costs stay exact.
    """
    from skimage.filters import gaussian

    sigma = scale * max(1.0, np.sqrt(lab.shape[0] * lab.shape[1] / BASE_PIXELS))
    if scale > 1 and sigma > DECIMATE_SIGMA:
        from scipy import ndimage

        factor = int(sigma // 4)
        h, w = lab.shape[:2]
        padded = np.pad(lab, ((0, -h % factor), (0, -w % factor), (0, 0)), mode="edge")
        small = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor,
                               factor, 3).mean(axis=(1, 3))
        small = gaussian(small, sigma / factor, channel_axis=-1)
        # grid_mode: each small pixel covers its block, so the blocks stay in place.
        blurred = ndimage.zoom(small, (factor, factor, 1), order=1, mode="nearest",
                               grid_mode=True)[:h, :w]
    else:
        blurred = gaussian(lab, sigma, channel_axis=-1)
    return (sigma * np.linalg.norm(np.diff(blurred, axis=1), axis=2),
            sigma * np.linalg.norm(np.diff(blurred, axis=0), axis=2))


def build_hierarchy(fine, image, *, order="learned", observe=None):
    """Merge the fine regions, least costly pair first, until one is left.

    Parameters
    ----------
    fine : ndarray of shape (h, w), int
        The fine regions, numbered 0 .. n - 1, each 4-connected
        (``regions.connected_regions``).
    image : ndarray of shape (h, w, c)
        The image (c = 1 or 3).
    order : {"learned", "likelihood"} or merge_order.LearnedOrder, default="learned"
        The cost of a merge (``gmmseg.merge_order``): the probability that
        it is wrong by the shipped logistic regression (or by the one given),
        or the log-likelihood lost times the border's contrast (Notes).
    observe : callable, optional
        For training an order (``bench/train_merges.py``):
        ``observe(i, j, features)`` is called with each pair about to be
        merged and its ``merge_order.FEATURES``.

    Returns
    -------
    merges : ndarray of shape (n - 1, 4), float64
        SciPy's linkage matrix (``scipy.cluster.hierarchy``): row t merges
        regions ``merges[t, 0]`` and ``merges[t, 1]`` (fine regions are 0 ..
        n - 1, the region made by row t is n + t) at height ``merges[t, 2]``
        into a region of ``merges[t, 3]`` fine regions. Heights never
        decrease.

    Notes
    -----
    The ``"likelihood"`` cost of merging touching regions i and j is

        d(i, j) = [L(i) + L(j) - L(i u j)] / (h w) * c(i, j)

    where L is a region's log-likelihood under its own maximum-likelihood
    Gaussian in CIELAB (covariance plus ``REG_LAB``), so the first factor is
    the log-likelihood lost, in nats per pixel of the image, by modelling the
    two with one Gaussian: 1/2 [n log|S_ij| - n_i log|S_i| - n_j log|S_j|];
    and c is the mean of ``border_contrast`` along their shared border. A merge
    can cost less than one before it (a merged region's neighbours may fit it
    better); its height is then the earlier one, which keeps the heights an
    ultrametric. The same holds of the learned cost, a probability.
    """
    if not isinstance(order, merge_order.LearnedOrder) and order not in merge_order.ORDERS:
        raise ParameterError("order", f"order must be one of {merge_order.ORDERS}, not {order!r}")
    lab, across_columns, across_rows = border_contrast(image)
    n = int(fine.max()) + 1
    if n == 1:
        return np.zeros((0, 4))
    learned = order if isinstance(order, merge_order.LearnedOrder) else (
        merge_order.learned_order() if order == "learned" else None)
    needs_features = learned is not None or observe is not None
    texture = coarse = None
    if needs_features:
        texture = merge_order.local_spread(lab[..., 0])
        coarse = lab_contrast(lab, merge_order.COARSE_SCALE)
    regions = merge_order.Regions(fine, lab, across_columns, across_rows, texture, coarse)

    def costs(i, others):
        if learned is None:
            return regions.likelihood_cost(i, others)
        return learned.cost(regions.features(i, others))

    heap = []
    for i in range(n):
        others = [m for m in regions.neighbours[i] if m > i]
        if others:
            heap += zip(costs(i, np.array(others)).tolist(), [i] * len(others), others,
                        strict=True)
    heapq.heapify(heap)
    alive = np.zeros(2 * n - 1, dtype=bool)
    alive[:n] = True
    members = np.ones(2 * n - 1)
    merges = np.zeros((n - 1, 4))
    height = 0.0
    for new in range(n, 2 * n - 1):
        while True:
            if not heap:
                raise ValueError("the fine regions are not all connected to each other")
            cost, i, j = heapq.heappop(heap)
            if alive[i] and alive[j]:  # entries of regions already merged are stale
                break
        if observe is not None:
            observe(i, j, regions.features(i, np.array([j]))[0])
        height = max(height, cost)
        regions.merge(i, j, new)
        alive[i] = alive[j] = False
        alive[new] = True
        others = np.array(list(regions.neighbours[new]), dtype=np.int64)
        if len(others):
            for cost, m in zip(costs(new, others).tolist(), others.tolist(), strict=True):
                heapq.heappush(heap, (cost, m, new))
        members[new] = members[i] + members[j]
        merges[new - n] = (i, j, height, members[new])
    return merges


def level_of(merges, n_regions):
    """The lowest height at which the hierarchy has at most ``n_regions`` regions."""
    n = len(merges) + 1
    done = n - n_regions
    return 0.0 if done <= 0 else float(merges[done - 1, 2])


def cut(fine, merges, n_regions=None, level=None):
    """The regions of one cut of the hierarchy.

    Parameters
    ----------
    fine : ndarray of shape (h, w), int
        The fine regions, 0 .. n - 1.
    merges : ndarray of shape (n - 1, 4)
        From ``build_hierarchy``.
    n_regions : int, optional
        Apply the first n - ``n_regions`` merges: exactly that many regions
        (all n fine regions if ``n_regions`` > n).
    level : float, optional
        Instead: apply every merge of height at most ``level``.

    Returns
    -------
    regions : ndarray of shape (h, w), int32
        Numbered 0 .. N - 1 in the order of their first pixel.

    Raises
    ------
    ValueError
        ``params.ParameterError`` if neither or both of ``n_regions`` and
        ``level`` are given, or one is out of its range.
    """
    n_regions, level = check_cut(n_regions, level, fine.size)
    if n_regions is None and level is None:
        raise ParameterError(("n_regions", "level"), "cut needs n_regions or level")
    n = len(merges) + 1
    if level is not None:
        done = int(np.searchsorted(merges[:, 2], level, side="right"))
    else:
        done = min(max(n - n_regions, 0), n - 1)
    owner = np.arange(2 * n - 1)
    applied = merges[:done, :2].astype(np.int64)
    owner[applied[:, 0]] = n + np.arange(done)
    owner[applied[:, 1]] = n + np.arange(done)
    _, first, numbered = np.unique(final_owners(owner)[:n][fine.ravel()], return_index=True,
                                   return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[numbered].reshape(fine.shape).astype(np.int32)


def save_hierarchy(path, fine, merges):
    """Write the fine regions and the merges to one ``.npz`` (atomically)."""
    utils.write_atomic(path, lambda tmp: np.savez_compressed(
        tmp, fine=fine.astype(np.int32), merges=merges))


def load_hierarchy(path):
    """Read what ``save_hierarchy`` wrote.

    Returns
    -------
    fine : ndarray of shape (h, w), int32
    merges : ndarray of shape (n - 1, 4)
    """
    path = utils.file_path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["fine"], data["merges"]
    except (OSError, KeyError, ValueError) as exc:
        raise utils.InputError(f"{path}: not a hierarchy file ({exc})") from None


def label_regions(image, labels, options):
    """Connected regions of labels, merged or arranged in a hierarchy, as ``options`` ask.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
    labels : ndarray of shape (h, w), uint8
    options : gmmseg.Options

    Returns
    -------
    labels : ndarray of shape (h, w), uint8
        With ``min_region``, the small regions folded into their neighbours.
    regions, fine, merges : ndarray or None
        See ``gmmseg.Segmentation``.
    """
    if not options.regions:
        return labels, None, None, None
    min_region = options.min_region
    if options.hierarchy:
        min_region = max(min_region, fine_min_region(labels.shape))
    regions, labels = connected_regions(labels, min_region)
    if options.merge > 0:
        regions = merge_regions(regions, image, options.merge)
    if not options.hierarchy:
        return labels, regions, None, None
    fine, merges = regions, build_hierarchy(regions, image, order=options.merge_order)
    level, n_regions = options.level, options.n_regions
    if n_regions is None and level is None:
        level = DEFAULT_LEVELS[options.merge_order]
    elif level is not None and level > 1 and options.merge_order == "learned":
        warnings.warn(ParameterWarning("level", f"level {level:g}: the learned order's heights "
                                                f"are probabilities, at most 1; every merge is "
                                                f"applied"), stacklevel=4)
    elif n_regions is not None and n_regions > len(merges) + 1:
        warnings.warn(ParameterWarning("n_regions", f"n_regions {n_regions}: the hierarchy has "
                                                    f"{len(merges) + 1} fine regions; all are "
                                                    f"kept"), stacklevel=4)
    return labels, cut(fine, merges, n_regions, level), fine, merges
