"""Lab 10 - Clustering with GMM: segment an image with a Gaussian mixture fitted by EM.

The lab's steps, in order:

1. ``load``    read the image and Z-score each channel over the pixels.
2. ``kmeans``  seed the means, covariances and mixing coefficients with k-means.
3. ``GMM``     run EM: ``inference`` is the E-step (responsibilities ``gamma`` and
               the log-likelihood), ``update`` the M-step (``mus``, ``covs``,
               ``priors``), ``fit`` alternates them until the log-likelihood
               stops improving.
4. ``main``    label every pixel with its most likely component and draw one
               mask per component (``utils.visualize``).

One idea makes it fast without changing the model: an 8-bit photo of N pixels
has far fewer distinct colours U. Every pixel of one colour gets the same
responsibilities, so EM on the U distinct colours, each weighted by its pixel
count, computes exactly the sums EM on all N pixels computes (see
``distinct_colours`` and the ``weights`` argument of the EM functions).

Run ``python segmentation_GMM.py --help`` for the command line.
"""

import argparse
import copy
import itertools
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, mutual_info_score, rand_score
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import utils

# Added to every covariance's diagonal after each M-step, as scikit-learn's
# reg_covar does. In Z-scored units it is a standard deviation of 1e-3 of the
# channel's spread: far below the noise of a photo, yet it keeps a component
# that collapses onto one colour (or onto fewer points than dimensions) from
# becoming singular.
REG_COVAR = 1e-6

# The warm-up histogram pools colours into cubes of this side, in Z-scored
# units: about 4 levels of an 8-bit channel of typical spread, so that the
# warm-up lands within a few exact EM steps of convergence.
HISTOGRAM_STEP = 1 / 16

# EM stops when the mean log-likelihood per pixel changes by less than this
# (nats). Per pixel, so the rule means the same on a thumbnail and on 12 MP.
TOL = 1e-4

DEFAULT_IMAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "images", "chelsea.png")
MAX_COMPONENTS = 256  # labels are written as 8-bit PNG
K_MAX = 10  # largest K that --k auto tries unless --k-max says otherwise


# --------------------------------------------------------------------------
# Step 1: load the image and Z-score its pixels per channel
# --------------------------------------------------------------------------

def channel_stats(pixels, weights=None):
    """Mean and standard deviation of each channel.

    Parameters
    ----------
    pixels : ndarray of shape (n_samples, c)
    weights : ndarray of shape (n_samples,), optional
        How many pixels each row stands for; ``None`` means one each.

    Returns
    -------
    mean, std : ndarray of shape (c,)
        A channel with no spread gets ``std = 1``, so Z-scoring maps it to
        zero instead of dividing by zero.
    """
    mean = np.average(pixels, axis=0, weights=weights)
    std = np.sqrt(np.average((pixels - mean) ** 2, axis=0, weights=weights))
    std[std == 0] = 1.0
    return mean, std


def load(image_path):
    """Read an image and Z-score its pixels per channel.

    Parameters
    ----------
    image_path : str

    Returns
    -------
    h, w, c : int
        Height, width and number of channels (1 for greyscale, else 3).
    image_norm : ndarray of shape (h * w, c)
        The pixels, each channel shifted to mean 0 and scaled to std 1.
    """
    image = utils.load_image(image_path)
    h, w, c = image.shape
    pixels = image.reshape(-1, c).astype(np.float64)
    mean, std = channel_stats(pixels)
    return h, w, c, (pixels - mean) / std


def distinct_colours(image):
    """The distinct colours of an image, how often each occurs, and where.

    Integer images are keyed by packing each pixel's channels into one integer
    and counting with ``bincount``: O(N), no sort. Others fall back to
    ``np.unique`` over rows.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)

    Returns
    -------
    colours : ndarray of shape (n_colours, c)
        Each distinct colour once, in the image's units.
    counts : ndarray of shape (n_colours,)
        Number of pixels of each colour.
    inverse : ndarray of shape (h * w,)
        Index into ``colours`` of each pixel: ``colours[inverse]`` is the image.
    """
    c = image.shape[2]
    pixels = image.reshape(-1, c)
    if not np.issubdtype(pixels.dtype, np.integer):
        colours, inverse, counts = np.unique(pixels, axis=0, return_inverse=True,
                                             return_counts=True)
        return colours, counts, inverse.ravel()
    # Channel by channel: a reduction down a column of an (N, c) array is ten
    # times slower than over a strided 1-D view.
    lo = np.array([pixels[:, ch].min() for ch in range(c)], dtype=np.int64)
    dims = np.array([pixels[:, ch].max() for ch in range(c)], dtype=np.int64) - lo + 1
    size = int(np.prod(dims.astype(object)))
    strides = np.cumprod(np.append(1, dims[:0:-1]))[::-1]
    key_type = np.int32 if int((lo + dims - 1) @ strides) < 2**31 else np.int64
    # key = ravel_multi_index(pixels - lo, dims), built in place channel by
    # channel from the raw values (no (N, c) temporary), then shifted by lo.
    key = pixels[:, 0].astype(key_type)
    for ch in range(1, c):
        key *= key_type(dims[ch])
        key += pixels[:, ch]
    key -= key_type(lo @ strides)
    if size <= 2**25:
        table = np.bincount(key, minlength=size)
        keys = np.flatnonzero(table)
        counts = table[keys]
        # The count table, no longer needed, becomes the key -> index lookup:
        # one table of 2^24 entries at the peak instead of two.
        table[keys] = np.arange(len(keys))
        inverse = table[key]
        del table
    else:
        keys, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    colours = np.stack(np.unravel_index(keys, tuple(dims)), axis=1) + lo
    return colours, counts, inverse


def colour_histogram(colours_norm, counts, step=HISTOGRAM_STEP):
    """Pool colours into cubic bins: a small stand-in for a warm-up EM.

    Parameters
    ----------
    colours_norm : ndarray of shape (n_colours, c)
        Z-scored distinct colours.
    counts : ndarray of shape (n_colours,)
        Pixel count of each colour.
    step : float, default=HISTOGRAM_STEP
        Side of a bin, in Z-scored units.

    Returns
    -------
    centres : ndarray of shape (n_bins, c)
        Pixel-weighted mean colour of each occupied bin.
    bin_counts : ndarray of shape (n_bins,)
        Pixels in each bin.
    """
    bins = np.floor(colours_norm / step).astype(np.int64)
    bins -= bins.min(axis=0)
    _, _, member = distinct_colours(bins[:, None, :])
    bin_counts = np.bincount(member, weights=counts)
    centres = np.stack([np.bincount(member, weights=counts * colours_norm[:, ch])
                        for ch in range(colours_norm.shape[1])], axis=1)
    return centres / bin_counts[:, None], bin_counts


# --------------------------------------------------------------------------
# Step 2: initialise the mixture with k-means
# --------------------------------------------------------------------------

def estimate_parameters(datas, gamma, weights=None, reg_covar=REG_COVAR):
    """The closed-form M-step: parameters that maximise the expected log-likelihood.

    With ``r_nk = weights_n * gamma_nk`` and ``soft_counts_k = sum_n r_nk``::

        mus_k    = sum_n r_nk x_n / soft_counts_k
        covs_k   = sum_n r_nk (x_n - mus_k)(x_n - mus_k)^T / soft_counts_k + reg I
        priors_k = soft_counts_k / sum_k soft_counts_k

    Parameters
    ----------
    datas : ndarray of shape (n_samples, c)
    gamma : ndarray of shape (n_samples, K)
        Responsibilities (a one-hot matrix gives the k-means estimates).
    weights : ndarray of shape (n_samples,), optional
        Pixel count of each row; ``None`` means one each.
    reg_covar : float, default=REG_COVAR
        Added to each covariance's diagonal.

    Returns
    -------
    mus : ndarray of shape (K, c)
    covs : ndarray of shape (K, c, c)
    priors : ndarray of shape (K,)
    """
    r = gamma if weights is None else gamma * weights[:, None]
    r = np.asfortranarray(r)  # r[:, k] is read once per component below
    # The tiny floor keeps an emptied component at finite values (as
    # scikit-learn does); its prior is then ~0 and it drops out of the sums.
    soft_counts = r.sum(axis=0) + 10 * np.finfo(np.float64).eps
    mus = (r.T @ datas) / soft_counts[:, None]
    ncomp, c = mus.shape
    covs = np.empty((ncomp, c, c))
    for k in range(ncomp):
        diff = datas - mus[k]
        covs[k] = (r[:, k, None] * diff).T @ diff / soft_counts[k]
        covs[k].flat[:: c + 1] += reg_covar
    priors = soft_counts / soft_counts.sum()
    return mus, covs, priors


