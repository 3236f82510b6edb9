"""Scores against human segmentations, as the BSDS500 benchmark computes them.

For a segmentation S and the humans' segmentations G_1 .. G_m of one image:

- the Probabilistic Rand Index, the mean over the humans of the Rand index
  (the share of pixel pairs on whose grouping, same region or not, S and G
  agree), higher is better;
- the Variation of Information, the mean over the humans of
  H(S) + H(G) - 2 I(S; G) **in bits** (log base 2, as the benchmark's
  ``match_segmentations2.m`` and ``skimage.metrics.variation_of_information``),
  lower is better;
- the Segmentation Covering, the mean over the humans of the covering of the
  human's regions by the segmentation's (``evaluation_reg_image.m``: each
  human region's best intersection over union with a region of S, weighted by
  its area), higher is better;
- and the adjusted Rand index, the Rand index corrected for chance.
"""

import os

import numpy as np

import utils
from gmmseg.params import ParameterError

__all__ = [
    "MAX_TRUTH_REGIONS",
    "check_truth",
    "contingency",
    "covering",
    "hierarchy_scores",
    "load_truth",
    "mean_scores",
    "probabilistic_rand_index",
    "table_scores",
    "truth_scores",
    "variation_of_information",
]

# The 30 BSDS500 training images' 160 human segmentations have at most 105
# labels and 138 connected regions; a greyscale photo read as labels has tens
# of thousands (chelsea: 103 528). Ten times the humans' largest count still
# separates the two by two orders of magnitude.
MAX_TRUTH_REGIONS = 1000


