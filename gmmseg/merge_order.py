"""The order in which the hierarchy merges regions: features of a pair, and the learned order.

The hierarchy (``gmmseg.hierarchy``) merges the touching pair that costs
least, again and again. Two costs are offered:

- ``"likelihood"``: the mixture's log-likelihood lost by modelling the pair
  with one Gaussian, times the mean contrast along their border (the cost of
  ``hierarchy.build_hierarchy``'s notes);
- ``"learned"`` (the default): the probability, by a logistic regression on
  ``FEATURES`` of the pair and their products, that the merge joins parts of
  two different human regions. It was trained on the 200 BSDS500 training
  images by learned agglomeration as GALA [1]_ does it
  (``bench/train_merges.py``: examples from the merges the order itself
  proposes, over epochs) and chosen on the 100 validation images, and is
  shipped as the text file ``merge_order.txt`` beside this module.

Both read the same ``Regions``: the sufficient statistics of every region,
fine and merged, and of every border, updated as regions merge.

References
----------
.. [1] J. Nunez-Iglesias, R. Kennedy, T. Parag, J. Shi, D. B. Chklovskii,
   "Machine learning of hierarchical clustering to segment 2D and 3D
   images", PLoS ONE 8(8), 2013.
"""

import dataclasses
import functools
import os

import numpy as np

from gmmseg.params import ParameterError
from gmmseg.regions import region_borders

__all__ = ["FEATURES", "LEARNED_ORDER", "ORDERS", "WEAK_CONTRASTS", "LearnedOrder", "Regions",
           "expand", "learned_order", "parse_order", "read_order", "term_names", "write_order"]

ORDERS = ("learned", "likelihood")

# The file the default order is read from, beside this module.
LEARNED_ORDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "merge_order.txt")

# Border contrasts (Delta E times the blur's sigma, ``hierarchy.border_contrast``)
# under which a border pixel counts as weak: about the quartiles (1.2, 2.6 and
# 5.7) and the 90th percentile (10.4) of the contrast along the fine regions'
# borders on 20 BSDS500 training images.
WEAK_CONTRASTS = (1.0, 2.5, 6.0, 12.0)

# The blur of the coarse contrast, in units of ``hierarchy.border_contrast``'s.
COARSE_SCALE = 4.0

# Lab bins of the colour histograms: lightness in 8, a* and b* in 4 each,
# over the ranges photos occupy (a*, b* beyond +-60 go to the end bins).
HISTOGRAM_BINS = (8, 4, 4)

# Lab units^2 added to each region's covariance (``hierarchy.REG_LAB``, which
# says why).
REG_LAB = 1.0

FEATURES = (
    "lost",          # log, nats per pixel of the pair lost by one Gaussian for both
    "likelihood",    # log of the "likelihood" order's cost
    "contrast",      # log of the mean border contrast
    *(f"weak_{t:g}" for t in WEAK_CONTRASTS),  # share of the border under each contrast
    "smaller",       # log of the smaller region's share of the image
    "larger",        # log of the larger region's share
    "border",        # log of the border's length over the smaller region's sqrt(area)
    "colour",        # log(1 + Delta E between the two mean colours)
    "lightness",     # log(1 + their difference of lightness, L*)
    "chroma",        # log(1 + their difference of chroma, a* and b*)
    "histogram",     # chi-squared distance between the colour histograms
    "texture",       # log(1 + difference of the mean local spread of lightness)
    "interior",      # log of the mean contrast inside the merged region, border included
    "relative",      # log of the border's contrast over the larger interior contrast of the two
    "coarse",        # log of the mean border contrast at a blur COARSE_SCALE times wider
    "compactness",   # log of the merged region's perimeter^2 / (4 pi area)
)


def _n_log_det(pixels, total, outer):
    """n log|S + reg| of regions of n = ``pixels`` pixels, from their sums and outer products."""
    mus = total / pixels[:, None]
    covs = outer / pixels[:, None, None] - mus[:, :, None] * mus[:, None, :]
    return pixels * np.linalg.slogdet(covs + REG_LAB * np.eye(3))[1]


