"""One mixture for 50 photos of 3 MP: the pooled fit against scikit-learn, in one run (issue 18).

    python bench/bench_pooled.py                     # 50 photos, k = 4, sklearn on 1 M pixels
    python bench/bench_pooled.py --sample 1000000 4000000 --photos 20

What it does:

1. Builds ``--photos`` test photos of 2000 x 1500 pixels (3.0 MP) in
   ``bench/data/pooled/`` (only if missing) from the colour photos scikit-image
   ships (astronaut, chelsea, coffee, rocket, the two motorcycles, the Hubble
   deep field, retina, ihc; scikit-image's licence, see its ``data/README``):
   photo i is source i mod 9, flipped by i, resized with Lanczos, with
   Gaussian noise of sigma 2 (seed i), JPEG quality 90. Nothing is downloaded.
2. Runs each method as a fresh process, timed from start to exit, with its
   CPU time and peak memory (``os.wait4``):

   - ``gmmseg.fit``: ``gmmseg.fit(paths, k)``, the pooled distinct colours of
     every pixel of every photo, the same model as a fit on all their pixels;
   - ``stacked``: that fit on the photos read and stacked into one image of
     150 M pixels first (``np.concatenate``), as a user without ``fit``'s
     list would do: the same model, to compare time and memory;
   - ``sklearn, sample N``: scikit-learn's ``GaussianMixture(k)`` seeded by
     ``KMeans(k, n_init=1)`` as ``bench/sklearn_pipeline.py`` seeds it, on N
     pixels drawn at random (N / photos from each, seeded), Z-scored by the
     sample's statistics. Not on the stacked pixels: 50 x 3 MP is 150 M
     pixels, 3.6 GB as float64 before GaussianMixture's (n, k) temporaries,
     and its EM steps on them would take hours on this machine.

3. Scores every fitted model by the same measure: the mean log-likelihood
   per pixel over all pixels of all photos, in the Z-scored space of the
   pooled fit (scikit-learn's Gaussians are mapped into it, with the
   Jacobian of the change of scale), computed on the pooled distinct colours
   weighted by their counts.

Prints a Markdown table; figures go to docs/speed.md.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.dirname(BENCH))

import bench_speed

DATA = os.path.join(BENCH, "data", "pooled")
SIZE = (2000, 1500)
SOURCES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
           "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png")
K = 4


def make_photo(index, path):
    """Photo ``index``: a scikit-image source, flipped, resized, noisy, as JPEG 90."""
    from PIL import Image

    source = os.path.join(os.path.dirname(bench_speed.source_photo()),
                          SOURCES[index % len(SOURCES)])
    with Image.open(source) as img:
        img = img.convert("RGB")
        if index // len(SOURCES) % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        resized = np.asarray(img.resize(SIZE, Image.LANCZOS), dtype=np.float64)
    noise = np.random.default_rng(index).normal(0.0, bench_speed.NOISE_SIGMA, resized.shape)
    noisy = np.clip(np.rint(resized + noise), 0, 255).astype(np.uint8)
    tmp = path + ".tmp"
    Image.fromarray(noisy).save(tmp, format="JPEG", quality=90)
    os.replace(tmp, path)


def photos(n):
    """Paths of the first ``n`` test photos, built if missing (in a child: see bench_speed)."""
    import multiprocessing

    os.makedirs(DATA, exist_ok=True)
    paths = [os.path.join(DATA, f"photo{i:02d}.jpg") for i in range(n)]
    missing = [(i, p) for i, p in enumerate(paths) if not os.path.exists(p)]
    if missing:
        print(f"building {len(missing)} photo(s) in {DATA} ...", file=sys.stderr)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.starmap(make_photo, missing)
    return paths


# --------------------------------------------------------------------------
# The two methods, each run in a child process (``--run``)
# --------------------------------------------------------------------------

def run_ours(paths, k):
    import gmmseg

    start = time.perf_counter()
    model = gmmseg.fit(paths, k, progress=False)
    return {**_fitted(model), "seconds_in": time.perf_counter() - start}


def run_stacked(paths, k):
    import gmmseg
    import utils

    start = time.perf_counter()
    stacked = np.concatenate([utils.load_image(path).reshape(-1, 1, 3) for path in paths])
    model = gmmseg.fit(stacked, k, progress=False)
    return {**_fitted(model), "seconds_in": time.perf_counter() - start}


def _fitted(model):
    return {"points": model.n_colours,
            "iterations": len(model.gmm.log_likelihood_history) - 1
            + max(len(model.warm_up_history) - 1, 0),
            "mean": model.mean.tolist(), "std": model.std.tolist(),
            "mus": model.gmm.mus.tolist(), "covs": model.gmm.covs.tolist(),
            "priors": model.gmm.priors.tolist()}


def run_sklearn(paths, k, sample):
    from PIL import Image
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    from sklearn_pipeline import seed_from_labels

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    parts = []
    for index, path in enumerate(paths):
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
        share = sample // len(paths) + (index < sample % len(paths))
        parts.append(pixels[rng.choice(len(pixels), share, replace=False)])
    x = np.concatenate(parts).astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    x = (x - mean) / std
    labels = KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(x)
    priors, mus, precisions = seed_from_labels(x, labels, k)
    gmm = GaussianMixture(n_components=k, weights_init=priors, means_init=mus,
                          precisions_init=precisions).fit(x)
    return {"seconds_in": time.perf_counter() - start, "points": len(x),
            "iterations": int(gmm.n_iter_), "mean": mean.tolist(), "std": std.tolist(),
            "mus": gmm.means_.tolist(), "covs": gmm.covariances_.tolist(),
            "priors": gmm.weights_.tolist()}


# --------------------------------------------------------------------------
# Scoring: every model's log-likelihood per pixel over all pixels, one space
# --------------------------------------------------------------------------

def in_space(fitted, mean, std):
    """A fitted mixture's Gaussians in the Z-scored space of ``mean``, ``std``.

    x' = (x - mean) / std and the model's own x_m = (x - mean_m) / std_m:
    x_m = a x' + b with a = std / std_m, b = (mean - mean_m) / std_m, so
    mu' = (mu_m - b) / a, cov' = cov_m / (a a^T); the density gains |det a|,
    which the log-likelihood below adds.
    """
    a = std / np.asarray(fitted["std"])
    b = (mean - np.asarray(fitted["mean"])) / np.asarray(fitted["std"])
    mus = (np.asarray(fitted["mus"]) - b) / a
    covs = np.asarray(fitted["covs"]) / np.outer(a, a)
    return mus, covs, np.asarray(fitted["priors"]), float(np.sum(np.log(a)))


def log_likelihood_per_pixel(fitted, colours_norm, counts, mean, std):
    import segmentation_GMM as sg

    mus, covs, priors, log_jacobian = in_space(fitted, mean, std)
    gmm = sg.GMM(len(priors), mus, covs, priors)
    _, total = gmm.inference(colours_norm, counts)
    return total / counts.sum() + log_jacobian


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--k", type=int, default=K)
    parser.add_argument("--sample", type=int, nargs="+", default=[1_000_000],
                        help="pixels scikit-learn fits on, one run each")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--run", choices=["ours", "stacked", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = photos(args.photos)
    if args.run == "ours":
        print(json.dumps(run_ours(paths, args.k)))
        return
    if args.run == "stacked":
        print(json.dumps(run_stacked(paths, args.k)))
        return
    if args.run == "sklearn":
        print(json.dumps(run_sklearn(paths, args.k, args.n)))
        return
    methods = {"gmmseg.fit of the paths (pooled colours of all pixels)": ["--run", "ours"],
               "gmmseg.fit of the photos stacked into one image": ["--run", "stacked"]}
    for n in args.sample:
        methods[f"sklearn GaussianMixture, sample of {n:,} pixels"] = ["--run", "sklearn",
                                                                       "--n", str(n)]
    runs = {}
    for _ in range(args.rounds):
        for name, extra in methods.items():
            command = [sys.executable, os.path.abspath(__file__), "--photos", str(args.photos),
                       "--k", str(args.k), *extra]
            seconds, cpu, peak, stdout = bench_speed.run_measured(command)
            runs.setdefault(name, []).append((seconds, cpu, peak, json.loads(stdout)))
    # Scored after every child has run: this process's peak memory is inherited by children.
    import segmentation_GMM as sg
    import utils
    from gmmseg.model import pool_colours

    colours, counts = pool_colours([sg.distinct_colours(utils.load_image(p))[:2]
                                    for p in paths])
    ours = runs[next(iter(methods))][0][3]
    mean, std = np.asarray(ours["mean"]), np.asarray(ours["std"])
    colours_norm = (colours - mean) / std
    n_pixels = int(counts.sum())
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; {args.photos} photos of {SIZE[0]}x{SIZE[1]} "
          f"({n_pixels / 1e6:.0f} M pixels, {len(counts):,} distinct colours), k = {args.k}; "
          f"medians of {args.rounds} round(s)\n")
    print("| method | points fitted | EM steps | wall s | CPU s | peak MB "
          "| log-likelihood / pixel, all pixels |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in methods:
        found = runs[name]
        fitted = found[0][3]
        score = log_likelihood_per_pixel(fitted, colours_norm, counts, mean, std)
        print(f"| {name} | {fitted['points']:,} | {fitted['iterations']} | "
              f"{statistics.median(r[0] for r in found):.1f} | "
              f"{statistics.median(r[1] for r in found):.1f} | "
              f"{max(r[2] for r in found):.0f} | {score:.5f} |")


if __name__ == "__main__":
    main()