def kmeans(n_cluster, image_pixl, weights=None, seed=0):
    """Seed the mixture from a k-means clustering.

    Parameters
    ----------
    n_cluster : int
        Number of clusters K; at most the number of distinct rows.
    image_pixl : ndarray of shape (n_samples, c)
        Z-scored pixels (or distinct colours).
    weights : ndarray of shape (n_samples,), optional
        Pixel count of each row, passed to k-means as ``sample_weight``.
    seed : int, default=0
        Seeds k-means++ so the result is reproducible.

    Returns
    -------
    initial_mus : ndarray of shape (K, c)
        The k-means centres.
    initial_priors : ndarray of shape (K,)
        Share of the pixels in each cluster.
    initial_covs : ndarray of shape (K, c, c)
        Covariance of each cluster's pixels (regularised).
    """
    labels = KMeans(n_clusters=n_cluster, random_state=seed).fit_predict(
        image_pixl, sample_weight=weights)
    hard_gamma = np.eye(n_cluster)[labels]
    initial_mus, initial_covs, initial_priors = estimate_parameters(
        image_pixl, hard_gamma, weights)
    return initial_mus, initial_priors, initial_covs


# --------------------------------------------------------------------------
# Step 3: the mixture and its EM
# --------------------------------------------------------------------------

class GMM:
    """A Gaussian mixture with full covariances, fitted by EM.

    Parameters
    ----------
    ncomp : int
        Number of components K.
    initial_mus : ndarray of shape (K, c)
    initial_covs : ndarray of shape (K, c, c)
    initial_priors : ndarray of shape (K,)
    reg_covar : float, default=REG_COVAR
        Added to each covariance's diagonal in the M-step.

    Attributes
    ----------
    mus, covs, priors : the current parameters.
    log_likelihood_history : list of float
        Mean log-likelihood per pixel of the initial parameters and after each
        M-step of the last ``fit``.
    converged : bool
        Whether the last ``fit`` stopped on ``tol`` rather than on ``iteration``.
    """

    def __init__(self, ncomp, initial_mus, initial_covs, initial_priors,
                 reg_covar=REG_COVAR):
        self.ncomp = ncomp
        self.mus = np.asarray(initial_mus, dtype=np.float64)
        self.covs = np.asarray(initial_covs, dtype=np.float64)
        self.priors = np.asarray(initial_priors, dtype=np.float64)
        self.reg_covar = reg_covar
        self.log_likelihood_history = []
        self.converged = False

    def log_prob(self, datas):
        """ln(priors_k) + ln N(x_n | mus_k, covs_k).

        Returns
        -------
        log_prob : ndarray of shape (n_samples, K)
            Stored component by component (Fortran order): each logpdf writes
            one contiguous column, and the sums over K that follow run along
            memory, two to three times faster than on rows of K values.
        """
        log_prob = np.empty((self.ncomp, len(datas)))
        for k in range(self.ncomp):
            log_prob[k] = multivariate_normal.logpdf(datas, mean=self.mus[k], cov=self.covs[k])
        log_prob += np.log(self.priors)[:, None]
        return log_prob.T

    def inference(self, datas, weights=None):
        """E-step: responsibilities and log-likelihood, in log space.

        Parameters
        ----------
        datas : ndarray of shape (n_samples, c)
        weights : ndarray of shape (n_samples,), optional
            Pixel count of each row; ``None`` means one each.

        Returns
        -------
        gamma : ndarray of shape (n_samples, K)
            gamma_nk = p(component k | x_n); each row sums to 1.
        log_likelihood : float
            The total sum_n weights_n ln p(x_n). Finite even where every
            density underflows to 0 in probability space.
        """
        log_prob = self.log_prob(datas)
        log_p_x = logsumexp(log_prob, axis=1)
        # In place: on a large image each (n_samples, K) temporary costs as
        # much time as the arithmetic.
        log_prob -= log_p_x[:, None]
        gamma = np.exp(log_prob, out=log_prob)
        log_likelihood = log_p_x.sum() if weights is None else weights @ log_p_x
        return gamma, float(log_likelihood)

    def update(self, datas, gamma, weights=None):
        """M-step: set ``mus``, ``covs`` and ``priors`` from the responsibilities.

        Parameters
        ----------
        datas : ndarray of shape (n_samples, c)
        gamma : ndarray of shape (n_samples, K)
        weights : ndarray of shape (n_samples,), optional
        """
        self.mus, self.covs, self.priors = estimate_parameters(
            datas, gamma, weights, self.reg_covar)

    def fit(self, data, iteration, weights=None, tol=TOL, progress=True):
        """Alternate E- and M-steps until the log-likelihood stops improving.

        Parameters
        ----------
        data : ndarray of shape (n_samples, c)
        iteration : int
            At most this many M-steps.
        weights : ndarray of shape (n_samples,), optional
            Pixel count of each row; ``None`` means one each.
        tol : float, default=TOL
            Stop when the mean log-likelihood per pixel changes by less.
        progress : bool, default=True
            Show a tqdm bar with the log-likelihood (on a terminal only: in
            a log file or a pipe, every update would be another line).

        Returns
        -------
        gamma : ndarray of shape (n_samples, K)
            Responsibilities under the final parameters (the last E-step), so
            the caller need not run another.
        """
        n_pixels = len(data) if weights is None else float(np.sum(weights))
        # EM's matrix products are (n, c) by (c, c) with c <= 3: too thin for
        # BLAS threads to pay, and on a busy 2-core machine two OpenBLAS threads
        # made each product 10 to 100 times slower (bench/bench_speed.py).
        with threadpool_limits(limits=1, user_api="blas"):
            gamma, log_likelihood = self.inference(data, weights)
            history = [log_likelihood / n_pixels]
            self.converged = False
            bar = tqdm(range(iteration), desc=f"EM k={self.ncomp}", unit="it",
                       disable=None if progress else True, leave=False)
            for _ in bar:
                self.update(data, gamma, weights)
                gamma, log_likelihood = self.inference(data, weights)
                history.append(log_likelihood / n_pixels)
                bar.set_postfix(ll=f"{history[-1]:.5f}")
                if abs(history[-1] - history[-2]) < tol:
                    self.converged = True
                    break
            bar.close()
        self.log_likelihood_history = history
        return gamma

    def n_parameters(self):
        """Free parameters: K means, K symmetric covariances, K - 1 priors."""
        c = self.mus.shape[1]
        return self.ncomp * (c + c * (c + 1) // 2) + self.ncomp - 1


# --------------------------------------------------------------------------
# Features beyond Z-scored colour: CIELAB, position, smoothing
# --------------------------------------------------------------------------

COLOR_SPACES = ("rgb", "lab")

# With position features every pixel is a distinct row, so the mixture is
# fitted on a random sample of at most this many pixels (seeded by ``seed``)
# and then labels every pixel. 50 000 pixels still give each of a dozen 5-D
# Gaussians thousands of points, and the fit's cost stops growing with the
# photo. Measured on BSDS images (154 401 pixels): on one, fits on 30 000
# pixels and on all of them scored within 0.01 PRI (VoI within 0.16, either
# way) and took a third to a fifth of the time; on five, with the README's
# best setting, 20 000 pixels lost 0.02 PRI against 50 000.
SPATIAL_SAMPLE = 50_000

# Pixels per block when every pixel of an image goes through the E-step:
# the (block, K) float64 temporaries stay at a few tens of MB on a 12 MP photo.
CHUNK = 1 << 18


def colour_features(colours, color_space="rgb", top=255.0):
    """Colours in the space the mixture is fitted in (before the Z-score).

    Parameters
    ----------
    colours : ndarray of shape (n_colours, c)
        In the image's units.
    color_space : {"rgb", "lab"}, default="rgb"
        "rgb" keeps the channels as they are; "lab" converts to CIELAB (D65),
        where Euclidean distance is closer to perceived colour difference.
    top : float, default=255
        The image's full intensity (``utils.max_value``).

    Returns
    -------
    features : ndarray of shape (n_colours, c), float64

    Raises
    ------
    InputError
        If "lab" is asked of a greyscale image: its lightness is a monotone
        function of the grey level, so there is nothing to convert.
    """
    if color_space not in COLOR_SPACES:
        raise utils.InputError(f"--color-space must be one of {', '.join(COLOR_SPACES)}, "
                               f"not {color_space!r}")
    colours = colours.astype(np.float64)
    if color_space == "rgb":
        return colours
    if colours.shape[1] != 3:
        raise utils.InputError("--color-space lab needs a colour image; this one is greyscale")
    from skimage.color import rgb2lab  # only here: the default path does not need it

    return rgb2lab(np.clip(colours / top, 0.0, 1.0)[None])[0]


def grid_features(index, shape, spatial):
    """Z-scored row and column of pixels, times ``spatial``.

    Parameters
    ----------
    index : ndarray of shape (n,)
        Flat pixel indices, row by row.
    shape : (h, w)
    spatial : float

    Returns
    -------
    position : ndarray of shape (n, 2)
        Over the whole image each column has mean 0 and std ``spatial``.
    """
    rows, cols = np.divmod(index, shape[1])
    position = np.empty((len(index), 2))
    for j, (where, side) in enumerate(((rows, shape[0]), (cols, shape[1]))):
        # 0..side-1, each once: mean (side - 1) / 2, variance (side^2 - 1) / 12.
        std = np.sqrt((side ** 2 - 1) / 12) or 1.0
        position[:, j] = (where - (side - 1) / 2) * (spatial / std)
    return position


def pixel_chunks(colours_norm, inverse, shape, spatial, index=None):
    """Colour and position features of pixels, a block of ``CHUNK`` at a time.

    Parameters
    ----------
    colours_norm : ndarray of shape (n_colours, c)
    inverse : ndarray of shape (h * w,)
        Each pixel's row of ``colours_norm``.
    shape : (h, w)
    spatial : float
    index : ndarray of shape (n,), optional
        Flat indices of the pixels; default: every pixel.

    Yields
    ------
    block : slice
        Where the rows fall in ``index``.
    datas : ndarray of shape (block length, c + 2)
    """
    n = inverse.size if index is None else len(index)
    for begin in range(0, n, CHUNK):
        block = slice(begin, min(begin + CHUNK, n))
        where = np.arange(block.start, block.stop) if index is None else index[block]
        yield block, np.hstack([colours_norm[inverse[where]],
                                grid_features(where, shape, spatial)])


def fit_spatial(colours_norm, inverse, shape, ncomp, spatial, iteration=100, tol=TOL, seed=0,
                progress=True):
    """Fit the mixture to colour and position on a random sample of pixels.

    Parameters
    ----------
    colours_norm : ndarray of shape (n_colours, c)
    inverse : ndarray of shape (h * w,)
    shape : (h, w)
    ncomp : int
    spatial : float
        Weight of the position (see ``grid_features``).
    iteration, tol, seed, progress : see ``GMM.fit`` and ``kmeans``; ``seed``
        also draws the sample (see ``SPATIAL_SAMPLE``).

    Returns
    -------
    gmm : GMM
        Over c + 2 features.
    component_gamma : callable
        ``component_gamma(k)``, ndarray of shape (h * w,): every pixel's
        responsibility of component k, computed block by block.
    """
    n = inverse.size
    if n > SPATIAL_SAMPLE:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, SPATIAL_SAMPLE, replace=False))
    else:
        sample = np.arange(n)
    datas = np.vstack([rows for _, rows in pixel_chunks(colours_norm, inverse, shape,
                                                         spatial, sample)])
    ncomp = min(ncomp, len(datas))
    initial_mus, initial_priors, initial_covs = kmeans(ncomp, datas, seed=seed)
    gmm = GMM(ncomp, initial_mus, initial_covs, initial_priors)
    gmm.fit(datas, iteration, tol=tol, progress=progress)
    log_p_x = []

    def component_gamma(k):
        if not log_p_x:  # the normaliser, once for all components
            log_p_x.append(np.concatenate([
                logsumexp(gmm.log_prob(rows), axis=1)
                for _, rows in pixel_chunks(colours_norm, inverse, shape, spatial)]))
        log_gamma = np.empty(n)
        for block, rows in pixel_chunks(colours_norm, inverse, shape, spatial):
            log_gamma[block] = multivariate_normal.logpdf(rows, gmm.mus[k], gmm.covs[k])
        log_gamma += np.log(gmm.priors[k]) - log_p_x[0]
        return np.exp(log_gamma, out=log_gamma)

    return gmm, component_gamma