class Regions:
    """The statistics of every region, fine and merged, and of their borders.

    Region ids 0 .. n - 1 are the fine regions; ``merge`` makes region n + t
    at the t-th merge, as SciPy's linkage matrix numbers them.

    Parameters
    ----------
    fine : ndarray of shape (h, w), int
        The fine regions, 0 .. n - 1.
    lab : ndarray of shape (h, w, 3)
        The image in CIELAB.
    across_columns, across_rows : ndarray of shape (h, w - 1), (h - 1, w)
        The border contrast between 4-neighbours (``hierarchy.border_contrast``).
    texture : ndarray of shape (h, w), optional
        The local spread of lightness. With it (and ``coarse``) the regions
        keep what ``features`` needs; without, only what
        ``likelihood_cost`` needs.
    coarse : (ndarray of shape (h, w - 1), ndarray of shape (h - 1, w)), optional
        The contrast at a wider blur (``hierarchy.lab_contrast``); with
        ``texture``.
    """

    def __init__(self, fine, lab, across_columns, across_rows, texture=None, coarse=None):
        n = int(fine.max()) + 1
        self.image_pixels = fine.size
        flat = fine.ravel()
        colours = lab.reshape(-1, 3)
        self.size = np.zeros(2 * n - 1)
        self.size[:n] = np.bincount(flat, minlength=n)
        self.sums = np.zeros((2 * n - 1, 3))
        self.scatter = np.zeros((2 * n - 1, 3, 3))
        for a in range(3):
            self.sums[:n, a] = np.bincount(flat, weights=colours[:, a], minlength=n)
            for b in range(a, 3):
                self.scatter[:n, a, b] = self.scatter[:n, b, a] = np.bincount(
                    flat, weights=colours[:, a] * colours[:, b], minlength=n)
        self.logdet = np.zeros(2 * n - 1)
        self.logdet[:n] = _n_log_det(self.size[:n], self.sums[:n], self.scatter[:n])
        self.histogram = self.texture = self.interior = self.perimeter = None
        values = [across_columns, across_rows]
        if texture is not None:  # what ``features`` needs beyond ``likelihood_cost``
            self.texture = np.zeros(2 * n - 1)
            self.texture[:n] = np.bincount(flat, weights=texture.ravel(), minlength=n)
            self.histogram = np.zeros((2 * n - 1, int(np.prod(HISTOGRAM_BINS))))
            self.histogram[:n] = np.bincount(
                flat * self.histogram.shape[1] + colour_bins(colours),
                minlength=n * self.histogram.shape[1]).reshape(n, -1)
            # Per region: [pixel pairs inside, sum of their contrast].
            self.interior = np.zeros((2 * n - 1, 2))
            for a, b, across in ((fine[:, :-1], fine[:, 1:], across_columns),
                                 (fine[:-1], fine[1:], across_rows)):
                inside = a == b
                self.interior[:n, 0] += np.bincount(a[inside], minlength=n)
                self.interior[:n, 1] += np.bincount(a[inside], weights=across[inside],
                                                    minlength=n)
            # Per region: pixel pairs on its outline, the image's edge included.
            self.perimeter = np.zeros(2 * n - 1)
            self.perimeter[:n] = 4 * self.size[:n] - 2 * self.interior[:n, 0]
            # Per border: [pixel pairs, sum of contrast, pairs under each
            # WEAK_CONTRASTS, sum of the coarse contrast]; [pixel pairs, sum of
            # contrast] alone without texture.
            values = [np.concatenate([across[..., None],
                                      *(across[..., None] <= t for t in WEAK_CONTRASTS),
                                      coarse[k][..., None]], axis=-1)
                      for k, across in enumerate((across_columns, across_rows))]
        pairs, lengths, totals = region_borders(fine, *values)
        borders = np.column_stack([lengths, totals])
        self.neighbours = [{} for _ in range(2 * n - 1)]  # region -> {neighbour: border}
        for (i, j), border in zip(pairs.tolist(), borders, strict=True):
            self.neighbours[i][j] = self.neighbours[j][i] = border

    def merge(self, i, j, new):
        """Make region ``new`` of regions ``i`` and ``j``, which stop touching anything."""
        for stat in (self.size, self.sums, self.scatter, self.texture, self.histogram):
            if stat is not None:
                stat[new] = stat[i] + stat[j]
        self.logdet[new] = _n_log_det(self.size[new:new + 1], self.sums[new:new + 1],
                                      self.scatter[new:new + 1])[0]
        if self.interior is not None:
            between = self.neighbours[i][j]
            self.interior[new] = self.interior[i] + self.interior[j] + between[:2]
            self.perimeter[new] = self.perimeter[i] + self.perimeter[j] - 2 * between[0]
        joined = self.neighbours[new]
        for old in (i, j):
            for m, border in self.neighbours[old].items():
                if m not in (i, j):
                    if m in joined:
                        joined[m] = joined[m] + border
                    else:
                        joined[m] = border
                    del self.neighbours[m][old]
            self.neighbours[old] = {}
        for m, border in joined.items():
            self.neighbours[m][new] = border

    def lost(self, i, others):
        """The log-likelihood (nats) lost by one Gaussian for ``i`` and each of ``others``."""
        merged = _n_log_det(self.size[i] + self.size[others], self.sums[i] + self.sums[others],
                            self.scatter[i] + self.scatter[others])
        return 0.5 * (merged - self.logdet[i] - self.logdet[others])

    def borders(self, i, others):
        """The borders of ``i`` with each of ``others``: ndarray of shape (len(others), 2 or 7)."""
        return np.array([self.neighbours[i][m] for m in others])

    def likelihood_cost(self, i, others):
        """The ``"likelihood"`` order's cost of merging ``i`` with each of ``others``."""
        borders = self.borders(i, others)
        return self.lost(i, others) / self.image_pixels * borders[:, 1] / borders[:, 0]

    def features(self, i, others):
        """``FEATURES`` of the pairs (``i``, m) for m in ``others``.

        Returns
        -------
        features : ndarray of shape (len(others), len(FEATURES))
        """
        borders = self.borders(i, others)
        size_i, size_m = self.size[i], self.size[others]
        lost = np.maximum(self.lost(i, others), 0.0)
        contrast = borders[:, 1] / borders[:, 0]
        smaller, larger = np.minimum(size_i, size_m), np.maximum(size_i, size_m)
        means = self.sums[others] / size_m[:, None] - self.sums[i] / size_i
        perimeter = self.perimeter[i] + self.perimeter[others] - 2 * borders[:, 0]
        p = self.histogram[i] / size_i
        q = self.histogram[others] / size_m[:, None]
        total = p + q
        chi2 = 0.5 * np.sum(np.divide((p - q) ** 2, total, out=np.zeros_like(total),
                                      where=total > 0), axis=1)
        spread = np.abs(self.texture[others] / size_m - self.texture[i] / size_i)
        inside = self.interior[others] + self.interior[i] + borders[:, :2]
        larger_interior = np.maximum(_mean_contrast(self.interior[i][None]),
                                     _mean_contrast(self.interior[others]))
        return np.column_stack([
            np.log(lost / (size_i + size_m) + 1e-4),
            # The likelihood cost as likelihood_cost has it, but for the order of
            # its product, which the shipped weights were fitted to bit for bit.
            np.log(lost / self.image_pixels * contrast + 1e-9),
            np.log(contrast + 0.1),
            borders[:, 2:2 + len(WEAK_CONTRASTS)] / borders[:, :1],
            np.log(smaller / self.image_pixels),
            np.log(larger / self.image_pixels),
            np.log(borders[:, 0] / np.sqrt(smaller)),
            np.log1p(np.linalg.norm(means, axis=1)),
            np.log1p(np.abs(means[:, 0])),
            np.log1p(np.linalg.norm(means[:, 1:], axis=1)),
            chi2,
            np.log1p(spread),
            np.log(_mean_contrast(inside) + 0.1),
            np.log((contrast + 0.1) / (larger_interior + 0.1)),
            np.log(borders[:, 2 + len(WEAK_CONTRASTS)] / borders[:, 0] + 0.1),
            np.log(perimeter ** 2 / (4 * np.pi * (size_i + size_m))),
        ])


