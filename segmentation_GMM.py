"""Lab 10 - Clustering with GMM: segment an image with a Gaussian mixture fitted by EM.

The lab's steps, in order:

1. ``load``    read the image and Z-score each channel over the pixels.
2. ``kmeans``  seed the means, covariances and mixing coefficients with k-means.
3. ``GMM``     run EM: ``inference`` is the E-step (responsibilities ``gamma`` and
               the log-likelihood), ``update`` the M-step (``mus``, ``covs``,
               ``priors``), ``fit`` alternates them until the log-likelihood
               stops improving.
4. ``main``    label every pixel with its most likely component (``segment``)
               and draw one mask per component (``utils.visualize``).

One idea makes it fast without changing the model: an 8-bit photo of N pixels
has far fewer distinct colours U. Every pixel of one colour gets the same
responsibilities, so EM on the U distinct colours, each weighted by its pixel
count, computes exactly the sums EM on all N pixels computes (see
``distinct_colours`` and the ``weights`` argument of the EM functions).

Everything beyond the lab (CIELAB and position features, regions, scores
against human segmentations, choosing k, video, the command line) lives in the
package ``gmmseg``, which builds on this file; this file imports none of it.
From Python, ``gmmseg.segment(image, n_components)`` is the checked entry
(``.labels``, ``.model``); ``python segmentation_GMM.py --help`` the command line.
"""

import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import utils

# SciPy and scikit-learn are imported where used: ``--help`` should answer at once.

# Added to every covariance's diagonal after each M-step, as scikit-learn's reg_covar does. In
# Z-scored units it is a standard deviation of 1e-3 of the channel's spread: far below the noise
# of a photo, yet it keeps a component that collapses onto one colour (or onto fewer points than
# dimensions) from becoming singular.
REG_COVAR = 1e-6

# The side of the warm-up histogram's cubes, in Z-scored units: about 4 levels of an 8-bit channel
# of typical spread, so that the warm-up lands within a few exact EM steps of convergence.
HISTOGRAM_STEP = 1 / 16

# The warm-up EM on the histogram takes at most this share of `iteration`, the
# exact steps the rest: `iteration` bounds the whole fit (fit_colours).
WARM_UP_SHARE = 0.5

# EM stops when the mean log-likelihood per pixel changes by less than this
# (nats). Per pixel, so the rule means the same on a thumbnail and on 12 MP.
TOL = 1e-4

