"""The image fit's speed-up leaves it within 1e-4 nats per pixel of the plain computation.

The reference runs the same fit with scikit-learn's k-means on its default
threads, as the fit ran before.
"""

import contextlib

import numpy as np
import pytest

import segmentation_GMM as sg
import utils


@pytest.mark.parametrize("image", ["chelsea.png", "coffee.png"])
def test_fit_is_the_plain_fit(monkeypatch, image):
    pixels = utils.load_image(f"images/{image}")
    fast = sg.segment(pixels, 4, progress=False)
    limits = sg.threadpool_limits

    def blas_limits_only(*args, user_api=None, **kwargs):
        if user_api == "openmp":  # k-means on as many threads as it likes
            return contextlib.nullcontext()
        return limits(*args, user_api=user_api, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(sg, "threadpool_limits", blas_limits_only)
        plain = sg.segment(pixels, 4, progress=False)
    assert abs(fast["gmm"].log_likelihood_history[-1]
               - plain["gmm"].log_likelihood_history[-1]) < 1e-4
    assert np.mean(fast["labels"] == plain["labels"]) > 0.999


def test_colours_stored_channel_by_channel_fit_as_rows_do():
    """The fitted colours are stored in Fortran order for speed; a row-major copy
    of the same points reaches the same fit."""
    pixels = utils.load_image("images/coffee.png")
    colours, counts, _ = sg.distinct_colours(pixels)
    colours_norm, _, _ = sg.zscore_colours(colours, counts)
    assert colours_norm.flags.f_contiguous
    fits = []
    for points in (colours_norm, np.ascontiguousarray(colours_norm)):
        mus, priors, covs = sg.kmeans(4, points, counts)
        gmm = sg.GMM(4, mus, covs, priors)
        gmm.fit(points, 100, weights=counts, progress=False)
        fits.append(gmm)
    np.testing.assert_allclose(fits[0].log_likelihood_history, fits[1].log_likelihood_history,
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(fits[0].covs, fits[1].covs, rtol=0, atol=1e-9)