def _mean_contrast(interior):
    """Mean contrast of rows [pixel pairs, sum of contrast]; 0 where there are no pairs."""
    return interior[:, 1] / np.maximum(interior[:, 0], 1.0)


def colour_bins(colours):
    """The bin of ``HISTOGRAM_BINS`` of each CIELAB colour, shape (n, 3) -> (n,)."""
    lightness = np.clip(colours[:, 0] / 100.0 * HISTOGRAM_BINS[0], 0, HISTOGRAM_BINS[0] - 1)
    a = np.clip((colours[:, 1] + 60.0) / 120.0 * HISTOGRAM_BINS[1], 0, HISTOGRAM_BINS[1] - 1)
    b = np.clip((colours[:, 2] + 60.0) / 120.0 * HISTOGRAM_BINS[2], 0, HISTOGRAM_BINS[2] - 1)
    return ((lightness.astype(np.int64) * HISTOGRAM_BINS[1] + a.astype(np.int64))
            * HISTOGRAM_BINS[2] + b.astype(np.int64))


def local_spread(lightness):
    """The standard deviation of lightness in a Gaussian window of 2 pixels (texture).

    Parameters
    ----------
    lightness : ndarray of shape (h, w)

    Returns
    -------
    spread : ndarray of shape (h, w)
    """
    from scipy import ndimage

    mean = ndimage.gaussian_filter(lightness, 2.0)
    return np.sqrt(np.maximum(ndimage.gaussian_filter(lightness ** 2, 2.0) - mean ** 2, 0.0))