def spatial_argmax(gmm, colours_norm, inverse, shape, spatial):
    """Label every pixel with its most likely component, block by block.

    Parameters
    ----------
    gmm : GMM
        Fitted on colour and position (``fit_spatial``).
    colours_norm, inverse, shape, spatial : see ``pixel_chunks``.

    Returns
    -------
    labels : ndarray of shape (h, w), uint8
    """
    labels = np.empty(inverse.size, dtype=np.uint8)
    for block, rows in pixel_chunks(colours_norm, inverse, shape, spatial):
        labels[block] = np.argmax(gmm.log_prob(rows), axis=1)
    return labels.reshape(shape)


def smoothed_argmax(component_gamma, ncomp, shape, sigma):
    """The most likely component after smoothing the responsibilities over the image.

    Each component's responsibility image is blurred with a Gaussian of
    ``sigma`` pixels, so a pixel's label weighs its neighbours' evidence: a
    cheap stand-in for a Markov random field. One component's image is held
    at a time, with a running maximum, so memory does not grow with K.

    Parameters
    ----------
    component_gamma : callable
        ``component_gamma(k)``: ndarray of shape (h * w,), every pixel's gamma_nk.
    ncomp : int
    shape : (h, w)
    sigma : float
        In pixels.

    Returns
    -------
    labels : ndarray of shape (h, w), uint8
        argmax_k of the smoothed gamma_nk (the lower k on a tie).
    """
    best = np.full(shape, -np.inf)
    labels = np.zeros(shape, dtype=np.uint8)
    for k in range(ncomp):
        smoothed = ndimage.gaussian_filter(component_gamma(k).reshape(shape), sigma,
                                           mode="nearest")
        better = smoothed > best
        best[better] = smoothed[better]
        labels[better] = k
    return labels


def connected_regions(labels, min_area):
    """Split each label into connected regions and fold the small ones into large ones.

    A colour label may cover several separate objects (dark shading on two
    of them, say); its connected pieces are separate regions here. A region
    of fewer than ``min_area`` pixels takes, pixel by pixel, the region and
    label of the nearest pixel of a large region (Euclidean distance), which
    removes the specks that smoothing leaves.

    Parameters
    ----------
    labels : ndarray of shape (h, w), uint8
        Component of each pixel.
    min_area : int
        In pixels. If no region is this large, nothing is folded.

    Returns
    -------
    regions : ndarray of shape (h, w), int32
        Region of each pixel, numbered 0 .. n_regions - 1; pixels of a region
        are 4-connected (those that took over a small region border it).
    labels : ndarray of shape (h, w), uint8
        Component of each pixel after the folding: constant over a region.
    """
    from skimage.measure import label as connected  # only here, as rgb2lab

    # background=-1: no value is background; 4-neighbours of equal label join.
    regions = connected(labels, background=-1, connectivity=1)
    small = np.bincount(regions.ravel())[regions] < min_area
    if small.any() and not small.all():
        nearest = tuple(ndimage.distance_transform_edt(small, return_distances=False,
                                                        return_indices=True))
        regions, labels = regions[nearest], labels[nearest]
    present = np.flatnonzero(np.bincount(regions.ravel()))
    lookup = np.zeros(present[-1] + 1, dtype=np.int32)
    lookup[present] = np.arange(len(present))
    return lookup[regions], labels


