"""The image fit's speed-ups leave it the plain computation.

k-means on one thread: within 1e-4 nats per pixel of scikit-learn's k-means
on its default threads, as the fit ran before. EM's loops on two threads: bit
for bit the one thread's. The imports begun ahead: joined before the fit.
"""

import contextlib

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

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


def _separated_points(rows_each=12_000):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, s, size=(rows_each, 3))
                        for m, s in ((-3, 1.0), (0, 0.5), (4, 2.0))])
    return np.asfortranarray(x), rng.integers(1, 5, len(x)).astype(float)


def test_em_on_threads_is_bit_for_bit_the_one_thread_em():
    """Above utils.PARALLEL_ROWS rows the loops over components and rows run on two
    threads: every number is the one thread's, and the E-step is scikit-learn's."""
    x, weights = _separated_points()
    assert len(x) >= utils.PARALLEL_ROWS
    fits = []
    for n in (1, 2):
        with utils.em_threads(n):
            mus, priors, covs = sg.kmeans(3, x, weights)
            gmm = sg.GMM(3, mus, covs, priors)
            gamma = gmm.fit(x, 20, weights=weights, progress=False)
            fits.append((gmm, gamma, gmm.inference(x, weights)[1]))
    (one, gamma_one, ll_one), (two, gamma_two, ll_two) = fits
    assert one.log_likelihood_history == two.log_likelihood_history and ll_one == ll_two
    for a, b in ((one.mus, two.mus), (one.covs, two.covs), (one.priors, two.priors),
                 (gamma_one, gamma_two)):
        assert np.array_equal(a, b)
    reference = GaussianMixture(3, covariance_type="full")
    reference.weights_, reference.means_, reference.covariances_ = two.priors, two.mus, two.covs
    reference.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(two.covs))
    np.testing.assert_allclose(gamma_two, reference.predict_proba(x), rtol=1e-9, atol=1e-12)
    assert ll_two == pytest.approx(weights @ reference.score_samples(x), rel=1e-11)


def test_em_threads_are_used_only_where_asked(monkeypatch):
    used = []
    pool = utils._thread_pool

    def counted(n):
        used.append(n)
        return pool(n)

    x, weights = _separated_points()
    mus, priors, covs = sg.kmeans(3, x, weights)
    gmm = sg.GMM(3, mus, covs, priors)
    monkeypatch.setattr(utils, "_thread_pool", counted)
    with utils.em_threads(1):
        gmm.inference(x, weights)
    assert used == []
    with utils.em_threads(2):
        gmm.inference(x[:utils.PARALLEL_ROWS - 1], weights[:utils.PARALLEL_ROWS - 1])
        assert used == []
        gmm.inference(x, weights)
    assert used and set(used) == {min(2, utils.EM_THREADS)}
    blocks = utils.row_blocks(len(x))
    assert np.array_equal(np.concatenate([np.arange(len(x))[b] for b in blocks]),
                          np.arange(len(x)))


def test_a_batch_task_runs_em_on_its_share_of_the_cores():
    from gmmseg import batch

    seen = []
    batch.task_rows("x.png", 1, str, lambda: seen.append(utils._em_threads[0]) or [])
    batch.task_rows("x.png", None, str, lambda: seen.append(utils._em_threads[0]) or [])
    assert seen == [1, utils.EM_THREADS]
    assert utils._em_threads[0] == utils.EM_THREADS  # restored


def test_the_fit_waits_for_the_imports_begun_ahead(monkeypatch, tmp_path):
    """preload.start imports on a thread; fit_segment joins it before its first
    threadpool_limits (the call that can deadlock with a concurrent import)."""
    import sys
    import time

    from gmmseg import model, preload
    from gmmseg.options import Options

    (tmp_path / "slow_module_for_test.py").write_text(
        "import time\ntime.sleep(0.5)\nDONE = time.perf_counter()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_module_for_test", raising=False)
    first_limits = []
    limits = sg.threadpool_limits

    def recorded(*args, **kwargs):
        first_limits.append(time.perf_counter())
        return limits(*args, **kwargs)

    monkeypatch.setattr(sg, "threadpool_limits", recorded)
    preload.start(("slow_module_for_test",))
    model.fit_segment(utils.load_image("images/chelsea.png"), 2, Options(), progress=False)
    assert first_limits[0] >= sys.modules["slow_module_for_test"].DONE


def test_a_failed_import_ahead_stops_quietly(monkeypatch):
    import sys

    from gmmseg import preload

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    preload.start(("no_such_module_anywhere", "colorsys"))
    preload.wait()
    assert "colorsys" not in sys.modules  # the thread stopped at the first failure
    preload.start(("os",))  # imported already: no thread
    assert preload._threads == []