def expand(x):
    """The terms of the regression: the standardised features and their products.

    Parameters
    ----------
    x : ndarray of shape (n_pairs, n_features)

    Returns
    -------
    terms : ndarray of shape (n_pairs, n_features + n_features (n_features + 1) / 2)
        The features, then x_a x_b for a <= b (``np.triu_indices`` order).
    """
    a, b = np.triu_indices(x.shape[1])
    return np.hstack([x, x[:, a] * x[:, b]])


def term_names():
    """The name of each of ``expand``'s terms: a feature's, or "a*b"."""
    a, b = np.triu_indices(len(FEATURES))
    return [*FEATURES, *(f"{FEATURES[i]}*{FEATURES[j]}" for i, j in zip(a, b, strict=True))]


@dataclasses.dataclass(frozen=True)
class LearnedOrder:
    """A logistic regression on ``FEATURES`` and their products: P(merge right).

    A second-degree logistic regression: on the 100 BSDS500 validation images
    it scored 0.01 PRI above the first-degree one and level with
    scikit-learn's gradient-boosted trees (0.808 both), for a dot product per
    pair (docs/quality.md).

    Attributes
    ----------
    mean, scale : ndarray of shape (n_features,)
        Each feature is standardised, (x - mean) / scale, before ``expand``.
    coef : ndarray of shape (n_terms,)
        One weight per term of ``expand`` (``term_names``).
    intercept : float
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def cost(self, features):
        """The probability that each merge joins two human regions: 1 - P(right).

        Parameters
        ----------
        features : ndarray of shape (n_pairs, n_features)

        Returns
        -------
        cost : ndarray of shape (n_pairs,), in [0, 1]
        """
        z = expand((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 0.5 * (1.0 - np.tanh(0.5 * z))  # the logistic of -z, without overflow


def write_order(path, order):
    """Write a ``LearnedOrder`` as text: a line per feature, per product term, the intercept.

    Every number is written with ``repr``, so that reading it back gives the
    same floats, bit for bit.
    """
    names = term_names()
    lines = ["# gmmseg.merge_order.LearnedOrder, written by bench/train_merges.py",
             "# feature mean scale coef, then term coef, then the intercept"]
    lines += [f"{name} {float(mean)!r} {float(scale)!r} {float(coef)!r}"
              for name, mean, scale, coef in zip(FEATURES, order.mean, order.scale,
                                                 order.coef, strict=False)]
    lines += [f"{name} {float(coef)!r}" for name, coef in zip(
        names[len(FEATURES):], order.coef[len(FEATURES):], strict=True)]
    lines.append(f"intercept {float(order.intercept)!r}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_order(path):
    """Read what ``write_order`` wrote; its terms must be ``term_names()``, in order.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    order : LearnedOrder

    Raises
    ------
    ValueError
        ``params.ParameterError`` naming ``merge_order``: no such file, or
        not one ``write_order`` wrote.
    """
    if not isinstance(path, (str, os.PathLike)):  # an int would be read as a file descriptor
        raise ParameterError("merge_order", f"merge_order must be a file's path, not {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ParameterError("merge_order", f"merge_order {os.fspath(path)}: "
                                            f"{exc.strerror.lower()}") from None
    except UnicodeDecodeError:
        raise ParameterError("merge_order", f"merge_order {os.fspath(path)}: not a merge order "
                                            f"file (not text)") from None
    return parse_order(text, os.fspath(path))


def parse_order(text, where):
    """A ``LearnedOrder`` from the text of an order file (``where`` names it in errors)."""
    n = len(FEATURES)
    try:
        rows = [line.split() for line in text.splitlines()
                if line.strip() and not line.startswith("#")]
        names = [row[0] for row in rows]
        features = np.array([[float(x) for x in row[1:4]] for row in rows[:n]])
        products = [float(row[1]) for row in rows[n:-1]]
        intercept = float(rows[-1][1])
    except (ValueError, IndexError):
        raise ParameterError("merge_order", f"merge_order {where}: not a merge order file (a "
                                            f"name and numbers a line, as write_order writes "
                                            f"them)") from None
    if names != [*term_names(), "intercept"] or features.shape != (n, 3):
        raise ParameterError("merge_order", f"merge_order {where}: its terms are not those of "
                                            f"gmmseg.merge_order.FEATURES")
    return LearnedOrder(features[:, 0], features[:, 1],
                        np.r_[features[:, 2], products], intercept)


@functools.cache
def learned_order():
    """The shipped order (``LEARNED_ORDER``), read once.

    Read as the package's resource, so that it is found also where the
    package is imported from a zip archive (``cluster.ship_code``).
    """
    from importlib import resources

    text = resources.files("gmmseg").joinpath("merge_order.txt").read_text()
    return parse_order(text, LEARNED_ORDER)
