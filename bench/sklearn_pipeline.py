"""The scikit-learn pipeline a user would otherwise write, as the benchmark runs it.

    python bench/sklearn_pipeline.py --image P --k 4 --out DIR

Every pixel, Z-scored per channel, goes through ``KMeans(k, n_init=1)``; the
covariances and priors of its clusters seed ``GaussianMixture(k)`` (all other
settings its defaults), which is fitted and then labels every pixel with
``predict``. The labels are written to ``DIR/<stem>_sklearn_labels.png``.

Prints one JSON line on stdout: ``log_likelihood`` (``gmm.score(X)``, the mean
log-likelihood per pixel in the Z-scored space), ``iterations`` (``n_iter_``)
and ``converged``.
"""

import argparse
import json
import os

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

REG_COVAR = 1e-6  # GaussianMixture's default reg_covar, added to the seed as well


def load_zscored(path):
    """Pixels of an RGB image, Z-scored per channel.

    Returns
    -------
    shape : tuple (h, w)
    X : ndarray of shape (h * w, 3)
    """
    with Image.open(path) as img:
        image = np.asarray(img.convert("RGB"))
    X = image.reshape(-1, 3).astype(np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return image.shape[:2], (X - X.mean(axis=0)) / std


def seed_from_labels(X, labels, k):
    """Priors, means and precisions of the hard clusters.

    Returns
    -------
    priors : ndarray of shape (k,)
    mus : ndarray of shape (k, 3)
    precisions : ndarray of shape (k, 3, 3)
    """
    priors = np.bincount(labels, minlength=k) / len(labels)
    mus = np.empty((k, X.shape[1]))
    covs = np.empty((k, X.shape[1], X.shape[1]))
    for j in range(k):
        members = X[labels == j]
        mus[j] = members.mean(axis=0)
        covs[j] = np.cov(members, rowvar=False, bias=True) + REG_COVAR * np.eye(X.shape[1])
    return priors, mus, np.linalg.inv(covs)


def run(image_path, k, out):
    """Segment one image; return the JSON record."""
    shape, X = load_zscored(image_path)
    labels = KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(X)
    priors, mus, precisions = seed_from_labels(X, labels, k)
    gmm = GaussianMixture(n_components=k, weights_init=priors, means_init=mus,
                          precisions_init=precisions)
    gmm.fit(X)
    labels = gmm.predict(X).astype(np.uint8).reshape(shape)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    Image.fromarray(labels).save(os.path.join(out, f"{stem}_sklearn_labels.png"))
    return {"log_likelihood": gmm.score(X), "iterations": int(gmm.n_iter_),
            "converged": bool(gmm.converged_)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    print(json.dumps(run(args.image, args.k, args.out)))


if __name__ == "__main__":
    main()
