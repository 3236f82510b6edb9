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
once per distinct colour and step. Where most pixels have a colour of their
own (noisy floats), both run on the pixels instead: the same sums, without
the per-colour gathers. The mixture's fit without the prior comes first
(``fit_colours``, to the end of its warm-up): the field starts from its
responsibilities.
"""

import threading
from typing import NamedTuple

import numpy as np

import utils

__all__ = ["CHANGED", "Checkerboard", "Layout", "fit", "layout", "mean_field", "refit"]

# The prior's steps stop when fewer pixels than this share change their label
# in a step. Its objective moves on long after the labels stop: at beta 1 on
# the brain of bench/bench_tissue.py (5 % noise), 27 steps to a change of
# 1e-4 nats a pixel, for Dice within 0.006 of those after 9 steps.
CHANGED = 1e-3


class Checkerboard:
    """A grid's cells by colour of its checkerboard, each colour's field computed from the other's.

    A cell's 4 (2-D) or 6 (3-D) face neighbours are all of the other colour
    (the parity of the sum of its coordinates), so each half is updated from
    the other's latest responsibilities (red-black Gauss-Seidel). Updating
    every pixel at once from the last step's oscillated at beta 2: 90 steps
    without converging on the brain of bench/bench_tissue.py.

    The cells are stored by sublattice: cell x at position x // 2 of
    sublattice x % 2 (2**d of them), so a colour's neighbour sums are sums of
    slices of the other colour's sublattices, each 1 / 2**d of the grid and
    small enough to stay in the caches. On the brain's bounding box (4.07
    million cells) a component's half-step took 6.7 ms so, scattering and
    gathering included, against 16 ms for shifted adds over the whole box
    (which computes both colours' sums, out of the caches).

    Parameters
    ----------
    grid : tuple of int
        The grid's shape, (h, w) or (z, y, x).
    """

    def __init__(self, grid):
        self.grid = tuple(int(n) for n in grid)
        d = len(self.grid)
        self.sublattices = [tuple((p >> axis) & 1 for axis in range(d)) for p in range(2 ** d)]
        self.shapes = {p: tuple((n - bit + 1) // 2 for n, bit in zip(self.grid, p, strict=True))
                       for p in self.sublattices}
        self.offsets, self.size = {}, 0
        for p in self.sublattices:
            self.offsets[p] = self.size
            self.size += int(np.prod(self.shapes[p]))

    def locate(self, cells):
        """The colour (0 or 1) of each of ``cells`` (flat indices of the grid) and its position.

        Returns
        -------
        colour : ndarray of shape (n,)
        positions : ndarray of shape (n,)
            Where each cell is stored, in an array of ``size``.
        """
        coords = np.unravel_index(cells, self.grid)
        sublattice, colour = np.zeros(len(cells), np.intp), np.zeros(len(cells), np.intp)
        for axis, c in enumerate(coords):
            sublattice |= (c & 1) << axis
            colour ^= c & 1
        strides = np.array([[int(np.prod(self.shapes[p][axis + 1:])) for axis in range(len(p))]
                            for p in self.sublattices], np.intp)
        positions = np.array([self.offsets[p] for p in self.sublattices], np.intp)[sublattice]
        for axis, c in enumerate(coords):
            positions += (c >> 1) * strides[sublattice, axis]
        return colour, positions

    def view(self, stored, p):
        """Sublattice ``p`` of a stored array (``size``,) as an array of its shape."""
        start = self.offsets[p]
        return stored[start:start + int(np.prod(self.shapes[p]))].reshape(self.shapes[p])

    def neighbour_sums(self, values, sums, colour):
        """Each ``colour`` cell's sum of its face neighbours' ``values`` (zero beyond the edges).

        ``values`` and ``sums`` are stored arrays (``size``,); only the other
        colour's cells of ``values`` are read, and only ``colour``'s cells of
        ``sums`` are written.
        """
        d = len(self.grid)
        for p in self.sublattices:
            if sum(p) % 2 != colour:
                continue
            out = self.view(sums, p)
            for axis in range(d):
                other = self.view(values, p[:axis] + (1 - p[axis],) + p[axis + 1:])
                n, n_other = out.shape[axis], other.shape[axis]

                def part(a, b, axis=axis):
                    return (slice(None),) * axis + (slice(a, b),)

                # For m = x // 2 along the axis, the neighbours x - 1 and x + 1
                # are at positions m - 1 and m of the other sublattice if x is
                # even, m and m + 1 if it is odd.
                if p[axis] == 0:
                    same, (shift, start) = min(n, n_other), (-1, 1)
                else:
                    same, (shift, start) = n, (1, 0)
                if axis == 0:
                    out[part(0, same)] = other[part(0, same)]
                    out[part(same, n)] = 0
                else:
                    out[part(0, same)] += other[part(0, same)]
                stop = min(n, n_other - shift)
                if stop > start:
                    out[part(start, stop)] += other[part(start + shift, stop + shift)]
        return sums


def _box(mask):
    """The slices of the mask's bounding box: the field is computed there alone."""
    box = []
    for axis in range(mask.ndim):
        inside = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(inside[0]), int(inside[-1]) + 1))
    return tuple(box)


