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
    "covering",
    "load_truth",
    "probabilistic_rand_index",
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
    from skimage.metrics import variation_of_information as conditional_entropies

    voi = float(np.sum(conditional_entropies(np.ravel(truth), np.ravel(labels))))
    return max(voi, 0.0)  # rounding can leave -1e-16 for equal partitions


def probabilistic_rand_index(labels, truths):
    """Probabilistic Rand Index: the mean Rand index against several humans.

    Each Rand index is computed from the contingency table n (pixels of
    region u of the segmentation in region v of the human's), as the
    benchmark's ``match_segmentations2.m`` does:
    1 - [sum_u a_u^2 / 2 + sum_v b_v^2 / 2 - sum_uv n_uv^2] / C(N, 2), with a
    and b its row and column sums; equal to scikit-learn's ``rand_score``,
    which counts the same pairs but is two orders of magnitude slower on a
    BSDS image (0.19 s against 2 ms per human), too slow to score the cuts of
    a hierarchy.

    Parameters
    ----------
    labels : ndarray of shape (h, w)
    truths : ndarray of shape (n_humans, h, w)

    Returns
    -------
    pri : float
        In [0, 1]: the share of pixel pairs on whose grouping (same region or
        not) the segmentation agrees with a human, averaged over humans.
    """
    segment = np.unique(np.ravel(labels), return_inverse=True)[1].ravel().astype(np.int64)
    pixels = segment.size
    if pixels < 2:
        return 1.0
    pairs = pixels * (pixels - 1) / 2
    a = np.bincount(segment).astype(np.float64)
    rand = []
    for truth in truths:
        human = np.unique(np.ravel(truth), return_inverse=True)[1].ravel()
        columns = int(human.max()) + 1
        table = np.bincount(segment * columns + human).astype(np.float64)
        b = np.bincount(human).astype(np.float64)
        rand.append(1.0 - (a @ a / 2 + b @ b / 2 - table @ table) / pairs)
    return float(np.mean(rand))


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
    segment = np.unique(np.ravel(labels), return_inverse=True)[1].ravel().astype(np.int64)
    a = np.bincount(segment)
    rows = len(a)
    covered = []
    for truth in truths:
        human = np.unique(np.ravel(truth), return_inverse=True)[1].ravel()
        b = np.bincount(human)
        table = np.bincount(human * rows + segment,
                            minlength=len(b) * rows).reshape(len(b), rows)
        overlap = table / (b[:, None] + a[None, :] - table)
        covered.append(float(b @ overlap.max(axis=1)) / segment.size)
    return float(np.mean(covered))


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

    return {"pri": probabilistic_rand_index(labels, truths),
            "voi": float(np.mean([variation_of_information(labels, truth)
                                  for truth in truths])),
            "covering": covering(labels, truths),
            "ari": float(np.mean([adjusted_rand_score(truth.ravel(), labels.ravel())
                                  for truth in truths])),
            "humans": len(truths)}
