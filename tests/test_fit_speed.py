"""The image fit's speed-ups leave it within 1e-4 nats per pixel of the plain computation.

The reference runs the same fit with SciPy's ``logsumexp`` in every E-step and
scikit-learn's k-means on its default threads, as the fit ran before.
"""

import contextlib

import numpy as np
import pytest
from scipy.special import logsumexp

import segmentation_GMM as sg
import utils


def test_log_sum_exp_is_scipys():
    rng = np.random.default_rng(5)
    log_prob = rng.normal(-20, 30, size=(1000, 4))
    log_prob[0] = -np.inf  # every component impossible
    log_prob[1, :2] = -np.inf
    log_prob[2] = [800.0, 799.0, -800.0, 0.0]  # exp would overflow
    expected = logsumexp(log_prob, axis=1)
    np.testing.assert_allclose(utils.log_sum_exp(log_prob), expected, rtol=1e-14, atol=0)
    assert utils.log_sum_exp(log_prob)[0] == -np.inf


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
        patch.setattr(utils, "log_sum_exp", lambda a: logsumexp(a, axis=1))
        patch.setattr(sg, "threadpool_limits", blas_limits_only)
        plain = sg.segment(pixels, 4, progress=False)
    assert abs(fast["gmm"].log_likelihood_history[-1]
               - plain["gmm"].log_likelihood_history[-1]) < 1e-4
    assert np.mean(fast["labels"] == plain["labels"]) > 0.999
