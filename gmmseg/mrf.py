"""A spatial prior inside EM: a Potts model on the neighbours' responsibilities, mean-field.

FSL FAST (the HMRF-EM of Zhang, Brady and Smith 2001) and ANTs Atropos hold
the classes together in noise with a Markov random field over the labels: a
pixel is more likely of the class its neighbours are. Exact inference is
intractable; the mean-field approximation stands each neighbour's label in
by its responsibilities, so the E-step becomes, over the 4 (2-D) or 6 (3-D)
face neighbours j of pixel i inside the image (or the mask)::

    ln q_ik = ln N(x_i | mus_k, covs_k) + beta sum_j q_jk - ln Z_i

with ``beta`` the option ``mrf``: the field stands in for the priors, as in
HMRF-EM (the priors are still estimated, for the mixture's log-likelihood
that the record keeps). The M-step is the lab's
(``segmentation_GMM.estimate_parameters``) on the q of the pixels summed per
distinct colour, so it costs what a colour fit's does; the densities are
the lab's too (``GMM.log_prob``, ``multivariate_normal.logpdf``), computed
once per distinct colour and step. The mixture's fit without the prior
comes first (``fit_colours``): the field starts from its responsibilities.
"""

import threading

import numpy as np

import utils

__all__ = ["CHANGED", "mean_field", "neighbour_sum", "refit"]

# The prior's steps stop when fewer pixels than this share change their label
# in a step. Its objective moves on long after the labels stop: at beta 1 on
# the brain of bench/bench_tissue.py (5 % noise), 27 steps to a change of
# 1e-4 nats a pixel, for Dice within 0.006 of those after 9 steps.
CHANGED = 1e-3


def neighbour_sum(values, out=None):
    """Each pixel's sum of its face neighbours' values (zero beyond the edges).

    Parameters
    ----------
    values : ndarray of shape (h, w) or (z, y, x)
    out : ndarray of the same shape and dtype, optional
        Where to write the sums (not ``values``), so that the prior's steps
        reuse one array of the bounding box's size.

    Returns
    -------
    sums : ndarray of the same shape
        Two shifted adds an axis: 4 neighbours in 2-D, 6 in 3-D.
    """
    sums = np.empty_like(values) if out is None else out
    for axis in range(values.ndim):
        low = [slice(None)] * values.ndim
        high = [slice(None)] * values.ndim
        low[axis], high[axis] = slice(None, -1), slice(1, None)
        if axis == 0:  # the first term written, not added to zeros: the same sums
            sums[tuple(high)] = values[tuple(low)]
            sums[:1] = 0
        else:
            sums[tuple(high)] += values[tuple(low)]
        sums[tuple(low)] += values[tuple(high)]
    return sums


def _box(mask):
    """The slices of the mask's bounding box: the field is computed there alone."""
    box = []
    for axis in range(mask.ndim):
        inside = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(inside[0]), int(inside[-1]) + 1))
    return tuple(box)


def _field_into(log_q, k, q, grid, where, beta, cells, buffers):
    """beta times component k's neighbour responsibilities at ``cells``, into ``log_q[k]``.

    ``q`` is (K, n_pixels), a component a row; the pixels sit at the flat
    indices ``where`` of an array of shape ``grid`` (the mask's bounding box:
    beyond it every q is 0), or fill it in order when ``where`` is None;
    ``cells`` are flat indices of that array. ``buffers`` holds two arrays of
    ``grid`` per thread, made at a thread's first call (zero beyond the
    mask, which ``where`` never writes).
    """
    pair = buffers.get(threading.get_ident())
    if pair is None:
        pair = buffers[threading.get_ident()] = (np.zeros(grid, q.dtype),
                                                 np.empty(grid, q.dtype))
    values, sums = pair
    if where is None:
        values.reshape(-1)[:] = q[k]
    else:
        values.reshape(-1)[where] = q[k]
    np.take(neighbour_sum(values, out=sums).reshape(-1), cells, out=log_q[k])
    log_q[k] *= beta


def _colours(grid, where):
    """The pixels of each colour of a checkerboard: (even, odd) indices into the pixels.

    A pixel's 4 or 6 face neighbours are all of the other colour, so each
    half is updated from the other's latest responsibilities (red-black
    Gauss-Seidel). Updating every pixel at once from the last step's
    oscillated at beta 2: 90 steps without converging on the brain of
    bench/bench_tissue.py.
    """
    cells = np.arange(int(np.prod(grid))) if where is None else where
    parity = np.sum(np.unravel_index(cells, grid), axis=0) % 2
    return np.flatnonzero(parity == 0), np.flatnonzero(parity == 1)


def _normalise(log_q):
    """Responsibilities from unnormalised log-probabilities (K, n), in place, and ln Z (n,).

    One pass gives both; ``scipy.special.logsumexp`` alone took 0.27 s on
    1.7 million colours of 3 components, this 0.1 s for both on 1.9 million
    pixels (a step of bench/bench_tissue.py's 5 % noise).
    """
    top = log_q.max(axis=0)
    log_q -= top
    q = np.exp(log_q, out=log_q)
    total = q.sum(axis=0)
    q /= total
    return q, top + np.log(total)


def _argmax(q):
    """``np.argmax(q, axis=0)`` of a (K, n) array, a row at a time (the first of equal maxima).

    Along axis 0 NumPy walks each column across the rows: 33 ms on 3 x 1.9
    million float32, against 21 ms for comparing row by row.
    """
    best, labels = q[0].copy(), np.zeros(q.shape[1], np.intp)
    for k in range(1, len(q)):
        above = q[k] > best
        labels[above] = k
        np.maximum(best, q[k], out=best)
    return labels