def region_adjacency(regions):
    """The pairs of regions that touch (4-neighbours).

    Parameters
    ----------
    regions : ndarray of shape (h, w), int
        Numbered 0 .. n_regions - 1.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), int64
        Each touching pair once, smaller number first.
    """
    n = int(regions.max()) + 1
    keys = []
    for a, b in ((regions[:, :-1], regions[:, 1:]), (regions[:-1, :], regions[1:, :])):
        a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
        border = a != b
        keys.append(np.unique(np.minimum(a, b)[border] * n + np.maximum(a, b)[border]))
    keys = np.unique(np.concatenate(keys))
    return np.stack([keys // n, keys % n], axis=1)


def merge_regions(regions, image, max_difference):
    """Merge touching regions of similar colour, the most similar pair first.

    Colour shading splits one surface into several components; two touching
    regions whose mean colours differ by less than ``max_difference`` (CIE76
    Delta E in CIELAB, about 2.3 for a just noticeable difference) become
    one, and the merged region's mean is compared afresh with its
    neighbours. A single threshold leaves a simple image few regions and a
    busy one many, which one K for every image cannot.

    Parameters
    ----------
    regions : ndarray of shape (h, w), int
        Numbered 0 .. n_regions - 1 (``connected_regions``).
    image : ndarray of shape (h, w, c)
        c = 1 is compared as grey (lightness only).
    max_difference : float
        Delta E.

    Returns
    -------
    regions : ndarray of shape (h, w), int32
        Numbered 0 .. n_merged - 1.
    """
    import heapq

    from skimage.color import rgb2lab

    n = int(regions.max()) + 1
    flat = regions.ravel()
    counts = np.bincount(flat, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=image[:, :, ch].ravel(), minlength=n)
                     for ch in range(image.shape[2])], axis=1)
    top = utils.max_value(image)

    def lab(rows):
        rgb = np.clip(sums[rows] / counts[rows, None] / top, 0.0, 1.0)
        return rgb2lab(np.broadcast_to(rgb, (len(rgb), 3))[None])[0]

    colour = lab(np.arange(n))
    neighbours = [set() for _ in range(n)]
    pairs = region_adjacency(regions)
    for i, j in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    differences = np.linalg.norm(colour[pairs[:, 0]] - colour[pairs[:, 1]], axis=1)
    # A pair's entry carries both regions' versions: once either has grown
    # (its mean colour changed), the entry is stale and skipped.
    version = np.zeros(n, dtype=np.int64)
    heap = [(d, i, j, 0, 0) for d, (i, j) in zip(differences.tolist(), pairs.tolist())
            if d < max_difference]
    heapq.heapify(heap)
    owner = np.arange(n)  # owner[i] == i while region i stands on its own
    while heap:
        _, i, j, version_i, version_j = heapq.heappop(heap)
        if version[i] != version_i or version[j] != version_j or owner[j] != j:
            continue
        counts[i] += counts[j]
        sums[i] += sums[j]
        owner[j] = i
        version[i] += 1
        version[j] += 1
        for m in neighbours[j]:
            neighbours[m].discard(j)
            if m != i:
                neighbours[m].add(i)
                neighbours[i].add(m)
        neighbours[j] = set()
        colour[i] = lab(np.array([i]))[0]
        for m in neighbours[i]:
            d = float(np.linalg.norm(colour[i] - colour[m]))
            if d < max_difference:
                first, second = min(i, m), max(i, m)
                heapq.heappush(heap, (d, first, second, int(version[first]),
                                      int(version[second])))
    # Follow each region to the one it was merged into, to the end.
    while True:
        followed = owner[owner]
        if np.array_equal(followed, owner):
            break
        owner = followed
    _, merged = np.unique(owner, return_inverse=True)
    return merged.astype(np.int32)[regions]


# --------------------------------------------------------------------------
# Step 4: segment, save and show
# --------------------------------------------------------------------------

def segment(image, ncomp, iteration=100, tol=TOL, seed=0, progress=True,
            color_space="rgb", spatial=0.0, smooth=0.0, min_region=0, merge=0.0):
    """Fit a K-component mixture to an image's colours and label every pixel.

    The fit runs on the distinct colours weighted by their pixel counts, which
    is the same model as a fit on every pixel. When the colours are many, a
    first EM runs on a colour histogram (``colour_histogram``), several times
    fewer points, which brings the parameters near the optimum; EM on the exact
    colours then needs only a few steps to converge. (Seeding k-means on the
    histogram too was tried: it was faster but fell into worse optima.)

    With ``spatial`` the features include each pixel's position, so pixels of
    one colour no longer share their responsibilities: the mixture is fitted
    on a random sample of pixels instead (``fit_spatial``).

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
    ncomp : int
    iteration, tol, seed, progress : see ``GMM.fit`` and ``kmeans``.
    color_space : {"rgb", "lab"}, default="rgb"
        The colour features (``colour_features``).
    spatial : float, default=0
        Weight of the Z-scored row and column appended to the features; 0
        leaves them out.
    smooth : float, default=0
        Sigma in pixels of the Gaussian that smooths each component's
        responsibilities before the argmax (``smoothed_argmax``); 0 does not.
    min_region : int, default=0
        If above 0, also split the labels into connected regions and fold
        regions of fewer pixels into their neighbours (``connected_regions``).
    merge : float, default=0
        If above 0, also merge touching regions whose mean colours differ by
        less than this CIELAB Delta E (``merge_regions``).

    Returns
    -------
    result : dict
        ``gmm`` (the fitted GMM), ``labels`` (h, w), ``mean`` and ``std`` (c,)
        of the colour features' Z-score, ``means_rgb`` (K, c) (each
        component's mean colour in the image's units), ``n_colours`` and
        ``seconds``; with ``min_region`` or ``merge``, also ``regions`` (h, w)
        int32.
    """
    start = time.perf_counter()
    h, w = image.shape[:2]
    colours, counts, inverse = distinct_colours(image)
    features = colour_features(colours, color_space, utils.max_value(image))
    mean, std = channel_stats(features, counts)
    colours_norm = (features - mean) / std
    if spatial > 0:
        gmm, component_gamma = fit_spatial(colours_norm, inverse, (h, w), ncomp, spatial,
                                           iteration, tol, seed, progress)
        warm_up_iterations = 0
    else:
        gmm, gamma, warm_up_iterations = fit_colours(colours_norm, counts, ncomp, iteration,
                                                     tol, seed, progress)

        def component_gamma(k):
            return gamma[inverse, k]
    if smooth > 0:
        labels = smoothed_argmax(component_gamma, gmm.ncomp, (h, w), smooth)
    elif spatial > 0:
        labels = spatial_argmax(gmm, colours_norm, inverse, (h, w), spatial)
    else:
        labels = np.argmax(gamma, axis=1).astype(np.uint8)[inverse].reshape(h, w)
    regions = None
    if min_region > 0 or merge > 0:
        regions, labels = connected_regions(labels, min_region)
    if merge > 0:
        regions = merge_regions(regions, image, merge)
    if color_space == "rgb" and spatial == 0 and regions is None:
        means_rgb = gmm.mus * std + mean
    else:
        # The components' means are in other units (or include the position):
        # each label's mean colour is what a reader of the figure expects.
        means_rgb = utils.label_means(image, labels, gmm.ncomp)
    result = {"gmm": gmm, "labels": labels, "mean": mean, "std": std, "means_rgb": means_rgb,
              "n_colours": len(colours), "warm_up_iterations": warm_up_iterations,
              "seconds": time.perf_counter() - start}
    if regions is not None:
        result["regions"] = regions
    return result