def _by_pixel(n_colours, n_pixels):
    """Whether the prior's steps run on the pixels rather than on their distinct colours."""
    return 2 * n_colours > n_pixels


def _chunks(n, size=1 << 16):
    """``range(n)`` as slices of ``size``: a block's temporaries then stay in the caches."""
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


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


def _normalise_blocks(log_q, labels=None):
    """``_normalise`` of ``log_q`` (K, n) in place, by blocks on EM's threads.

    ``labels`` (n,), if given, receives ``_argmax`` of the responsibilities.
    """
    def block(columns):
        q = _normalise(log_q[:, columns])[0]
        if labels is not None:
            labels[columns] = _argmax(q)

    utils.for_each(block, _chunks(log_q.shape[1]), log_q.shape[1])


def _densities_and_log_z(log_prob, priors):
    """The densities alone (``log_prob`` less ln priors) in float32, (K, n), and ln p(x) (n,).

    By blocks on EM's threads; ``log_prob`` is left as it is.
    """
    densities = np.empty(log_prob.shape, np.float32)
    log_z = np.empty(log_prob.shape[1])
    log_priors = np.log(priors)[:, None]

    def block(columns):
        part = log_prob[:, columns]
        np.subtract(part, log_priors, out=densities[:, columns], casting="same_kind")
        log_z[columns] = _normalise(part.copy())[1]

    utils.for_each(block, _chunks(log_prob.shape[1]), log_prob.shape[1])
    return densities, log_z


