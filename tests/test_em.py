"""The EM steps checked against scikit-learn's GaussianMixture and the closed forms."""

import itertools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from segmentation_GMM import GMM, REG_COVAR, kmeans


def random_params(rng, ncomp, c):
    mus = rng.normal(size=(ncomp, c)) * 2
    a = rng.normal(size=(ncomp, c, c))
    covs = a @ a.transpose(0, 2, 1) + 0.3 * np.eye(c)
    priors = rng.dirichlet(np.ones(ncomp))
    return mus, covs, priors


def one_em_step(x, mus, covs, priors):
    """scikit-learn's GaussianMixture after exactly one EM iteration on ``x`` from these parameters.

    What ``fit`` runs here (``BaseMixture.fit_predict``, scikit-learn 1.9.1 read):
    all three ``*_init`` are given, so no k-means and no random start run
    (``init_params`` is unused; the cheap ``"random_from_data"`` is set in case a
    version runs it anyway, the inits would still override it) and the model starts
    exactly at ``priors``, ``mus`` and the precisions ``inv(covs)``. Then one E-step
    under these parameters (its mean log-likelihood per point becomes ``lower_bound_``),
    one M-step on its responsibilities (``reg_covar`` added to each diagonal; the result
    is ``weights_``, ``means_``, ``covariances_``), and a last E-step under the new
    parameters whose labels ``fit`` throws away. With ``max_iter=1`` the fit never counts
    as converged (its first change is from -inf), hence the ConvergenceWarning silenced
    here.
    """
    reference = GaussianMixture(len(priors), covariance_type="full", max_iter=1, tol=0,
                                reg_covar=REG_COVAR, weights_init=priors, means_init=mus,
                                precisions_init=np.linalg.inv(covs),
                                init_params="random_from_data", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return reference.fit(x)


@pytest.mark.parametrize("c", [1, 3])
def test_inference_matches_sklearn(c):
    rng = np.random.default_rng(0)
    mus, covs, priors = random_params(rng, 4, c)
    x = rng.normal(size=(500, c)) * 3
    reference = one_em_step(x, mus, covs, priors)
    # The E-step fit ran under the parameters it was given:
    _, log_likelihood = GMM(4, mus, covs, priors).inference(x)
    assert log_likelihood == pytest.approx(reference.lower_bound_ * len(x), rel=1e-11)
    # predict_proba and score_samples under the parameters fit reached, on x and on
    # points further out (in the tails of every component).
    gmm = GMM(4, reference.means_, reference.covariances_, reference.weights_)
    for points in (x, 3 * x):
        gamma, log_likelihood = gmm.inference(points)
        np.testing.assert_allclose(gamma, reference.predict_proba(points),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(log_likelihood, reference.score_samples(points).sum(),
                                   rtol=1e-11)


def test_inference_weights_count_rows():
    rng = np.random.default_rng(1)
    mus, covs, priors = random_params(rng, 3, 3)
    x = rng.normal(size=(50, 3))
    counts = rng.integers(1, 5, size=50)
    gmm = GMM(3, mus, covs, priors)
    _, weighted = gmm.inference(x, counts)
    _, repeated = gmm.inference(np.repeat(x, counts, axis=0))
    assert weighted == pytest.approx(repeated, rel=1e-12)


def test_inference_finite_where_densities_underflow():
    # Far from every component each density is exp(-huge) = 0.0 in float64:
    # the probability-space E-step divides 0 by 0 there.
    mus = np.array([[0.0, 0, 0], [1.0, 1, 1]])
    covs = np.stack([np.eye(3) * 1e-3] * 2)
    x = np.array([[40.0, -40, 40], [0.5, 0.5, 0.5]])
    gmm = GMM(2, mus, covs, [0.5, 0.5])
    with np.errstate(all="ignore"):
        from scipy.stats import multivariate_normal
        dens = np.stack([multivariate_normal.pdf(x, m, s)
                         for m, s in zip(mus, covs, strict=True)], 1)
        assert dens[0].sum() == 0.0  # the template's version would give NaN here
    gamma, log_likelihood = gmm.inference(x)
    assert np.all(np.isfinite(gamma)) and np.isfinite(log_likelihood)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0)
    assert gamma[0, 1] == pytest.approx(1.0)  # (1, 1, 1) is the nearer mean in Mahalanobis terms


def test_update_matches_closed_form_and_sklearn():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3))
    gamma = rng.dirichlet(np.ones(4), size=300)
    counts = rng.integers(1, 6, size=300).astype(float)
    start = random_params(rng, 4, 3)
    gmm = GMM(4, *start)
    gmm.update(x, gamma, counts)
    # The closed form written out one pixel at a time, with outer products.
    for k in range(4):
        r = gamma[:, k] * counts
        soft_count = r.sum()
        mu = sum(r[n] * x[n] for n in range(300)) / soft_count
        cov = sum(r[n] * np.outer(x[n] - mu, x[n] - mu) for n in range(300)) / soft_count
        np.testing.assert_allclose(gmm.mus[k], mu, rtol=1e-10)
        np.testing.assert_allclose(gmm.covs[k], cov + REG_COVAR * np.eye(3), rtol=1e-10)
        assert gmm.priors[k] == pytest.approx(soft_count / counts.sum(), rel=1e-10)
    # Unweighted, it is exactly scikit-learn's M-step. Its public fit runs the M-step
    # only on the responsibilities of its own E-step: one EM iteration from the
    # parameters of `before` (`after`) applies it to the responsibilities under them,
    # which before.predict_proba gives (to rounding: `after` gets the precisions as
    # inv(covariances_), `before` keeps them as Cholesky factors of covariances_).
    before = one_em_step(x, *start)
    responsibilities = before.predict_proba(x)
    after = one_em_step(x, before.means_, before.covariances_, before.weights_)
    gmm.update(x, responsibilities)
    np.testing.assert_allclose(gmm.mus, after.means_, rtol=1e-10)
    np.testing.assert_allclose(gmm.covs, after.covariances_, rtol=1e-10)
    np.testing.assert_allclose(gmm.priors, after.weights_, rtol=1e-10)