def fit_colours(colours_norm, counts, ncomp, iteration=100, tol=TOL, seed=0, progress=True):
    """Fit the mixture to distinct colours weighted by their pixel counts.

    Parameters
    ----------
    colours_norm : ndarray of shape (n_colours, c)
        Z-scored distinct colour features.
    counts : ndarray of shape (n_colours,)
    ncomp : int
        At most ``n_colours`` components are fitted (with a warning).
    iteration, tol, seed, progress : see ``GMM.fit`` and ``kmeans``.

    Returns
    -------
    gmm : GMM
    gamma : ndarray of shape (n_colours, K)
        Each colour's responsibilities under the final parameters.
    warm_up_iterations : int
        EM steps run on the colour histogram first (0 if none).
    """
    if ncomp > len(colours_norm):
        warnings.warn(f"the image has only {len(colours_norm)} distinct colour(s); "
                      f"fitting {len(colours_norm)} component(s) instead of {ncomp}",
                      stacklevel=3)
        ncomp = len(colours_norm)
    initial_mus, initial_priors, initial_covs = kmeans(ncomp, colours_norm, counts, seed)
    gmm = GMM(ncomp, initial_mus, initial_covs, initial_priors)
    centres, bin_counts = colour_histogram(colours_norm, counts)
    warm_up_iterations = 0
    if len(centres) * 3 < len(colours_norm):
        gmm.fit(centres, iteration, weights=bin_counts, tol=tol, progress=progress)
        warm_up_iterations = len(gmm.log_likelihood_history) - 1
    gamma = gmm.fit(colours_norm, iteration, weights=counts, tol=tol, progress=progress)
    return gmm, gamma, warm_up_iterations


def summary(result, image_path, k, seed):
    """The JSON record of one fit (see README for the fields)."""
    gmm, labels = result["gmm"], result["labels"]
    n_pixels = labels.size
    log_likelihood = gmm.log_likelihood_history[-1]
    total = log_likelihood * n_pixels
    p = gmm.n_parameters()
    return {
        "image": os.fspath(image_path),
        "k": k,
        "n_components": gmm.ncomp,
        "log_likelihood": log_likelihood,
        "log_likelihood_history": gmm.log_likelihood_history,
        "iterations": len(gmm.log_likelihood_history) - 1,
        "converged": gmm.converged,
        "warm_up_iterations": result["warm_up_iterations"],
        "bic": -2 * total + p * np.log(n_pixels),
        "aic": -2 * total + 2 * p,
        "means": gmm.mus.tolist(),
        "covariances": gmm.covs.tolist(),
        "weights": gmm.priors.tolist(),
        "means_rgb": np.asarray(result["means_rgb"]).tolist(),
        "seconds": result["seconds"],
        "seed": seed,
        "n_pixels": n_pixels,
        "n_colours": result["n_colours"],
    }


def save(image, result, record, out, stem, show=False):
    """Write the label map, the figure and the JSON record, each atomically.

    With ``regions`` in the result, also the region map: a 16-bit PNG, or a
    ``.npy`` when there are more regions than 16 bits can number.
    """
    base = os.path.join(out, f"{stem}_k{record['k']}")
    utils.write_atomic(base + "_labels.png",
                       lambda tmp: Image.fromarray(result["labels"]).save(tmp, format="PNG"))
    regions = result.get("regions")
    if regions is not None and regions.max() < 2**16:
        utils.write_atomic(base + "_regions.png", lambda tmp: Image.fromarray(
            regions.astype(np.uint16)).save(tmp, format="PNG"))
    elif regions is not None:
        utils.write_atomic(base + "_regions.npy", lambda tmp: np.save(tmp, regions))
    utils.visualize(image, result["labels"], np.asarray(record["means_rgb"]),
                    record["log_likelihood_history"],
                    title=(f"{stem}: GMM, k = {record['k']}, "
                           f"log-likelihood {record['log_likelihood']:.3f} nats/pixel"),
                    path=base + "_segmentation.png", show=show, regions=regions)
    utils.write_json(base + ".json", record)


# --k auto's default rule: keep the smallest K whose mean log-likelihood per
# pixel grows by less than K_GAIN nats when one more component is added. BIC
# (and AIC) keep falling up to the largest K on photos: colour noise is not
# Gaussian, so each extra component buys more likelihood than its penalty,
# counted over pixels or over distinct colours alike. On the 30 BSDS500
# training images (bench/bench_bsds.py, README), each image's K chosen from
# its own sweep of 2..12 by the gain rule scored PRI 0.730 / VoI 1.77 against
# the humans, the lowest BIC 0.694 / 2.34, and the best single K for the
# whole set 0.706 / 1.90; thresholds of 0.02, 0.1 and 0.2 nats did worse.
K_GAIN = 0.05
CRITERIA = ("gain", "bic", "aic")


def choose_k(records, criterion="gain", gain=K_GAIN):
    """The record of the K a model-selection criterion prefers.

    Parameters
    ----------
    records : list of dict
        One record per K (see ``summary``), in increasing K.
    criterion : {"gain", "bic", "aic"}, default="gain"
        "gain": the first K whose next record's ``log_likelihood`` is less than
        ``gain`` higher (the last K if every step gains more); "bic" and
        "aic": the lowest value wins.
    gain : float, default=K_GAIN
        Nats per pixel.

    Returns
    -------
    record : dict
        The chosen K's record.
    """
    if criterion == "gain":
        for record, following in itertools.pairwise(records):
            if following["log_likelihood"] - record["log_likelihood"] < gain:
                return record
        return records[-1]
    return min(records, key=lambda record: record[criterion])


def sweep_table(records):
    """A Markdown table of the fits of one image, one row per K.

    Parameters
    ----------
    records : list of dict
        One record per K (see ``summary``).

    Returns
    -------
    table : str
        Columns k, log-likelihood per pixel, BIC, AIC, EM iterations, seconds.
    """
    lines = ["| k | log-likelihood / pixel | BIC | AIC | EM iterations | seconds |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['k']} | {r['log_likelihood']:.4f} | {r['bic']:.1f} | {r['aic']:.1f} "
              f"| {r['iterations']} | {r['seconds']:.2f} |" for r in records]
    return "\n".join(lines)


