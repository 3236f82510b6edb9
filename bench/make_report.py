"""Regenerate every figure and table of report.md, deterministically for a seed.

    python bench/make_report.py            # all parts
    python bench/make_report.py --quick    # skip the sweep over every sample image

It writes the figures into results/ and report.md from bench/report_template.md, whose
``{{name}}`` placeholders are filled with the Markdown tables computed here. Speed
figures come from the benchmark's JSON (``python bench/bench_speed.py --json
results/bench_speed.json``), which takes minutes and is not rerun here.
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import segmentation_GMM as gmm_lab
import utils

RESULTS = os.path.join(ROOT, "results")
SEED = 0


def markdown_table(header, rows):
    """A Markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# GMM against k-means on synthetic 2-D data
# --------------------------------------------------------------------------

def elongated_clusters(rng):
    """Two long parallel clusters and a small tight one: Gaussian, unequal, overlapping."""
    def cluster(n, mean, sx, sy, angle):
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return (rng.normal(size=(n, 2)) * [sx, sy]) @ rotation.T + mean
    x = np.concatenate([cluster(600, [0, 0], 3, 0.3, 0.5), cluster(600, [0, 2.2], 3, 0.3, 0.5),
                        cluster(150, [4, -1], 0.3, 0.3, 0)])
    return x, np.repeat([0, 1, 2], [600, 600, 150])


def ring_around_blob(rng):
    """A ring of points around a central blob: two clusters, neither Gaussian-shaped as a pair."""
    angle = rng.uniform(0, 2 * np.pi, 600)
    ring = np.c_[4 * np.cos(angle), 4 * np.sin(angle)] + rng.normal(0, 0.3, (600, 2))
    x = np.concatenate([ring, rng.normal(0, 0.6, (300, 2))])
    return x, np.repeat([0, 1], [600, 300])


def fit_both(x, k):
    """k-means labels and GMM labels (EM seeded by that k-means), with the fitted GMM."""
    from sklearn.cluster import KMeans

    kmeans_labels = KMeans(n_clusters=k, random_state=SEED).fit_predict(x)
    mus, priors, covs = gmm_lab.kmeans(k, x, seed=SEED)
    model = gmm_lab.GMM(k, mus, covs, priors)
    gamma = model.fit(x, 500, tol=1e-8, progress=False)
    return kmeans_labels, gamma.argmax(axis=1), model


def draw_ellipses(ax, model):
    """One- and two-sigma ellipses of each component's covariance."""
    from matplotlib.patches import Ellipse

    for k in range(model.ncomp):
        values, vectors = np.linalg.eigh(model.covs[k])
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        for n_sigma in (1, 2):
            width, height = 2 * n_sigma * np.sqrt(values[::-1])
            ax.add_patch(Ellipse(model.mus[k], width, height, angle=angle, fill=False,
                                 color="black", lw=1.2, ls="-" if n_sigma == 1 else "--"))


def synthetic_cases():
    """Figure and table: where GMM beats k-means, and where both fail."""
    from matplotlib.figure import Figure
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(SEED)
    cases = [("elongated, unequal, overlapping (k = 3)", *elongated_clusters(rng), 3),
             ("ring around a blob (k = 2)", *ring_around_blob(rng), 2)]
    figure = Figure(figsize=(10, 9.4), layout="constrained")
    axes = figure.subplots(2, 2)
    rows = []
    for row, (name, x, truth, k) in enumerate(cases):
        kmeans_labels, gmm_labels, model = fit_both(x, k)
        scores = [adjusted_rand_score(truth, kmeans_labels), adjusted_rand_score(truth, gmm_labels)]
        rows.append([name, f"{scores[0]:.3f}", f"{scores[1]:.3f}"])
        for col, (method, labels) in enumerate([("k-means", kmeans_labels), ("GMM", gmm_labels)]):
            ax = axes[row, col]
            for j in range(k):
                member = labels == j
                ax.scatter(x[member, 0], x[member, 1], s=5, color=utils.OKABE_ITO[j],
                           label=f"cluster {j}")
            if method == "GMM":
                draw_ellipses(ax, model)
            ax.set_title(f"{name}\n{method}: ARI = {scores[col]:.3f}", fontsize=10)
            ax.set_aspect("equal")
            ax.set_xlabel("x1")
            ax.set_ylabel("x2")
            ax.legend(loc="upper right", fontsize=8, markerscale=2)
    path = os.path.join(RESULTS, "synthetic_gmm_vs_kmeans.png")
    utils.write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    return markdown_table(["case", "k-means ARI", "GMM ARI"], rows)