def test_log_likelihood_never_decreases():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(400, 3)), rng.normal(size=(300, 3)) * 0.3 + 2])
    mus, priors, covs = kmeans(5, x, seed=0)
    gmm = GMM(5, mus, covs, priors)
    gmm.fit(x, 60, tol=1e-12, progress=False)
    steps = np.diff(gmm.log_likelihood_history)
    assert len(steps) >= 10
    assert steps.min() > -1e-9


def test_fit_stops_on_per_pixel_tolerance():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 2))
    mus, priors, covs = kmeans(3, x, seed=0)
    gmm = GMM(3, mus, covs, priors)
    gmm.fit(x, 500, tol=1e-3, progress=False)
    history = gmm.log_likelihood_history
    assert gmm.converged and len(history) - 1 < 500
    assert abs(history[-1] - history[-2]) < 1e-3
    assert all(abs(b - a) >= 1e-3 for a, b in itertools.pairwise(history[:-1]))


def test_distinct_colour_fit_equals_all_pixel_fit():
    rng = np.random.default_rng(5)
    colours = rng.integers(0, 256, size=(60, 3)).astype(float)
    counts = rng.integers(1, 40, size=60)
    pixels = np.repeat(colours, counts, axis=0)
    rng.shuffle(pixels)
    mean, std = pixels.mean(0), pixels.std(0)
    mus, priors, covs = kmeans(4, (pixels - mean) / std, seed=1)
    on_pixels = GMM(4, mus, covs, priors)
    on_pixels.fit((pixels - mean) / std, 25, tol=1e-300, progress=False)
    on_colours = GMM(4, mus, covs, priors)
    on_colours.fit((colours - mean) / std, 25, weights=counts, tol=1e-300, progress=False)
    np.testing.assert_allclose(on_colours.mus, on_pixels.mus, rtol=0, atol=1e-8)
    np.testing.assert_allclose(on_colours.covs, on_pixels.covs, rtol=0, atol=1e-8)
    np.testing.assert_allclose(on_colours.priors, on_pixels.priors, rtol=0, atol=1e-8)
    np.testing.assert_allclose(on_colours.log_likelihood_history,
                               on_pixels.log_likelihood_history, rtol=1e-10)