def load_truth(path):
    """Read one or several human segmentations of an image.

    Parameters
    ----------
    path : str or path-like
        A label image (any file Pillow reads; an RGB label image is read as one
        label per distinct colour), a ``.npy`` array of shape (h, w) or
        (n_humans, h, w), a ``.npz`` with key ``segs`` of either shape, or a
        BSDS ``.mat`` (``groundTruth{i}.Segmentation``, one per human).

    Returns
    -------
    truths : ndarray of shape (n_humans, h, w), int64
        Region labels; their values mean nothing beyond equal or not.

    Raises
    ------
    InputError
        If the file is missing or unreadable, holds no integer label array, or
        holds something that is not a segmentation (``MAX_TRUTH_REGIONS``).
    """
    path = utils.file_path(path)
    if not os.path.isfile(path):
        raise ParameterError("truth", f"truth {path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".npy":
            truths = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                truths = data["segs"]
        elif suffix == ".mat":
            import scipy.io  # only here: no other input needs it

            humans = scipy.io.loadmat(path)["groundTruth"].ravel()
            truths = np.stack([human["Segmentation"][0, 0] for human in humans])
        else:
            image = utils.load_image(path)
            truths = np.unique(image.reshape(-1, image.shape[2]), axis=0,
                               return_inverse=True)[1].reshape(image.shape[:2])
    except utils.InputError as exc:
        raise ParameterError("truth", f"truth {exc}") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ParameterError("truth", f"truth {path}: not a readable label file ({exc})") from None
    truths = np.asarray(truths)
    if truths.ndim == 2:
        truths = truths[None]
    if truths.ndim != 3 or truths.size == 0 or not (
            np.issubdtype(truths.dtype, np.integer) or np.issubdtype(truths.dtype, np.bool_)):
        raise ParameterError("truth", f"truth {path}: expected integer labels of shape (h, w) or "
                         f"(humans, h, w), not {truths.dtype} {truths.shape}")
    truths = truths.astype(np.int64)
    from skimage.measure import label as connected

    for human, truth in enumerate(truths, 1):
        pieces = int(connected(truth, background=-1, connectivity=1).max())
        if pieces > MAX_TRUTH_REGIONS:
            raise ParameterError(
                "truth", f"truth {path}: human {human} has {pieces} connected regions, more than a "
                f"segmentation drawn by a person has (at most {MAX_TRUTH_REGIONS}); is it a "
                f"photo rather than a label map?")
    return truths


def check_truth(truths, shape, path):
    """Refuse human segmentations whose size is not the image's.

    Parameters
    ----------
    truths : ndarray of shape (n_humans, h, w)
    shape : (h, w)
        The image's.
    path : str
        For the message.
    """
    if truths.shape[1:] != tuple(shape):
        raise ParameterError("truth", f"truth {path}: labels of "
                                      f"{truths.shape[2]}x{truths.shape[1]} "
                               f"pixels, but the image is {shape[1]}x{shape[0]}")


def contingency(labels, truth):
    """The contingency table of two partitions of the same pixels.

    Parameters
    ----------
    labels, truth : ndarray of the same shape
        Any integer labels; only equal or not matters.

    Returns
    -------
    table : ndarray of shape (n_segments, n_truth_regions), float64
        Pixels of each region of ``labels`` in each region of ``truth``.
    """
    segment = np.unique(np.ravel(labels), return_inverse=True)[1].ravel()
    human = np.unique(np.ravel(truth), return_inverse=True)[1].ravel()
    rows, columns = int(segment.max()) + 1, int(human.max()) + 1
    return np.bincount(segment.astype(np.int64) * columns + human,
                       minlength=rows * columns).reshape(rows, columns).astype(np.float64)


def table_scores(table):
    """Rand index, VoI (bits) and covering of a human by a segmentation, from their table.

    Each as the BSDS500 benchmark computes it from the same counts: the Rand
    index as ``match_segmentations2.m``,
    1 - [sum_u a_u^2 / 2 + sum_v b_v^2 / 2 - sum_uv n_uv^2] / C(N, 2) with a
    and b the table's row and column sums (equal to scikit-learn's
    ``rand_score``, which is two orders of magnitude slower on a BSDS image);
    VoI = H(S | G) + H(G | S) in bits (as ``skimage.metrics.variation_of_information``);
    the covering C(S -> G) as ``match_segmentations.m`` and
    ``evaluation_reg_image.m``: 1/N sum over G's regions v of
    b_v max_u n_uv / (a_u + b_v - n_uv).

    Parameters
    ----------
    table : ndarray of shape (n_segments, n_truth_regions)
        ``contingency(labels, truth)``; rows (or columns) may be grouped
        by summing them, as a cut of a hierarchy groups its fine regions.

    Returns
    -------
    rand, voi, covering : float
    """
    a, b = table.sum(axis=1), table.sum(axis=0)
    pixels = a.sum()
    rand = 1.0 if pixels < 2 else float(
        1.0 - (a @ a / 2 + b @ b / 2 - np.sum(table ** 2)) / (pixels * (pixels - 1) / 2))
    joint = table[table > 0] / pixels
    rows, columns = a[a > 0] / pixels, b[b > 0] / pixels
    # VoI = 2 H(S, G) - H(S) - H(G)
    voi = float(-2 * joint @ np.log2(joint) + rows @ np.log2(rows) + columns @ np.log2(columns))
    overlap = table / (a[:, None] + b[None, :] - table + (table == 0))
    covered = float(b @ overlap.max(axis=0, initial=0.0)) / pixels
    return rand, max(voi, 0.0), covered  # rounding can leave VoI at -1e-16 for equal partitions


def mean_scores(labels, truths):
    """``table_scores`` against each human, averaged over the humans.

    Parameters
    ----------
    labels : ndarray of shape (h, w)
    truths : ndarray of shape (n_humans, h, w)

    Returns
    -------
    scores : ndarray of shape (3,)
        PRI, mean VoI (bits) and mean covering.
    """
    return np.mean([table_scores(contingency(labels, truth)) for truth in truths], axis=0)


def variation_of_information(labels, truth):
    """Variation of Information between two partitions, in bits (lower is better).

    VoI(S, G) = H(S) + H(G) - 2 I(S; G) = H(S | G) + H(G | S): the information
    lost and gained in going from one partition to the other. 0 for the same
    partition (whatever the label names); H(S) against a single region.

    Parameters
    ----------
    labels, truth : ndarray of the same shape

    Returns
    -------
    voi : float
    """
    return table_scores(contingency(labels, truth))[1]


def probabilistic_rand_index(labels, truths):
    """Probabilistic Rand Index: the mean Rand index against several humans.

    Parameters
    ----------
    labels : ndarray of shape (h, w)
    truths : ndarray of shape (n_humans, h, w)

    Returns
    -------
    pri : float
        In [0, 1]: the share of pixel pairs on whose grouping (same region or
        not) the segmentation agrees with a human (``table_scores``),
        averaged over humans.
    """
    return float(mean_scores(labels, truths)[0])


def covering(labels, truths):
    """Segmentation Covering of the humans by a segmentation, averaged over the humans.

    For one human G, C(S -> G) = 1/N sum over regions R of G of
    |R| max over regions R' of S of |R n R'| / |R u R'|, as the benchmark's
    ``match_segmentations.m`` and ``evaluation_reg_image.m`` compute it (its
    ``cntR / sumR``, a region being a label, connected or not). The
    benchmark pools the counts of all humans, and later of all images, which
    weighs an image by its number of humans; here, as for PRI and VoI, the
    mean over the humans, then (by the caller) over the images.

    Parameters
    ----------
    labels : ndarray of shape (h, w)
    truths : ndarray of shape (n_humans, h, w)

    Returns
    -------
    covering : float
        In (0, 1]; 1 when every human region is a region of the segmentation.
    """
    return float(mean_scores(labels, truths)[2])


def truth_scores(labels, truths):
    """PRI, mean VoI, Covering and mean adjusted Rand index against human segmentations.

    Parameters
    ----------
    labels : ndarray of shape (h, w)
    truths : ndarray of shape (n_humans, h, w)

    Returns
    -------
    scores : dict
        ``pri``, ``voi`` (bits), ``covering`` and ``ari``, each averaged over
        the humans, and ``humans``.
    """
    from sklearn.metrics import adjusted_rand_score

    rand, voi, covered = mean_scores(labels, truths)
    return {"pri": float(rand), "voi": float(voi), "covering": float(covered),
            "ari": float(np.mean([adjusted_rand_score(truth.ravel(), labels.ravel())
                                  for truth in truths])),
            "humans": len(truths)}


def hierarchy_scores(fine, merges, truths, levels):
    """Mean Rand index, VoI (bits) and covering of a hierarchy's cuts at several heights.

    The same as ``table_scores`` of each cut (``hierarchy.cut``) against each
    human, averaged over the humans, but from the fine regions' tables, whose
    rows each cut only sums: a few milliseconds for all the cuts of a BSDS
    image, against about 50 ms per cut from the pixels.

    Parameters
    ----------
    fine : ndarray of shape (h, w), int
        The fine regions, 0 .. n - 1.
    merges : ndarray of shape (n - 1, 4)
        ``hierarchy.build_hierarchy``'s linkage.
    truths : ndarray of shape (n_humans, h, w)
    levels : sequence of float
        The heights to cut at.

    Returns
    -------
    scores : ndarray of shape (len(levels), 3)
        PRI, VoI and covering of each cut.
    """
    from gmmseg.hierarchy import cut

    tables = [contingency(fine, truth) for truth in truths]  # fine's rows are 0 .. n - 1
    each = np.arange(len(tables[0]))[None]
    result = np.zeros((len(levels), 3))
    for row, level in enumerate(levels):
        region = cut(each, merges, level=level)[0]
        order, starts = _groups(region)
        result[row] = np.mean([table_scores(np.add.reduceat(table[order], starts))
                               for table in tables], axis=0)
    return result


def _groups(region):
    """The order that sorts ``region`` and where each of its values starts in it."""
    order = np.argsort(region, kind="stable")
    return order, np.flatnonzero(np.r_[True, np.diff(region[order]) != 0])
