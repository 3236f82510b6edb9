"""Brain tissue classes in MRI: this project's mixture, with and without its spatial prior,
beside scikit-learn's GaussianMixture and ANTs Atropos, in one run (issue 20).

    pip install -r requirements-bench.txt     # nilearn (the data) and antspyx (Atropos)
    python bench/bench_tissue.py               # clean, then Rician noise of 3, 5 and 9 %
    python bench/bench_tissue.py --noise 5 --betas 1

The data ship inside nilearn (no download): the MNI152 2009 T1 template at
1 mm, its brain mask (1.88 million voxels) and its grey- and white-matter
probability maps. The truth is the maps' argmax within the mask, CSF being
1 - GM - WM. Rician noise of p % adds Gaussian noise of sigma p % of the
largest intensity to the real and imaginary parts: sqrt((x + n1)^2 + n2^2)
(seeded). Every method segments 3 classes within the mask; its classes are
named CSF, GM, WM by the order of their mean intensity (T1: CSF darkest).
Printed: the Dice of each tissue and the seconds of the segmentation alone
(data in memory, imports and reading excluded), one row a method and noise.

Methods: ``gmmseg.segment`` (the lab's mixture: k-means seed, EM), with
``mrf`` = each of ``--betas`` (the Potts prior inside EM, ``gmmseg.mrf``),
at each of ``--tols`` (its default 1e-4 and scikit-learn's 1e-3);
scikit-learn's ``GaussianMixture`` (k-means initialisation) twice: with its
defaults, as users run it and as issue 20 measured it (tol 1e-3 per sample:
it stops after about 12 steps, where the clean template's GM and WM score
higher than at the maximum), and with tol 1e-4 per sample as ours;
``ants.atropos`` (k-means initialisation, MRF 0.2 over the 26-neighbourhood
``1x1x1``, 5 iterations, as the issue measured it). dipy's
``TissueClassifierHMRF`` is not run: in dipy 1.12.1 it returned -1 on every
voxel of this volume (issue 20).
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TISSUES = ("CSF", "GM", "WM")


def load_data():
    """The template (float), the brain mask (bool) and the truth (0 CSF, 1 GM, 2 WM)."""
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=1)
    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=1).dataobj) > 0
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).dataobj, float)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).dataobj, float)
    truth = np.argmax(np.stack([1 - gm - wm, gm, wm]), axis=0)
    return np.asarray(template.dataobj, float), mask, truth, template.affine


def rician(volume, percent, seed=0):
    """Rician noise of sigma ``percent`` % of the largest intensity."""
    if percent == 0:
        return volume
    sigma = percent / 100 * volume.max()
    rng = np.random.default_rng(seed)
    return np.hypot(volume + rng.normal(0, sigma, volume.shape),
                    rng.normal(0, sigma, volume.shape))


def dice(truth, labels, mask):
    """Dice of each tissue within the mask."""
    t, s = truth[mask], labels[mask]
    return [2 * np.sum((t == k) & (s == k)) / max(np.sum(t == k) + np.sum(s == k), 1)
            for k in range(3)]


def by_intensity(labels, volume, mask, n=3):
    """Labels renumbered by their mean intensity: 0 the darkest."""
    means = [volume[mask & (labels == k)].mean() if np.any(mask & (labels == k)) else np.inf
             for k in range(n)]
    order = np.empty(n, int)
    order[np.argsort(means)] = np.arange(n)
    out = np.full(labels.shape, -1)
    out[mask] = order[labels[mask]]
    return out


def ours(volume, mask, beta, tol=None):
    import gmmseg
    import segmentation_GMM

    tol = segmentation_GMM.TOL if tol is None else tol
    return gmmseg.segment(volume.astype(np.float32), 3, mask=mask, mrf=beta, tol=tol,
                          channel_axis=None, progress=False).labels


def sklearn_gmm(volume, mask, tol=None):
    """scikit-learn's mixture, at its own defaults but the seed, or at ``tol`` per sample."""
    from sklearn.mixture import GaussianMixture

    labels = np.zeros(volume.shape, int)
    model = GaussianMixture(3, random_state=0, **({} if tol is None else {"tol": tol}))
    labels[mask] = model.fit_predict(volume[mask].reshape(-1, 1))
    return labels


def atropos(volume, mask, affine):
    import ants

    image = ants.from_numpy(volume.astype(np.float32))
    brain = ants.from_numpy(mask.astype(np.float32))
    result = ants.atropos(a=image, x=brain, i="kmeans[3]", m="[0.2,1x1x1]", c="[5,0]")
    labels = result["segmentation"].numpy().astype(int) - 1  # 1..3 inside, 0 outside
    return np.where(mask, np.maximum(labels, 0), 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--noise", type=float, nargs="+", default=[0, 3, 5, 9],
                        help="Rician noise levels, % of the largest intensity")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                        help="weights of this project's Potts prior (mrf) to run")
    parser.add_argument("--tols", type=float, nargs="+", default=[None, 1e-3],
                        help="this project's tol (per pixel) to run each beta at "
                             "(default: its own, then scikit-learn's default 1e-3)")
    parser.add_argument("--no-atropos", action="store_true")
    args = parser.parse_args()
    clean, mask, truth, affine = load_data()
    print(f"MNI152 2009 T1, 1 mm, {int(mask.sum()):,} voxels in the brain mask; Dice "
          f"against the GM/WM maps' argmax\n")
    print("| noise | method | CSF | GM | WM | seconds |\n|---:|---|---:|---:|---:|---:|")
    import segmentation_GMM

    methods = [(f"gmmseg{f', mrf {beta:g}' if beta else ''}, "
                f"tol {segmentation_GMM.TOL if tol is None else tol:g}",
                lambda v, b=beta, t=tol: ours(v, mask, b, t))
               for tol in args.tols for beta in [0.0, *args.betas]]
    methods.append(("scikit-learn GaussianMixture (defaults)", lambda v: sklearn_gmm(v, mask)))
    methods.append(("scikit-learn GaussianMixture, tol 1e-4",
                    lambda v: sklearn_gmm(v, mask, 1e-4)))
    if not args.no_atropos:
        methods.append(("ANTs Atropos (MRF 0.2, 5 iterations)",
                        lambda v: atropos(v, mask, affine)))
    for percent in args.noise:
        volume = rician(clean, percent)
        for name, method in methods:
            start = time.perf_counter()
            labels = method(volume)
            seconds = time.perf_counter() - start
            scores = dice(truth, by_intensity(labels, volume, mask), mask)
            print(f"| {percent:g} % | {name} | " + " | ".join(f"{s:.3f}" for s in scores)
                  + f" | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