def main(image_path=DEFAULT_IMAGE, ncomp=4, iteration=100, tol=TOL, seed=0,
         out="results", show=False, progress=True, k_max=K_MAX, criterion="gain",
         color_space="rgb", spatial=0.0, smooth=0.0, min_region=0, merge=0.0, truth=None):
    """Segment one image for one or several K and write the results.

    Parameters
    ----------
    image_path : str
    ncomp : int, sequence of int, or "auto"
        Number(s) of components; each is fitted in turn. ``"auto"`` fits
        K = 2 .. ``k_max`` and keeps the one ``criterion`` prefers
        (``choose_k``).
    iteration : int, default=100
        At most this many EM steps per fit.
    tol, seed : see ``GMM.fit`` and ``kmeans``.
    out : str, default="results"
        Folder for the files (created if missing).
    show : bool, default=False
        Also open each figure in a window.
    k_max : int, default=K_MAX
        Largest K tried by ``"auto"``.
    criterion : {"gain", "bic", "aic"}, default="gain"
        See ``choose_k``.
    color_space, spatial, smooth, min_region, merge : see ``segment``.
    truth : str, optional
        Human segmentation(s) of the image (``utils.load_truth``): each
        record then holds ``truth``, the scores of ``truth_scores`` (of the
        regions with ``min_region`` or ``merge``, else of the labels).

    Returns
    -------
    records : list of dict
        One JSON record per K (see ``summary``); with ``"auto"``, the chosen
        K's alone, whose ``selection`` says what was compared.
    """
    image = utils.load_image(image_path)
    truths = None if truth is None else utils.load_truth(truth)
    if truths is not None and truths.shape[1:] != image.shape[:2]:
        raise utils.InputError(f"--truth {truth}: labels of {truths.shape[2]}x{truths.shape[1]} "
                               f"pixels, but the image is {image.shape[1]}x{image.shape[0]}")
    # Checked before any output exists, as a bad flag should be.
    colour_features(np.zeros((1, image.shape[2]), dtype=image.dtype), color_space)
    prepare_out(out)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    auto = isinstance(ncomp, str)
    ks = range(2, k_max + 1) if auto else [int(k) for k in np.atleast_1d(ncomp)]
    fits = []
    for k in ks:
        result = segment(image, k, iteration, tol, seed, progress, color_space, spatial,
                         smooth, min_region, merge)
        record = summary(result, image_path, k, seed)
        record.update(color_space=color_space, spatial=spatial, smooth=smooth,
                      min_region=min_region, merge=merge)
        segmentation = result.get("regions", result["labels"])
        if "regions" in result:
            record["n_regions"] = int(segmentation.max()) + 1
        if truths is not None:
            record["truth"] = {"path": os.fspath(truth), **truth_scores(segmentation, truths)}
        if not auto:  # written at once, so an interrupted sweep keeps what it finished
            save(image, result, record, out, stem, show)
        fits.append((result, record))
        if auto and result["gmm"].ncomp < k:
            break  # the image has fewer colours than k: a larger k fits the same mixture
    records = [record for _, record in fits]
    chosen = choose_k(records, criterion)
    if len(fits) > 1:
        utils.visualize_sweep(image, [result["labels"] for result, _ in fits],
                              [np.asarray(record["means_rgb"]) for record in records],
                              records, marked_k=chosen["k"],
                              criterion=criterion, title=f"{stem}: GMM for k = "
                              f"{records[0]['k']} .. {records[-1]['k']}",
                              path=os.path.join(out, f"{stem}_sweep.png"), show=show)
    if not auto:
        return records
    chosen["selection"] = {"criterion": criterion, "k": [r["k"] for r in records],
                           "bic": [r["bic"] for r in records],
                           "aic": [r["aic"] for r in records],
                           "log_likelihood": [r["log_likelihood"] for r in records]}
    result = fits[records.index(chosen)][0]
    save(image, result, chosen, out, stem, show)
    return [chosen]


def prepare_out(out):
    """Create the output folder, or refuse one that is a file."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise utils.InputError(f"--out {out}: exists and is not a folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise utils.InputError(f"--out {out}: cannot create it ({exc.strerror})") from None


# --------------------------------------------------------------------------
# Compare with human segmentations (--truth)
# --------------------------------------------------------------------------

def entropy(labels):
    """Shannon entropy of a partition, in nats.

    Parameters
    ----------
    labels : ndarray
        Any shape; one region label per pixel.

    Returns
    -------
    entropy : float
        -sum_i p_i ln p_i over the regions' shares p_i.
    """
    p = np.unique(labels, return_counts=True)[1] / labels.size
    return float(-(p @ np.log(p)))


def variation_of_information(labels, truth):
    """Variation of Information between two partitions, in nats (lower is better).

    VoI(S, G) = H(S) + H(G) - 2 I(S; G): the information lost and gained in
    going from one partition to the other. 0 for the same partition
    (whatever the label names); H(S) against a single region.

    Parameters
    ----------
    labels, truth : ndarray of the same shape

    Returns
    -------
    voi : float
    """
    labels, truth = np.ravel(labels), np.ravel(truth)
    voi = entropy(labels) + entropy(truth) - 2 * mutual_info_score(truth, labels)
    return max(voi, 0.0)  # rounding can leave -1e-16 for equal partitions


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
        not) the segmentation agrees with a human, averaged over humans.
    """
    labels = np.ravel(labels)
    return float(np.mean([rand_score(truth.ravel(), labels) for truth in truths]))


def truth_scores(labels, truths):
    """PRI, mean VoI and mean adjusted Rand index against human segmentations.

    Parameters
    ----------
    labels : ndarray of shape (h, w)
    truths : ndarray of shape (n_humans, h, w)

    Returns
    -------
    scores : dict
        ``pri``, ``voi`` (nats) and ``ari``, each averaged over the humans,
        and ``humans``.
    """
    return {"pri": probabilistic_rand_index(labels, truths),
            "voi": float(np.mean([variation_of_information(labels, truth)
                                  for truth in truths])),
            "ari": float(np.mean([adjusted_rand_score(truth.ravel(), labels.ravel())
                                  for truth in truths])),
            "humans": len(truths)}


# --------------------------------------------------------------------------
# Step 5: video
# --------------------------------------------------------------------------

# A frame is labelled by the E-step alone (the previous frame's parameters,
# unchanged) while its mean log-likelihood per pixel stays within REFIT_DROP
# nats of the frame the mixture was last fitted on. A larger drop means the
# colours have moved away from the components (a pan, a new object, a change
# of light); then up to REFIT_ITERATIONS EM steps start from the current
# parameters. Starting there, EM moves each component to the nearby colours
# instead of re-seeding them, so component k stays "the same" segment. The
# reference is the last fitted frame, not the previous frame, so that a slow
# drift adds up to a refit instead of hiding under the threshold frame after
# frame. 0.1 nats per pixel (each pixel 10% less likely, on average) is above
# both the frame-to-frame jitter of a compressed clip and the error of the
# histogram refit (``refit``), so a refit is not triggered by noise; the
# benchmark's slow pan drifts by 0.001 nats over 150 frames and 0.03 over 600,
# so none of its frames is refitted, while a diagonal pan across the whole
# photo in 4 s crosses the threshold every 6 frames or so.
REFIT_DROP = 0.1
REFIT_ITERATIONS = 5


def colour_keys(frame):
    """Each pixel's 8-bit RGB colour packed into one integer.

    Parameters
    ----------
    frame : ndarray of shape (h, w, 3), uint8

    Returns
    -------
    keys : ndarray of shape (h * w,), int32
        ``r << 16 | g << 8 | b``, from 0 to 2**24 - 1.
    """
    pixels = frame.reshape(-1, 3).astype(np.int32)
    return (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]


def key_colours(keys):
    """The colours of packed keys (see ``colour_keys``), shape (n, 3)."""
    return np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1)


class ColourMemo:
    """The E-step of 8-bit RGB colours under one mixture, each colour computed once.

    Consecutive frames share most of their colours: in the benchmark's pan a
    frame has about 35 000 distinct colours, of which about 450 on average
    have not been seen before (2 000 in a pan four times as fast). So the
    E-step runs on a colour when it first appears and
    is read back from a table after that: a frame costs two table look-ups
    per pixel plus the E-step of its new colours. The labels are exactly the
    E-step's on every pixel. The tables have one entry per 24-bit colour
    (80 MB), whatever the clip's length.

    Parameters
    ----------
    gmm : GMM
        The mixture, in the Z-scored units given by ``mean`` and ``std``. Call
        ``reset`` after changing its parameters.
    mean, std : ndarray of shape (3,)
    """

    def __init__(self, gmm, mean, std):
        self.gmm, self.mean, self.std = gmm, mean, std
        self.log_p_x = np.full(2**24, np.nan, dtype=np.float32)  # NaN: not computed
        self.labels = np.zeros(2**24, dtype=np.uint8)

    def reset(self):
        """Forget every colour's E-step."""
        self.log_p_x.fill(np.nan)

    def label(self, keys):
        """Label pixels and measure how well the mixture explains them.

        Parameters
        ----------
        keys : ndarray of shape (n_pixels,)
            Packed colours (``colour_keys``).

        Returns
        -------
        labels : ndarray of shape (n_pixels,), uint8
            argmax_k gamma_nk.
        log_likelihood : float
            Mean ln p(x_n) per pixel.
        """
        log_p_x = self.log_p_x[keys]
        missing = np.isnan(log_p_x)
        if missing.any():
            self.learn(np.unique(keys[missing]))
            log_p_x[missing] = self.log_p_x[keys[missing]]
        return self.labels[keys], float(log_p_x.sum(dtype=np.float64)) / len(keys)

    def learn(self, keys):
        """Run the E-step on distinct packed colours and remember the result.

        Parameters
        ----------
        keys : ndarray of shape (n_colours,)
            Packed colours, each once.
        """
        log_prob = self.gmm.log_prob((key_colours(keys) - self.mean) / self.std)
        self.log_p_x[keys] = logsumexp(log_prob, axis=1)
        self.labels[keys] = np.argmax(log_prob, axis=1)