def _normalise_blocks(log_q):
    """``_normalise`` of ``log_q`` (K, n) in place, a block of columns on each EM thread; ln Z."""
    log_z = np.empty(log_q.shape[1], log_q.dtype)

    def block(columns):
        log_z[columns] = _normalise(log_q[:, columns])[1]

    utils.for_each(block, utils.row_blocks(log_q.shape[1]), log_q.shape[1])
    return log_z


def refit(gmm, warm_up_history, colours_norm, counts, inverse, shape, options, mask=None,
          progress=True):
    """Continue a fit without the prior (``fit_colours``) with it, within ``max_iter``.

    The steps the fit took (its warm-up's and exact ones) are spent; the
    prior's M-steps take the rest of ``options.max_iter``, and their
    log-likelihoods continue ``gmm.log_likelihood_history``. Returns the
    pixels' responsibilities, (n_pixels, K) (``mean_field``).
    """
    used = max(len(warm_up_history) - 1, 0) + len(gmm.log_likelihood_history) - 1
    q, history, gmm.converged = mean_field(gmm, colours_norm, counts, inverse, shape,
                                           options.mrf, options.max_iter - used, mask=mask,
                                           progress=progress)
    gmm.log_likelihood_history = gmm.log_likelihood_history + history
    return q


def mean_field(gmm, colours_norm, counts, inverse, shape, beta, iteration, *, mask=None,
               update=True, progress=True):
    """EM (or, without ``update``, its E-step alone) with the Potts prior, mean-field.

    Parameters
    ----------
    gmm : segmentation_GMM.GMM
        Fitted without the prior; with ``update``, refitted in place.
    colours_norm : ndarray of shape (n_colours, c)
        The Z-scored distinct colours; ``counts`` (n_colours,) their pixels.
    counts : ndarray of shape (n_colours,)
    inverse : ndarray of shape (n_pixels,)
        Each pixel's colour, the pixels in C order (those inside ``mask``).
    shape : tuple of int
        The image's spatial shape, (h, w) or (z, y, x).
    beta : float
        The prior's weight (``Options.mrf``), above 0.
    iteration : int
        At most this many M-steps. Each step is an M-step on the last
        responsibilities (but the first: the parameters are the fit's), then
        an E-step with the field of the last responsibilities; so ``q`` is
        always that of the parameters returned.
    mask : ndarray of bool of ``shape``, optional
    update : bool, default=True
        Refit the parameters (a fit); False labels with them as they are.
    progress : bool, default=True

    Returns
    -------
    q : ndarray of shape (n_pixels, K)
        The responsibilities with the prior, after the last step.
    history : list of float
        The mixture's mean log-likelihood per pixel (without the prior) after
        each M-step, to continue the fit's; empty without ``update``.
    converged : bool
        Whether fewer than a share ``CHANGED`` of the pixels changed label in
        the last step.
    """
    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    n_pixels = len(inverse)
    history, converged = [], False
    grid, where = tuple(shape), None
    if mask is not None:
        box = _box(mask)
        grid, where = mask[box].shape, np.flatnonzero(mask[box])
    halves = _colours(grid, where)
    # Each half's pixels' colours and flat cells, gathered once rather than each step.
    colour_of = [inverse[half] for half in halves]
    cells_of = [half if where is None else where[half] for half in halves]
    buffers = {}
    ncomp = gmm.ncomp
    # A component a row, (K, n): each row is contiguous, for the gathers, the
    # field and the counts (GMM.log_prob's result is stored so already). The
    # components' fields, counts and the columns' normalisation run on EM's
    # threads (utils.for_each): each number is the one a thread alone gives.
    with threadpool_limits(limits=1, user_api="blas"):  # thin products, as in GMM.fit
        log_prob = gmm.log_prob(colours_norm).T
        q = np.take(log_prob.astype(np.float32), inverse, axis=1)
        _normalise_blocks(q)
        labels = _argmax(q)
        per_colour = np.empty((ncomp, len(colours_norm)))

        def count(k):  # the pixels' responsibilities summed per colour, for the M-step
            per_colour[k] = np.bincount(inverse, weights=q[k], minlength=len(colours_norm))

        bar = tqdm(range(iteration + 1), desc=f"MRF k={ncomp}", unit="it",
                   disable=None if progress else True, leave=False)
        for step in bar:
            if update and step > 0:
                utils.for_each(count, range(ncomp), n_pixels)
                gmm.update(colours_norm, per_colour.T)
                log_prob = gmm.log_prob(colours_norm).T
                log_p_x = _normalise_blocks(log_prob.copy())
                history.append(float(log_p_x @ counts) / n_pixels)
            # The densities alone: the field stands in for the priors (as in
            # HMRF-EM); with both, the largest component took every pixel.
            # In float32 from here: half the memory to move, labels to spare.
            densities = (log_prob - np.log(gmm.priors)[:, None]).astype(np.float32)
            for half, colours, cells in zip(halves, colour_of, cells_of, strict=True):
                log_q = np.empty((ncomp, len(half)), np.float32)

                def field(k, log_q=log_q, colours=colours, cells=cells, densities=densities):
                    _field_into(log_q, k, q, grid, where, beta, cells, buffers)
                    log_q[k] += densities[k, colours]

                utils.for_each(field, range(ncomp), len(half))
                _normalise_blocks(log_q)
                q[:, half] = log_q
            labels, previous = _argmax(q), labels
            changed = np.count_nonzero(labels != previous) / n_pixels
            bar.set_postfix(changed=f"{changed:.2%}")
            if changed < CHANGED:
                converged = True
                break
        bar.close()
    return q.T, history, converged