def fit(colours_norm, counts, inverse, shape, ncomp, options, mask=None, progress=True):
    """The mixture with the prior: the lab's fit without it, then ``refit`` with it.

    The fit without the prior takes at most half of ``options.max_iter`` and
    ends at its warm-up (``fit_colours(exact=False)`` gives the exact colours
    an E-step alone, since the prior's M-steps follow on them). Meanwhile the
    pixels' checkerboard (``layout``), which depends on the grid alone, is
    laid out on a thread: 0.23 to 0.27 s on the brain of bench/bench_tissue.py.

    Returns
    -------
    gmm : segmentation_GMM.GMM
    warm_up_history : list of float
        As ``fit_colours`` returns it.
    q : ndarray of shape (n_pixels, K)
        The pixels' responsibilities with the prior (``mean_field``).
    """
    from concurrent.futures import ThreadPoolExecutor

    import segmentation_GMM as sg

    with ThreadPoolExecutor(1) as pool:
        laid_out = pool.submit(layout, shape, mask)
        gmm, _, warm_up = sg.fit_colours(colours_norm, counts, ncomp, -(-options.max_iter // 2),
                                         options.tol, options.random_state, progress, False)
        grid = laid_out.result()
    return gmm, warm_up, refit(gmm, warm_up, colours_norm, counts, inverse, options,
                               grid, progress)


def refit(gmm, warm_up_history, colours_norm, counts, inverse, options, grid, progress=True):
    """Continue a fit without the prior (``fit_colours``) with it, within ``max_iter``.

    The fit's steps are spent (its warm-up's and exact ones); the prior's
    M-steps take the rest of ``options.max_iter``, and their log-likelihoods
    continue ``gmm.log_likelihood_history``. ``grid`` is the pixels'
    ``layout``. Returns the pixels' responsibilities, (n_pixels, K)
    (``mean_field``).
    """
    used = max(len(warm_up_history) - 1, 0) + len(gmm.log_likelihood_history) - 1
    q, history, gmm.converged = mean_field(gmm, colours_norm, counts, inverse, grid,
                                           options.mrf, options.max_iter - used,
                                           progress=progress)
    gmm.log_likelihood_history = gmm.log_likelihood_history + history
    return q


class Layout(NamedTuple):
    """The pixels on the checkerboard of their bounding box, by colour (``layout``).

    Ordered so, a half's responsibilities are a slice of q, updated in place
    (its own are not read meanwhile), and its neighbours' sums a gather.

    Attributes
    ----------
    board : Checkerboard
    order : ndarray of shape (n_pixels,)
        The pixels (indices in C order) of the first colour, then the second's.
    positions : ndarray of shape (n_pixels,)
        Where each pixel of ``order`` is stored on the board.
    halves : tuple of two slices
        Each colour's part of ``order``.
    """

    board: Checkerboard
    order: np.ndarray
    positions: np.ndarray
    halves: tuple


def layout(shape, mask=None):
    """The ``Layout`` of the pixels of an image of ``shape``, (h, w) or (z, y, x), in ``mask``."""
    cells = np.arange(int(np.prod(shape)))
    if mask is not None:
        box = _box(mask)
        shape, cells = mask[box].shape, np.flatnonzero(mask[box])
    board = Checkerboard(shape)
    colour, positions = board.locate(cells)
    order = np.concatenate([np.flatnonzero(colour == 0), np.flatnonzero(colour)])
    n_first = len(cells) - int(np.count_nonzero(colour))
    return Layout(board, order, positions[order],
                  (slice(0, n_first), slice(n_first, len(cells))))


def mean_field(gmm, colours_norm, counts, inverse, grid, beta, iteration, *, update=True,
               progress=True):
    """EM (or, without ``update``, its E-step alone) with the Potts prior, mean-field.

    Parameters
    ----------
    gmm : segmentation_GMM.GMM
        Fitted without the prior; with ``update``, refitted in place.
    colours_norm : ndarray of shape (n_colours, c)
        The Z-scored distinct colours; ``counts`` (n_colours,) their pixels.
    counts : ndarray of shape (n_colours,)
    inverse : ndarray of shape (n_pixels,)
        Each pixel's colour, the pixels in C order (those inside the mask).
    grid : Layout
        The pixels' ``layout``.
    beta : float
        The prior's weight (``Options.mrf``), above 0.
    iteration : int
        At most this many M-steps. Each step is an M-step on the last
        responsibilities (but the first: the parameters are the fit's), then
        an E-step with the field of the last responsibilities; so ``q`` is
        always that of the parameters returned.
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
    board, order, positions, halves = grid
    inverse = inverse[order]
    # Where most pixels have a colour of their own (noisy floats), the steps
    # run on the pixels: at 5 % noise on the brain of bench/bench_tissue.py
    # (1.69 million colours of 1.88 million pixels) the per-colour sums and
    # the densities' gathers took 55 ms a step, the pixels' densities 5 ms more.
    by_pixel = _by_pixel(len(colours_norm), n_pixels)
    data = colours_norm[inverse] if by_pixel else colours_norm
    buffers = {}
    ncomp = gmm.ncomp

    def stored(values, cells, half):
        """A thread's board holding ``values`` at ``cells`` and its sums at ``half``'s pixels."""
        pair = buffers.get(threading.get_ident())
        if pair is None:  # a thread's stored values, zero at the cells beyond the mask
            pair = buffers[threading.get_ident()] = (np.zeros(board.size, np.float32),
                                                     np.empty(board.size, np.float32))
        pair[0][positions[cells]] = values
        return board.neighbour_sums(pair[0], pair[1], half)

    def neighbours(k, half):
        """Half ``half``'s (0 or 1) sums of component k's neighbour responsibilities, into q."""
        sums = stored(q[k, halves[1 - half]], halves[1 - half], half)
        np.take(sums, positions[halves[half]], out=q[k, halves[half]])

    def field(k, half, densities):
        """Half ``half``'s ln q of component k, before normalising, from its sums in q."""
        out = q[k, halves[half]]
        out *= beta
        out += densities[k, halves[half]] if by_pixel else np.take(densities[k],
                                                                   inverse[halves[half]])

    # Each pixel's neighbours inside the mask, by half: the last component's
    # sums are these less the others' (the responsibilities sum to 1), which
    # spares its own on the board. On the brain at 9 % noise (3 components,
    # the two others then share the two threads evenly), 11 steps of E-steps
    # alone took 0.84 s against 0.94 s (medians of 4), with the same labels.
    neighbours_inside = [np.take(stored(np.ones(n_pixels, np.float32), slice(None), half),
                                 positions[halves[half]]) for half in (0, 1)]

    # A component a row, (K, n): each row is contiguous, for the gathers, the
    # field and the counts (GMM.log_prob's result is stored so already). The
    # components' fields, counts and the columns' normalisation run on EM's
    # threads (utils.for_each): each number is the one a thread alone gives.
    with threadpool_limits(limits=1, user_api="blas"):  # thin products, as in GMM.fit
        log_prob = gmm.log_prob(data).T
        q = log_prob.astype(np.float32) if by_pixel else np.take(
            log_prob.astype(np.float32), inverse, axis=1)
        labels = np.empty(n_pixels, np.uint8)  # K <= 256 (MAX_COMPONENTS)
        _normalise_blocks(q, labels)
        per_colour = np.empty((ncomp, len(data)))

        def count(k):  # the pixels' responsibilities summed per colour, for the M-step
            per_colour[k] = q[k] if by_pixel else np.bincount(inverse, weights=q[k],
                                                             minlength=len(colours_norm))

        bar = tqdm(range(iteration + 1), desc=f"MRF k={ncomp}", unit="it",
                   disable=None if progress else True, leave=False)
        for step in bar:
            if update and step > 0:
                utils.for_each(count, range(ncomp), n_pixels)
                gmm.update(data, per_colour.T)
                log_prob = gmm.log_prob(data).T
            # The densities alone: the field stands in for the priors (as in
            # HMRF-EM); with both, the largest component took every pixel.
            # In float32 from here: half the memory to move, labels to spare.
            densities, log_p_x = _densities_and_log_z(log_prob, gmm.priors)
            if update and step > 0:
                history.append(float(np.sum(log_p_x) if by_pixel else log_p_x @ counts)
                               / n_pixels)
            previous = labels.copy()
            for half in (0, 1):
                utils.for_each(lambda k, h=half: neighbours(k, h), range(ncomp - 1),
                               n_pixels // 2)
                own = halves[half]
                np.subtract(neighbours_inside[half], q[:-1, own].sum(axis=0), out=q[-1, own])
                utils.for_each(lambda k, h=half, d=densities: field(k, h, d), range(ncomp),
                               n_pixels // 2)
                _normalise_blocks(q[:, own], labels[own])
            changed = np.count_nonzero(labels != previous) / n_pixels
            bar.set_postfix(changed=f"{changed:.2%}")
            if changed < CHANGED:
                converged = True
                break
        bar.close()
    del log_prob, densities, data, neighbours_inside  # before q's copy in the pixels' order
    buffers.clear()
    in_order = np.empty_like(q)
    in_order[:, order] = q
    return in_order.T, history, converged