def label_frame(memo, frame):
    """Label a frame with the memo's mixture.

    Parameters
    ----------
    memo : ColourMemo
    frame : ndarray of shape (h, w, 3), uint8

    Returns
    -------
    labels : ndarray of shape (h, w), uint8
    log_likelihood : float
        Mean ln p(x_n) per pixel.
    """
    labels, log_likelihood = memo.label(colour_keys(frame))
    return labels.reshape(frame.shape[:2]), log_likelihood


def refit(memo, frame, iteration=REFIT_ITERATIONS, tol=TOL):
    """Run EM on a frame's colours, starting from the current parameters.

    As in ``segment``, EM runs on the colour histogram when that has several
    times fewer points than the frame has distinct colours. On the frames of
    a fast pan this took a quarter of the time of EM on the exact colours and
    ended within 0.04 nats per pixel of it (either side), well under
    ``REFIT_DROP``: a warm-started refit only has to follow the colours, and
    the labels still come from the exact E-step on every colour.

    Parameters
    ----------
    memo : ColourMemo
        Its mixture is updated in place and its E-steps forgotten.
    frame : ndarray of shape (h, w, 3), uint8
    iteration, tol : see ``GMM.fit``.

    Returns
    -------
    labels, log_likelihood : as ``label_frame``, under the new parameters.
    """
    colours, counts, _ = distinct_colours(frame)
    colours_norm = (colours - memo.mean) / memo.std
    centres, bin_counts = colour_histogram(colours_norm, counts)
    if len(centres) * 3 < len(colours):
        colours_norm, counts = centres, bin_counts
    memo.gmm.fit(colours_norm, iteration, weights=counts, tol=tol, progress=False)
    memo.reset()
    memo.learn(colour_keys(colours))
    return label_frame(memo, frame)


def track(frames, ncomp, iteration=100, tol=TOL, seed=0, refit_drop=REFIT_DROP,
          refit_iterations=REFIT_ITERATIONS):
    """Segment a clip frame by frame, each frame starting from the last one's model.

    The first frame is fitted as an image is (``segment``). Its Z-score then
    stays fixed for the whole clip, so every frame's parameters are in the same
    units and can be compared. Each further frame is labelled by the E-step
    under the current mixture, and refitted only when it explains the frame
    worse than ``refit_drop`` (see ``REFIT_DROP``).

    Parameters
    ----------
    frames : iterable of ndarray of shape (h, w, 3), uint8
        Read one at a time; none is kept.
    ncomp : int
    iteration, tol, seed : for the first frame, see ``segment``.
    refit_drop : float, default=REFIT_DROP
        Nats per pixel.
    refit_iterations : int, default=REFIT_ITERATIONS

    Yields
    ------
    step : dict
        ``labels`` (h, w) uint8; ``means_rgb`` (K, 3), the components' means in
        the frame's units; ``log_likelihood``, mean ln p(x) per pixel;
        ``refit``, whether EM was re-run on this frame (False on the first,
        which is fitted from scratch). The first frame's step also has
        ``first``: the result of ``segment``.
    """
    frames = iter(frames)
    first = segment(next(frames), ncomp, iteration, tol, seed, progress=False)
    mean, std = first["mean"], first["std"]
    # A copy, so that refits leave the first frame's fit (its record) intact.
    gmm = copy.deepcopy(first["gmm"])
    reference = gmm.log_likelihood_history[-1]
    yield {"labels": first["labels"], "means_rgb": gmm.mus * std + mean,
           "log_likelihood": reference, "refit": False, "first": first}
    memo = ColourMemo(gmm, mean, std)
    for frame in frames:
        labels, log_likelihood = label_frame(memo, frame)
        refitted = reference - log_likelihood > refit_drop
        if refitted:
            labels, log_likelihood = refit(memo, frame, refit_iterations, tol)
            reference = log_likelihood
        yield {"labels": labels, "means_rgb": gmm.mus * std + mean,
               "log_likelihood": log_likelihood, "refit": refitted}


def segment_video(video_path, ncomp, iteration=100, tol=TOL, seed=0, out="results",
                  stem=None, fps=None, progress=True):
    """Segment one clip for one K and write its three files.

    Writes ``<stem>_k<K>_segmented.<gif|mp4>`` (each pixel painted with its
    component's mean colour), ``<stem>_k<K>_labels.npy`` (uint8, shape
    (frames, h, w)) and ``<stem>_k<K>.json``, each atomically and frame by
    frame.

    Parameters
    ----------
    video_path : str
        An MP4 (or any video ffmpeg reads), an animated GIF, or a folder of frames.
    ncomp : int
    iteration, tol, seed : see ``track``.
    out : str
        Folder for the files (created if missing).
    stem : str, optional
        File name prefix; default: the input's name without extension.
    fps : float, optional
        Frame rate to write; default: the input's.
    progress : bool, default=True
        Show a tqdm bar over the frames.

    Returns
    -------
    record : dict
        The first frame's fit as ``summary`` gives it (it fixes what each label
        means), with ``video`` in place of ``image``, plus ``frames``, ``fps``,
        ``seconds`` (the whole clip, decoding and encoding included),
        ``seconds_per_frame``, ``refit_frames`` and ``frame_log_likelihood``.
    """
    start = time.perf_counter()
    info, frames = utils.open_video(video_path)
    fps = fps or info["fps"]
    if stem is None:
        stem = os.path.splitext(os.path.basename(os.path.normpath(video_path)))[0]
    base = os.path.join(out, f"{stem}_k{ncomp}")
    prepare_out(out)
    first, log_likelihoods, refit_frames = None, [], []

    def write(labels, palette):
        video.write(labels, palette)
        labels_out.write(labels)

    # Writing frame n (painting it, piping it to the encoder) overlaps with
    # labelling frame n + 1; numpy and the pipe release the GIL. One frame in
    # flight keeps memory flat and brings a writer's error back at once.
    with utils.video_writer(f"{base}_segmented.{info['container']}", fps) as video, \
            utils.npy_frames_writer(base + "_labels.npy") as labels_out, \
            ThreadPoolExecutor(max_workers=1) as writer, \
            tqdm(track(frames, ncomp, iteration, tol, seed), total=info["frames"],
                 desc=f"video k={ncomp}", unit="frame", disable=None if progress else True,
                 leave=False) as bar:
        written = None
        for step in bar:
            first = step.get("first", first)
            palette = np.clip(np.rint(step["means_rgb"]), 0, 255).astype(np.uint8)
            if written is not None:
                written.result()
            written = writer.submit(write, step["labels"], palette)
            log_likelihoods.append(step["log_likelihood"])
            if step["refit"]:
                refit_frames.append(len(log_likelihoods) - 1)
        written.result()
    seconds = time.perf_counter() - start
    record = summary(first, video_path, ncomp, seed)
    record = {"video": record.pop("image"), **record, "frames": len(log_likelihoods),
              "fps": fps, "seconds": seconds,
              "seconds_per_frame": seconds / len(log_likelihoods),
              "refit_frames": refit_frames, "frame_log_likelihood": log_likelihoods}
    utils.write_json(base + ".json", record)
    return record