def test_recovers_known_mixture():
    rng = np.random.default_rng(6)
    true_mus = np.array([[0.0, 0, 0], [6, 0, 2], [0, 6, -3]])
    a = rng.normal(size=(3, 3, 3)) * 0.5
    true_covs = a @ a.transpose(0, 2, 1) + 0.2 * np.eye(3)
    sizes = [3000, 2000, 1000]
    x = np.concatenate([rng.multivariate_normal(m, s, n)
                        for m, s, n in zip(true_mus, true_covs, sizes, strict=False)])
    truth = np.repeat(np.arange(3), sizes)
    mus, priors, covs = kmeans(3, x, seed=0)
    gmm = GMM(3, mus, covs, priors)
    gamma = gmm.fit(x, 200, progress=False)
    assert adjusted_rand_score(truth, gamma.argmax(1)) > 0.95
    order = [np.argmin(np.linalg.norm(gmm.mus - m, axis=1)) for m in true_mus]
    np.testing.assert_allclose(gmm.mus[order], true_mus, atol=0.1)
    np.testing.assert_allclose(gmm.priors[order], np.array(sizes) / 6000, atol=0.02)


def test_kmeans_seed_is_the_hard_assignment_estimate():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, 3))
    counts = rng.integers(1, 4, size=500)
    mus, priors, covs = kmeans(3, x, counts, seed=0)
    from sklearn.cluster import KMeans
    labels = KMeans(3, random_state=0).fit_predict(x, sample_weight=counts)
    for k in range(3):
        member = labels == k
        w = counts[member]
        np.testing.assert_allclose(mus[k], np.average(x[member], axis=0, weights=w))
        np.testing.assert_allclose(covs[k], np.cov(x[member].T, aweights=w, bias=True)
                                   + REG_COVAR * np.eye(3), atol=1e-12)
        assert priors[k] == pytest.approx(w.sum() / counts.sum())


def test_kmeans_one_channel_and_tiny_clusters():
    grey = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]])
    mus, priors, covs = kmeans(3, grey, seed=0)
    assert mus.shape == (3, 1) and covs.shape == (3, 1, 1)
    # A cluster of one 3-D point: its covariance is only the regulariser, still invertible.
    points = np.array([[0.0, 0, 0], [0.1, 0, 0], [5, 5, 5], [9, 0, 9]])
    mus, priors, covs = kmeans(3, points, seed=0)
    assert np.all(np.linalg.eigvalsh(covs) > 0)
    gamma, log_likelihood = GMM(3, mus, covs, priors).inference(points)
    assert np.isfinite(log_likelihood) and np.all(np.isfinite(gamma))


@pytest.mark.parametrize("iteration, warm, exact", [(10, 5, 5), (7, 3, 4), (1, 0, 1)])
def test_iteration_bounds_the_whole_fit_warm_up_included(iteration, warm, exact):
    import segmentation_GMM as sg

    rng = np.random.default_rng(0)  # many distinct colours: the warm-up runs
    image = np.concatenate([rng.normal(centre, 6, (30000, 3)) for centre in (40, 120, 210)])
    colours, counts, _ = sg.distinct_colours(np.clip(image, 0, 255).astype(np.uint8)[:, None])
    colours_norm, _, _ = sg.zscore_colours(colours, counts)
    # tol=0: neither EM stops before its bound, so each uses all the steps it may
    gmm, _, warm_up_history = sg.fit_colours(colours_norm, counts, 6, iteration, tol=0,
                                             progress=False)
    assert max(len(warm_up_history) - 1, 0) == warm
    assert len(gmm.log_likelihood_history) - 1 == exact