# --------------------------------------------------------------------------
# GMM against k-means on a photo
# --------------------------------------------------------------------------

def image_comparison(image_path, k):
    """Figure: the k-means labels that seed EM beside the GMM labels, same image and k."""
    from matplotlib.figure import Figure

    image = utils.load_image(image_path)
    colours, counts, inverse = gmm_lab.distinct_colours(image)
    mean, std = gmm_lab.channel_stats(colours, counts)
    colours_norm = (colours - mean) / std
    mus, _, _ = gmm_lab.kmeans(k, colours_norm, counts, SEED)
    # The hard k-means assignment is the nearest centre: the seed before any EM.
    distances = ((colours_norm[:, None, :] - mus[None]) ** 2).sum(axis=2)
    kmeans_labels = distances.argmin(axis=1)[inverse].reshape(image.shape[:2])
    result = gmm_lab.segment(image, k, seed=SEED, progress=False)
    figure = Figure(figsize=(12, 4.2), layout="constrained")
    axes = figure.subplots(1, 3)
    shown, _ = utils.display_copy(image, result["labels"])
    panels = [(shown, "input"),
              (colour_by_mean(image, kmeans_labels, k), f"k-means, k = {k}"),
              (colour_by_mean(image, result["labels"], k), f"GMM (EM), k = {k}")]
    for ax, (data, title) in zip(axes, panels, strict=True):
        ax.imshow(data[:, :, 0] if data.shape[2] == 1 else data, cmap="gray")
        ax.set_title(title)
        ax.set_axis_off()
    stem = os.path.splitext(os.path.basename(image_path))[0]
    path = os.path.join(RESULTS, f"{stem}_kmeans_vs_gmm_k{k}.png")
    utils.write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    share = np.mean(kmeans_labels != result["labels"])
    return path, share


def colour_by_mean(image, labels, k):
    """Display copy of the image with each label painted its mean colour."""
    shown, small = utils.display_copy(image, labels)
    means = np.stack([shown[small == j].mean(axis=0) if np.any(small == j)
                      else np.zeros(shown.shape[2]) for j in range(k)])
    return means[small]


# --------------------------------------------------------------------------
# Sweep over k on every sample image
# --------------------------------------------------------------------------

def sweep_tables(ks=(2, 3, 4, 5, 6)):
    """Fit every image in images/ for each k; one Markdown table per image."""
    tables = []
    for path in sorted(glob.glob(os.path.join(ROOT, "images", "*.*"))):
        if path.endswith(".md"):
            continue
        records = gmm_lab.main(path, list(ks), seed=SEED, out=RESULTS, progress=False)
        stem = os.path.splitext(os.path.basename(path))[0]
        best = min(records, key=lambda r: r["bic"])["k"]
        rows = [[r["k"], f"{r['log_likelihood']:.4f}", f"{r['bic']:.4g}", f"{r['aic']:.4g}",
                 r["iterations"], f"{r['seconds']:.2f}"] for r in records]
        tables.append(f"**{stem}** (lowest BIC at k = {best})\n\n" + markdown_table(
            ["k", "log-likelihood / pixel", "BIC", "AIC", "EM iterations", "seconds"], rows))
    return "\n\n".join(tables)


def fill_template(tables):
    """Write report.md from the template, replacing each {{name}} with its table."""
    with open(os.path.join(ROOT, "bench", "report_template.md")) as f:
        text = f.read()
    for name, table in tables.items():
        text = text.replace("{{" + name + "}}", table)
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    utils.write_atomic(os.path.join(ROOT, "report.md"), write)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the sweep over the images")
    args = parser.parse_args(argv)
    os.makedirs(RESULTS, exist_ok=True)
    tables = {"synthetic": synthetic_cases()}
    _, share = image_comparison(os.path.join(ROOT, "images", "chelsea.png"), 4)
    tables["kmeans_vs_gmm"] = markdown_table(
        ["image", "k", "pixels whose label EM changed"], [["chelsea", 4, f"{100 * share:.1f}%"]])
    if not args.quick:
        tables["sweep"] = sweep_tables()
    speed = os.path.join(RESULTS, "bench_speed.json")
    if os.path.exists(speed):
        with open(speed) as f:
            tables["speed"] = json.load(f).get("markdown", "")
    fill_template(tables)
    print("\n\n".join(tables.values()))


if __name__ == "__main__":
    main()