def main_video(video_path, ncomp=4, iteration=100, tol=TOL, seed=0, out="results",
               fps=None, progress=True):
    """Segment a clip for one or several K; see ``segment_video``.

    Returns
    -------
    records : list of dict
        One record per K.
    """
    return [segment_video(video_path, int(k), iteration, tol, seed, out, fps=fps,
                          progress=progress)
            for k in np.atleast_1d(ncomp)]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line, not usage + error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(name, upper=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, not {text!r}")
        if value < 1 or (upper is not None and value > upper):
            bound = f"from 1 to {upper}" if upper else "at least 1"
            raise argparse.ArgumentTypeError(f"{name} must be {bound}, not {value}")
        return value
    return parse


def _k_value(text):
    return "auto" if text == "auto" else _positive_int("k", MAX_COMPONENTS)(text)


def _positive_float(text, name="tol"):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{name} must be above 0, not {text}")
    return value


def _non_negative_float(name):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}")
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be 0 or more, not {text}")
        return value
    return parse


def _non_negative_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, not {text!r}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be 0 or more, not {value}")
        return value
    return parse


def parse_args(argv=None):
    parser = _Parser(
        prog="segmentation_GMM.py",
        description="Segment an image or a video with a Gaussian mixture fitted by EM, "
                    "initialised by k-means.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", default=DEFAULT_IMAGE,
                        help="image file (default: images/chelsea.png)")
    source.add_argument("--video",
                        help="MP4 (or other video ffmpeg reads), animated GIF, or folder "
                             "of frames in name order; writes a segmented clip, the "
                             "labels (.npy) and a JSON record per K")
    parser.add_argument("--k", nargs="+", type=_k_value, default=[4], metavar="K",
                        help="number of components; several values fit each in turn and "
                             "draw a sweep figure; 'auto' fits 2..K-MAX and keeps one "
                             "(see --k-criterion; default: 4)")
    parser.add_argument("--k-max", type=_positive_int("k-max", MAX_COMPONENTS), default=K_MAX,
                        help=f"largest k that --k auto tries (default: {K_MAX})")
    parser.add_argument("--k-criterion", choices=CRITERIA, default="gain",
                        help=f"how --k auto chooses: 'gain' keeps the smallest k whose "
                             f"log-likelihood per pixel grows by less than {K_GAIN} nats "
                             f"with one more component; 'bic', 'aic' the lowest "
                             f"(default: gain)")
    parser.add_argument("--iters", type=_positive_int("iters"), default=100,
                        help="at most this many EM iterations (default: 100)")
    parser.add_argument("--tol", type=_positive_float, default=TOL,
                        help=f"stop when the log-likelihood per pixel changes by less "
                             f"(default: {TOL})")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default: 0)")
    parser.add_argument("--out", default="results",
                        help="folder for the outputs (default: results)")
    parser.add_argument("--show", action="store_true", help="open each figure in a window")
    parser.add_argument("--fps", type=lambda text: _positive_float(text, "fps"),
                        help=f"frame rate of the segmented clip (default: the input's; "
                             f"{utils.DEFAULT_FPS:g} for a folder of frames)")
    quality = parser.add_argument_group("segment quality (images only; see README)")
    quality.add_argument("--color-space", choices=COLOR_SPACES, default="rgb",
                         help="colour features: Z-scored RGB, or CIELAB, closer to "
                              "perceived colour differences (default: rgb)")
    quality.add_argument("--spatial", type=_non_negative_float("spatial"), default=0.0,
                         metavar="W",
                         help="append each pixel's Z-scored row and column times W to its "
                              "features; fitted on a random sample of "
                              f"{SPATIAL_SAMPLE} pixels (default: 0, colour only)")
    quality.add_argument("--smooth", type=_non_negative_float("smooth"), default=0.0,
                         metavar="S",
                         help="blur each component's responsibilities with a Gaussian of "
                              "S pixels before labelling (default: 0, none)")
    quality.add_argument("--min-region", type=_non_negative_int("min-region"), default=0,
                         metavar="A",
                         help="also split the labels into connected regions, fold regions "
                              "under A pixels into the nearest larger one, and write them "
                              "(<stem>_k<K>_regions.png, 16-bit); --truth then scores the "
                              "regions (default: 0, off)")
    quality.add_argument("--merge", type=_non_negative_float("merge"), default=0.0,
                         metavar="D",
                         help="also merge touching regions whose mean colours differ by less "
                              "than D (CIELAB Delta E), most similar first; implies the "
                              "regions of --min-region (default: 0, off)")
    quality.add_argument("--truth", metavar="PATH",
                         help="human segmentation(s) of the image: a label image, .npy, "
                              ".npz (key segs) or BSDS .mat; prints and records PRI, VoI "
                              "and ARI")
    args = parser.parse_args(argv)
    if "auto" in args.k:
        if len(args.k) > 1:
            parser.error("--k auto stands alone, not with other values")
        if args.video is not None:
            parser.error("--k auto is for images; give a video its k")
        if args.k_max < 2:
            parser.error(f"--k-max must be at least 2 for --k auto, not {args.k_max}")
        args.k = "auto"
    if args.video is not None and (args.color_space != "rgb" or args.spatial or args.smooth
                                   or args.min_region or args.merge or args.truth):
        parser.error("--color-space, --spatial, --smooth, --min-region, --merge and --truth "
                     "are for images, not --video")
    return args


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"warning: {message}\n"


def cli(argv=None):
    """Run the command line; return the exit code."""
    args = parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        if args.video is not None:
            records = main_video(args.video, args.k, args.iters, args.tol, args.seed,
                                 args.out, args.fps)
        else:
            records = main(args.image, args.k, args.iters, args.tol, args.seed, args.out,
                           args.show, k_max=args.k_max, criterion=args.k_criterion,
                           min_region=args.min_region, merge=args.merge,
                           color_space=args.color_space,
                           spatial=args.spatial, smooth=args.smooth, truth=args.truth)
    except utils.InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    for record in records:
        source = record.get("video", record.get("image"))
        stem = os.path.splitext(os.path.basename(os.path.normpath(source)))[0]
        files = os.path.join(args.out, f"{stem}_k{record['k']}*")
        if "video" in record:
            print(f"k={record['k']}: {record['frames']} frames, "
                  f"{len(record['refit_frames'])} refitted, "
                  f"{record['frames'] / record['seconds']:.1f} frames/s -> {files}")
            continue
        print(f"k={record['k']}: {record['iterations']} EM iterations, "
              f"log-likelihood {record['log_likelihood']:.4f} nats/pixel, "
              f"BIC {record['bic']:.4g}, {record['seconds']:.2f} s -> {files}")
        if "truth" in record:
            scores = record["truth"]
            scored = f"{record['n_regions']} regions" if "n_regions" in record else "labels"
            print(f"k={record['k']}: {scored}: PRI {scores['pri']:.4f}, VoI {scores['voi']:.4f} nats, "
                  f"ARI {scores['ari']:.4f} against {scores['humans']} human "
                  f"segmentation(s) in {scores['path']}")
        if "selection" in record:
            print(_selection_reason(record))
    if args.video is None and len(records) > 1:
        print(sweep_table(records))
    return 0


def _selection_reason(record):
    """One sentence on why ``--k auto`` kept its K."""
    selection = record["selection"]
    ks, criterion = selection["k"], selection["criterion"]
    if criterion == "gain":
        reason = (f"--k auto kept k={record['k']}: the first of k={ks[0]}..{ks[-1]} whose "
                  f"log-likelihood grows by less than {K_GAIN} nats/pixel with one more "
                  f"component")
        if record["k"] == ks[-1]:
            reason += " (none did; --k-max raises the limit)"
        return reason
    reason = (f"--k auto kept k={record['k']}: the lowest {criterion.upper()} of "
              f"k={ks[0]}..{ks[-1]}")
    if record["k"] == ks[-1]:
        reason += (" (still falling at the largest k tried: colour noise is not "
                   "Gaussian; --k-max raises the limit)")
    return reason


if __name__ == "__main__":
    sys.exit(cli())
