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