DEFAULT_IMAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images", "chelsea.png")
MAX_COMPONENTS = 256  # labels are written as 8-bit PNG
BINCOUNT_BLOCK = 1 << 22  # pixels counted at a time by distinct_colours beyond 16 MP


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
    image : ndarray of shape (h, w, c), or (..., c) for a volume

    Returns
    -------
    colours : ndarray of shape (n_colours, c)
        Each distinct colour once, in the image's units.
    counts : ndarray of shape (n_colours,)
        Number of pixels of each colour.
    inverse : ndarray of shape (h * w,)
        Index into ``colours`` of each pixel: ``colours[inverse]`` is the image
        (32-bit beyond 16 MP, to keep a large photo's arrays small).
    """
    c = image.shape[-1]
    pixels = image.reshape(-1, c)
    if not np.issubdtype(pixels.dtype, np.integer):
        return _unique_rows(pixels)
    # Channel by channel: a reduction down a column of an (N, c) array is ten
    # times slower than over a strided 1-D view. In Python integers, which
    # cannot overflow, to decide whether the packed keys fit in 64 bits.
    lo = [int(pixels[:, ch].min()) for ch in range(c)]
    hi = [int(pixels[:, ch].max()) for ch in range(c)]
    strides = [1] * c
    for ch in range(c - 2, -1, -1):
        strides[ch] = strides[ch + 1] * (hi[ch + 1] - lo[ch + 1] + 1)
    key_range = (sum(v * s for v, s in zip(lo, strides, strict=True)),
                 sum(v * s for v, s in zip(hi, strides, strict=True)))
    if min(key_range) < -2**62 or max(key_range) >= 2**62:
        return _unique_rows(pixels)  # 32-bit channels of wide range: keys would overflow
    size = strides[0] * (hi[0] - lo[0] + 1)
    lo, strides = np.array(lo, dtype=np.int64), np.array(strides, dtype=np.int64)
    dims = np.array(hi, dtype=np.int64) - lo + 1
    # bincount copies its input to np.intp: up to 16 MP the keys are built in it
    # and counted at once; beyond, in 32 bits, block by block, so the copy stays small.
    one_block = len(pixels) <= 4 * BINCOUNT_BLOCK  # 16 MP
    key_type = np.intp if one_block or key_range[1] >= 2**31 else np.int32
    # key = ravel_multi_index(pixels - lo, dims), built in place channel by
    # channel from the raw values (no (N, c) temporary), then shifted by lo.
    key = pixels[:, 0].astype(key_type)
    for ch in range(1, c):
        key *= key_type(dims[ch])
        key += pixels[:, ch]
    key -= key_type(lo @ strides)
    if size <= 2**25:
        block = len(key) if one_block else BINCOUNT_BLOCK
        table = np.bincount(key[:block], minlength=size)
        for start in range(block, len(key), block):
            table += np.bincount(key[start:start + block], minlength=size)
        keys = np.flatnonzero(table)
        counts = table[keys]
        # The count table becomes the key -> index lookup (a 32-bit copy for 32-bit
        # keys), and each pixel's key is overwritten by its index: on a 48 MP photo
        # the pixel-sized arrays are the image and this one, 7 bytes a pixel.
        lookup = table if table.dtype == key_type else np.zeros(size, dtype=key_type)
        lookup[keys] = np.arange(len(keys))
        del table
        inverse = np.take(lookup, key, out=key, mode="clip")  # every key is in range
    else:
        keys, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    colours = np.stack(np.unravel_index(keys, tuple(dims)), axis=1) + lo
    return colours, counts, inverse


def _unique_rows(pixels):
    """``distinct_colours`` of pixels whose values do not pack into one integer key.

    A row of 4 or 8 bytes (grey floats, float32 pairs) is sorted as one word of its bits, -0.0
    made 0.0, read back as the colour: 10 M grey floats took 24 s as rows, 2 s so (and 1.9
    million 0.14 s, against 0.26 s with the first index of each, which takes a stable sort).
    """
    width = pixels.shape[1] * pixels.itemsize
    if width in (4, 8):
        words = np.ascontiguousarray(pixels + pixels.dtype.type(0)).view(f"u{width}")[:, 0]
        keys, inverse, counts = np.unique(words, return_inverse=True, return_counts=True)
        return keys.view(pixels.dtype).reshape(-1, pixels.shape[1]), counts, inverse.ravel()
    colours, inverse, counts = np.unique(pixels, axis=0, return_inverse=True,
                                         return_counts=True)
    return colours, counts, inverse.ravel()


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
                        for ch in range(colours_norm.shape[1])]).T
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
    # The tiny floor keeps an emptied component finite (as scikit-learn does); its prior is then ~0.
    soft_counts = r.sum(axis=0) + 10 * np.finfo(np.float64).eps
    mus = (r.T @ datas) / soft_counts[:, None]
    ncomp, c = mus.shape
    covs = np.empty((ncomp, c, c))

    def component(k):  # on EM's threads, as in the E-step
        diff = datas - mus[k]
        covs[k] = (r[:, k, None] * diff).T @ diff / soft_counts[k]
        covs[k].flat[:: c + 1] += reg_covar
    utils.for_each(component, range(ncomp), len(datas))
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
    from sklearn.cluster import KMeans

    # One k-means++ start (n_init="auto"), on one OpenMP thread: on 300 000 colours (12 MP) two
    # threads took 0.25 s on 2 busy cores, one 0.07 s: each Lloyd step is too short to share.
    with threadpool_limits(limits=1, user_api="openmp"):
        labels = KMeans(n_clusters=n_cluster, n_init=1, random_state=seed).fit_predict(
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
            Stored component by component (Fortran order): each logpdf writes one contiguous column,
            and the sums over K that follow run along memory, 2 to 3 times faster than on rows.
        """
        from scipy.stats import multivariate_normal

        log_prob = np.empty((self.ncomp, len(datas)))

        def component(part):  # a component's rows: the threads share odd K evenly
            k, rows = part
            log_prob[k, rows] = multivariate_normal.logpdf(datas[rows], mean=self.mus[k],
                                                           cov=self.covs[k])
        parts = [(k, rows) for k in range(self.ncomp) for rows in utils.row_blocks(len(datas))]
        utils.for_each(component, parts, len(datas))  # on two threads
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
            The total sum_n weights_n ln p(x_n), finite even where every density underflows to 0.
        """
        from scipy.special import logsumexp

        log_prob = self.log_prob(datas)
        log_p_x = np.empty(len(datas))

        def rows(block):  # in place: a large (n_samples, K) temporary costs what the sums do
            log_p_x[block] = logsumexp(log_prob[block], axis=1)
            log_prob[block] -= log_p_x[block, None]
            np.exp(log_prob[block], out=log_prob[block])
        utils.for_each(rows, utils.row_blocks(len(datas)), len(datas))  # each row alone
        gamma = log_prob
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
# Step 4: label every pixel, save and show
# --------------------------------------------------------------------------

def fit_colours(colours_norm, counts, ncomp, iteration=100, tol=TOL, seed=0, progress=True,
                exact=True):
    """Fit the mixture to distinct colours weighted by their pixel counts.

    Parameters
    ----------
    colours_norm : ndarray of shape (n_colours, c)
        Z-scored distinct colour features.
    counts : ndarray of shape (n_colours,)
    ncomp : int
        At most ``n_colours`` components are fitted (with a warning).
    iteration : int
        At most this many EM steps in all: the warm-up on the colour
        histogram at most ``WARM_UP_SHARE`` of them, the exact steps the rest.
    tol, seed, progress : see ``GMM.fit`` and ``kmeans``.
    exact : bool, default=True
        False: after a warm-up the exact colours get an E-step alone (``gmmseg.mrf`` refits).

    Returns
    -------
    gmm : GMM
    gamma : ndarray of shape (n_colours, K)
        Each colour's responsibilities under the final parameters.
    warm_up_history : list of float
        Mean log-likelihood per pixel of the warm-up EM on the colour
        histogram, at its start and after each step (empty if it did not run);
        ``gmm.log_likelihood_history`` then continues from its end.
    """
    if ncomp > len(colours_norm):
        warnings.warn(f"the image has only {len(colours_norm)} distinct colour(s); "
                      f"fitting {len(colours_norm)} component(s) instead of {ncomp}", stacklevel=3)
        ncomp = len(colours_norm)
    initial_mus, initial_priors, initial_covs = kmeans(ncomp, colours_norm, counts, seed)
    gmm = GMM(ncomp, initial_mus, initial_covs, initial_priors)
    centres, bin_counts = colour_histogram(colours_norm, counts)
    warm_up_history = []
    if len(centres) * 3 < len(colours_norm) and iteration * WARM_UP_SHARE >= 1:
        gmm.fit(centres, int(iteration * WARM_UP_SHARE), weights=bin_counts, tol=tol,
                progress=progress)
        warm_up_history = gmm.log_likelihood_history
    steps_left = iteration - max(len(warm_up_history) - 1, 0) if exact or not warm_up_history else 0
    gamma = gmm.fit(colours_norm, steps_left, weights=counts, tol=tol, progress=progress)
    return gmm, gamma, warm_up_history


def zscore_colours(colours, counts, features=None, mean=None, std=None):
    """Distinct colours (``distinct_colours``) as the Z-scored points EM is fitted on.

    ``features`` maps the colours first (see ``segment``). The Z-score is the
    colours' own, weighted by their counts (that of all the pixels), or the
    given ``mean`` and ``std`` of shape (c,) (a fitted model's). Returns
    ``colours_norm`` of shape (n_colours, c), ``mean`` and ``std``.
    """
    # Channel by channel in memory (Fortran order): EM's passes run along it, 1/3 faster.
    colour_features = np.asfortranarray(features(colours) if features else colours, float)
    if mean is None:
        mean, std = channel_stats(colour_features, counts)
    return (colour_features - mean) / std, mean, std


def segment(image, ncomp, iteration=100, tol=TOL, seed=0, progress=True, features=None):
    """Fit a K-component mixture to an image's colours and label every pixel.

    The fit runs on the distinct colours weighted by their pixel counts, the same model as a
    fit on every pixel. When the colours are many, a first EM on a colour histogram
    (``colour_histogram``, several times fewer points) brings the parameters near the optimum,
    and EM on the exact colours needs only a few steps (k-means on it fell into worse optima).

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
    ncomp : int
    iteration, tol, seed, progress : see ``fit_colours``.
    features : callable, optional
        Maps the distinct colours, shape (n_colours, c), to the features the
        mixture is fitted on (``gmmseg.features.colour_features``); default:
        the colours themselves.

    Returns
    -------
    result : dict
        ``gmm`` (the fitted GMM), ``labels`` (h, w) uint8, ``mean`` and ``std``
        (c,) of the features' Z-score, ``means_rgb`` (K, c) (each component's
        mean colour in the image's units), ``n_colours``, ``warm_up_history``
        (``fit_colours``), ``log_likelihood_history`` and ``converged`` (the fit's,
        for ``summary``), ``seconds``; for the extensions ``gamma`` (n_colours, K),
        each colour's responsibilities, and ``inverse`` (h * w,), each pixel's colour.
    """
    start = time.perf_counter()
    colours, counts, inverse = distinct_colours(image)
    colours_norm, mean, std = zscore_colours(colours, counts, features)
    gmm, gamma, warm_up_history = fit_colours(colours_norm, counts, ncomp, iteration, tol, seed,
                                              progress)
    labels = np.argmax(gamma, axis=1).astype(np.uint8)[inverse].reshape(image.shape[:-1])
    if features is None:
        means_rgb = gmm.mus * std + mean
    else:  # the means are in other units: each label's mean colour is what a reader expects
        means_rgb = utils.label_means(image, labels, gmm.ncomp)
    return {"gmm": gmm, "labels": labels, "mean": mean, "std": std, "means_rgb": means_rgb,
            "n_colours": len(counts), "warm_up_history": warm_up_history,
            "log_likelihood_history": gmm.log_likelihood_history, "converged": gmm.converged,
            "seconds": time.perf_counter() - start, "gamma": gamma, "inverse": inverse}


def summary(result, image_path, k, seed):
    """The JSON record of one fit (README lists the fields) from ``segment``'s result or a
    ``gmmseg.Segmentation``, whose ``log_likelihood_history`` is the image's."""
    gmm, labels, history = result["gmm"], result["labels"], result["log_likelihood_history"]
    n_pixels = labels.size if result.get("mask") is None else int(result["mask"].sum())
    log_likelihood = history[-1]
    total = log_likelihood * n_pixels
    p = gmm.n_parameters()
    return {
        "image": os.fspath(image_path), "k": k, "n_components": gmm.ncomp,
        "log_likelihood": log_likelihood, "log_likelihood_history": history,
        "iterations": len(history) - 1, "converged": result["converged"],
        "warm_up_iterations": max(len(result["warm_up_history"]) - 1, 0),
        "warm_up_log_likelihood_history": result["warm_up_history"],
        "bic": -2 * total + p * np.log(n_pixels), "aic": -2 * total + 2 * p,
        "means": gmm.mus.tolist(), "covariances": gmm.covs.tolist(),
        "weights": gmm.priors.tolist(), "means_rgb": np.asarray(result["means_rgb"]).tolist(),
        "seconds": result["seconds"], "seed": seed, "n_pixels": n_pixels,
        "n_colours": result["n_colours"],
    }


def main(image_path=DEFAULT_IMAGE, ncomp=4, iteration=100, tol=TOL, seed=0, out="results",
         show=False, progress=True):
    """The lab's run: segment one image for one K and write its three files.

    Writes ``<stem>_k<K>_labels.png``, ``<stem>_k<K>_segmentation.png`` (the
    masks, ``utils.visualize``) and ``<stem>_k<K>.json`` (``summary``) into
    ``out``, atomically. The command line writes them through ``gmmseg.segment_file``,
    which checks every argument and never replaces another image's results.

    Parameters
    ----------
    image_path : str
    ncomp : int
        Number of components K.
    iteration, tol, seed, progress : see ``fit_colours``.
    out : str, default="results"
    show : bool, default=False
        Also open the figure in a window.

    Returns
    -------
    record : dict
        The JSON record (``summary``).
    """
    image = utils.load_image(image_path)
    result = segment(image, ncomp, iteration, tol, seed, progress)
    record = summary(result, image_path, ncomp, seed)
    os.makedirs(out, exist_ok=True)  # the same names as gmmseg.outputs.OutputNames
    base = os.path.join(out, f"{os.path.splitext(os.path.basename(image_path))[0]}_k{ncomp}")
    utils.write_png(base + "_labels.png", result["labels"])
    utils.visualize(image, result["labels"], result["means_rgb"],
                    result["log_likelihood_history"], title=f"GMM, k = {result['gmm'].ncomp}",
                    path=base + "_segmentation.png", show=show,
                    warm_up_history=result["warm_up_history"])
    utils.write_json(base + ".json", record)
    return record


if __name__ == "__main__":
    # The command line (every flag, its checks and one-line errors) lives in gmmseg.cli.
    from gmmseg.cli import main as cli

    sys.exit(cli())
