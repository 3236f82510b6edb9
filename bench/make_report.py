"""Regenerate every figure and table of report.md, deterministically for a seed.

    python bench/make_report.py

From any folder; about a minute on 2 cores. It rewrites results/ (figures the
report shows, plus the files README shows) and report.md, which is
bench/report_template.md with each ``{{name}}`` replaced by a table or a number
computed here, so the prose cannot disagree with the tables. Only the
``seconds`` columns vary between runs.

What it runs:

* the sweep k = 2..6 on every image in images/ through ``gmmseg.segment_file``,
  which draws ``<stem>_sweep_k2-6.png`` (copied into results/) and whose
  records give the tables; its per-k JSON, label and figure files stay in a
  temporary folder, except chelsea's k = 4 figure, which README shows
  (copied into docs/img/);
* k-means against GMM on every image at k = 4, and on two synthetic 2-D cases;
* the video demo of ``bench/bench_video.py --demo`` (a 60-frame GIF);
* coffee's region hierarchy with the README's command, its figure of cuts.

Three measurements are read, not rerun, because timing needs an idle machine and
takes minutes: the speed benchmark from ``bench/speed_results.json`` (made by
``python bench/bench_speed.py --repeat 3 --json bench/speed_results.json``),
the video frame rate below (``VIDEO_MEASUREMENT``), and the BSDS500 table from
``bench/bsds_results.json`` (made by ``python bench/bench_bsds.py --summary
bench/bsds_results.json``, 15 minutes, from data outside the project).
"""

import glob
import json
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import bench_speed
import bench_video

import segmentation_GMM as gmm_lab
import utils
from gmmseg import outputs, pipeline, selection, video, video_io

RESULTS = "results"  # relative to ROOT; main() runs from ROOT
TEMPLATE = os.path.join("bench", "report_template.md")
SPEED_JSON = os.path.join("bench", "speed_results.json")
SEED = 0
KS = (2, 3, 4, 5, 6)
COMPARE_K = 4
MAX_ITERATIONS = 100  # the CLI's default
# Written by ``segmentation_GMM.py`` (README shows them) and by the video demo.
# The figure README shows: the default run's own, kept in docs/img/ so that the
# default run, which writes it into results/ (untracked), never touches it.
README_FILES = ("chelsea_k4_segmentation.png",)
README_FIGURES = os.path.join("docs", "img")
VIDEO_FILES = ("pan_k4_segmented.gif", "pan_k4_frames.png")

# Frame rate of the video segmentation, measured on an idle machine: it is not
# rerun here (it takes minutes, and a busy machine makes it meaningless).
VIDEO_MEASUREMENT = {
    "date": "2026-11-27",
    "command": "python bench/bench_video.py",
    "clip": "150 frames, 640x360, 30 frames/s, H.264, a pan across the astronaut photo",
    "clip_fps": 30,
    "k": 4,
    "refitted": "0 of 150",
    "cli_median": 65.3, "cli_best": 66.9,
    "in_process_median": 110.5, "in_process_best": 124.4,
}

# The k we would pick by looking at the sweep figures (a judgement, not a
# computation), and why. The BIC's pick is computed.
BY_EYE = {
    "astronaut": (4, ("background, suit, skin and hair, black; k = 5 and 6 add the flag's "
                     "dark red but split the flat background into speckled shades")),
    "chelsea": (5, ("the first k that gives the green irises their own component; k = 6 also "
                    "separates the palest background, but the fur becomes a speckle of two "
                    "components")),
    "coffee": (6, ("cup rim, inside of the cup, coffee, saucer, table and shadow each get "
                  "a component")),
    "rocket": (4, ("rocket and flares get their own component; k = 5 and 6 mostly cut the "
                   "sky's smooth gradient into more bands (k = 6 also isolates the brightest "
                   "lights)")),
}


def markdown_table(header, rows):
    """A Markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def save_figure(figure, name, written, dpi=100):
    """Save a figure into results/ atomically and remember its name."""
    path = os.path.join(RESULTS, name)
    utils.write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))
    written.append(name)
    return path


def image_paths():
    """The sample images, in name order."""
    return sorted(path for path in glob.glob(os.path.join("images", "*.*"))
                  if not path.endswith(".md"))


def stem_of(path):
    return os.path.splitext(os.path.basename(path))[0]


# --------------------------------------------------------------------------
# GMM against k-means on synthetic 2-D data
# --------------------------------------------------------------------------

def rotation(angle):
    """The 2-D rotation matrix by ``angle`` radians."""
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def gaussian_cluster(rng, n, mean, sx, sy, angle):
    """n points of a Gaussian with standard deviations sx, sy, turned by angle."""
    return (rng.normal(size=(n, 2)) * [sx, sy]) @ rotation(angle).T + mean


def elongated_clusters(rng):
    """Two long parallel clusters whose tails overlap, and a small tight one.

    Each long cluster is 7.5 times longer than wide and the two lie 3 of
    their widths apart, so their edges mix; k-means, which cuts space into
    convex cells around the centres, cuts across them.

    Returns
    -------
    x : ndarray of shape (1350, 2)
    truth : ndarray of shape (1350,)
    true_model : GMM
        The mixture the points were drawn from.
    """
    spec = [(600, [0, 0], 3, 0.4, 0.5), (600, [0, 1.5], 3, 0.4, 0.5),
            (150, [4, -1.5], 0.3, 0.3, 0)]
    x = np.concatenate([gaussian_cluster(rng, *cluster) for cluster in spec])
    sizes = np.array([n for n, *_ in spec])
    covs = [rotation(angle) @ np.diag([sx ** 2, sy ** 2]) @ rotation(angle).T
            for _, _, sx, sy, angle in spec]
    true_model = gmm_lab.GMM(len(spec), [mean for _, mean, *_ in spec], covs,
                             sizes / sizes.sum())
    return x, np.repeat(np.arange(len(spec)), sizes), true_model


def ring_around_blob(rng):
    """A ring of points around a central blob: the ring is nothing like a Gaussian.

    Returns ``x``, ``truth`` and ``None`` (no Gaussian mixture drew the points).
    """
    angle = rng.uniform(0, 2 * np.pi, 600)
    ring = np.c_[4 * np.cos(angle), 4 * np.sin(angle)] + rng.normal(0, 0.3, (600, 2))
    x = np.concatenate([ring, rng.normal(0, 0.6, (300, 2))])
    return x, np.repeat([0, 1], [600, 300]), None


def fit_both(x, k):
    """k-means labels and GMM labels (EM seeded by that k-means), with both models."""
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=k, random_state=SEED).fit(x)
    mus, priors, covs = gmm_lab.kmeans(k, x, seed=SEED)
    model = gmm_lab.GMM(k, mus, covs, priors)
    gamma = model.fit(x, 500, tol=1e-8, progress=False)
    return kmeans.labels_, kmeans.cluster_centers_, gamma.argmax(axis=1), model


def match_to_truth(truth, labels):
    """Renumber labels to agree best with the truth, so colours match across panels.

    Only for drawing: the adjusted Rand index ignores the numbering.
    """
    from scipy.optimize import linear_sum_assignment

    k = max(truth.max(), labels.max()) + 1
    overlap = np.zeros((k, k))
    np.add.at(overlap, (labels, truth), 1)
    rows, cols = linear_sum_assignment(-overlap)
    mapping = np.empty(k, dtype=int)
    mapping[rows] = cols
    return mapping[labels], mapping


def draw_ellipses(ax, model, mapping):
    """One- and two-sigma ellipses of each component, in its cluster's colour."""
    from matplotlib.patches import Ellipse

    for k in range(model.ncomp):
        values, vectors = np.linalg.eigh(model.covs[k])
        # eigh sorts eigenvalues ascending: the last vector is the long axis.
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        for n_sigma, style in ((1, "-"), (2, "--")):
            width, height = 2 * n_sigma * np.sqrt(values[::-1])
            ax.add_patch(Ellipse(model.mus[k], width, height, angle=angle, fill=False,
                                 edgecolor="black", lw=3.4, ls=style))
            ax.add_patch(Ellipse(model.mus[k], width, height, angle=angle, fill=False,
                                 edgecolor=utils.OKABE_ITO[mapping[k]], lw=1.8, ls=style))


def scatter_panel(ax, x, labels, k, title):
    """Points coloured by cluster, equal axes, a legend."""
    for j in range(k):
        member = labels == j
        ax.scatter(x[member, 0], x[member, 1], s=6, color=utils.OKABE_ITO[j],
                   label=f"cluster {j + 1}")
    ax.set_title(title, fontsize=11)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(alpha=0.25)


def synthetic_cases(written):
    """Figure and table: where GMM beats k-means, and where both fail.

    Returns
    -------
    table : str
    values : dict
        The ARIs the prose cites, formatted as in the table.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(SEED)
    cases = [("wins", "elongated, unequal, overlapping", *elongated_clusters(rng), 3),
             ("fails", "ring around a blob", *ring_around_blob(rng), 2)]
    figure = Figure(figsize=(14, 8.8), layout="constrained")
    # The elongated case is wider than tall; equal axes with "box" keep the
    # data's shape, and the row heights follow it so no panel is mostly blank.
    axes = figure.subplots(2, 3, height_ratios=[0.62, 1])
    rows, values = [], {}
    for row, (key, name, x, truth, true_model, k) in enumerate(cases):
        kmeans_labels, centres, gmm_labels, model = fit_both(x, k)
        scores = {"k-means": adjusted_rand_score(truth, kmeans_labels),
                  "GMM": adjusted_rand_score(truth, gmm_labels)}
        # The best any clustering can do on overlapping clusters: label each
        # point by the mixture that drew it.
        bayes = "n/a (not a Gaussian mixture)"
        if true_model is not None:
            bayes_labels = true_model.inference(x)[0].argmax(axis=1)
            bayes = f"{adjusted_rand_score(truth, bayes_labels):.3f}"
        values[f"syn_{key}_bayes"] = bayes
        rows.append([f"{name} (k = {k})", len(x), f"{scores['k-means']:.3f}",
                     f"{scores['GMM']:.3f}", bayes])
        values[f"syn_{key}_kmeans"] = f"{scores['k-means']:.3f}"
        values[f"syn_{key}_gmm"] = f"{scores['GMM']:.3f}"
        scatter_panel(axes[row, 0], x, truth, k, f"{name}: true clusters")
        shown, mapping = match_to_truth(truth, kmeans_labels)
        scatter_panel(axes[row, 1], x, shown, k,
                      f"k-means, k = {k}: ARI = {scores['k-means']:.3f}")
        axes[row, 1].scatter(centres[:, 0], centres[:, 1], marker="X", s=160,
                             c=[utils.OKABE_ITO[m] for m in mapping[:k]],
                             edgecolors="black", linewidths=1.2, zorder=3)
        shown, mapping = match_to_truth(truth, gmm_labels)
        scatter_panel(axes[row, 2], x, shown, k,
                      f"GMM (EM), k = {k}: ARI = {scores['GMM']:.3f}")
        draw_ellipses(axes[row, 2], model, mapping)
        for col, extra in ((1, Line2D([], [], marker="X", ls="", color="grey",
                                      markeredgecolor="black", markersize=6,
                                      label="centre")),
                           (2, Line2D([], [], color="black", label="1σ / 2σ (dashed)"))):
            handles, _ = axes[row, col].get_legend_handles_labels()
            axes[row, col].legend(handles=handles + [extra], fontsize=9, markerscale=2,
                                  loc="upper left", framealpha=0.9)
        axes[row, 0].legend(fontsize=9, markerscale=2, loc="upper left", framealpha=0.9)
    figure.suptitle("Synthetic 2-D data: colours matched to the true clusters; "
                    "ARI = adjusted Rand index against the truth (1 = perfect, 0 = chance)",
                    fontsize=12)
    save_figure(figure, "synthetic_gmm_vs_kmeans.png", written)
    table = markdown_table(["case", "points", "k-means ARI", "GMM ARI",
                            "ARI of the true mixture's labels"], rows)
    return table, values


# --------------------------------------------------------------------------
# GMM against k-means on the photos
# --------------------------------------------------------------------------

def kmeans_and_gmm(image, k):
    """Label a photo by k-means alone and by the GMM that k-means seeds.

    Returns
    -------
    kmeans_labels, gmm_labels : ndarray of shape (h, w)
        Component j of the GMM starts from k-means cluster j, so the numbers
        correspond and "pixels whose label EM changed" is meaningful.
    seed_ll, gmm_ll : float
        Mean log-likelihood per pixel of the mixture k-means gives (before EM)
        and after EM.
    """
    colours, counts, inverse = gmm_lab.distinct_colours(image)
    mean, std = gmm_lab.channel_stats(colours, counts)
    colours_norm = (colours - mean) / std
    mus, priors, covs = gmm_lab.kmeans(k, colours_norm, counts, SEED)
    seed_model = gmm_lab.GMM(k, mus, covs, priors)
    seed_ll = seed_model.inference(colours_norm, counts)[1] / counts.sum()
    # The hard k-means assignment is the nearest centre.
    distances = ((colours_norm[:, None, :] - mus[None]) ** 2).sum(axis=2)
    kmeans_labels = distances.argmin(axis=1)[inverse].reshape(image.shape[:2])
    result = gmm_lab.segment(image, k, seed=SEED, progress=False)
    return kmeans_labels, result["labels"], seed_ll, result["gmm"].log_likelihood_history[-1]


def colour_by_mean(image, labels, k):
    """Display copy of the image with each label painted its members' mean colour."""
    shown, small = utils.display_copy(image, labels)
    return utils.label_means(shown, small, k)[small]


def changed_pixels(image, kmeans_labels, gmm_labels):
    """Display copy in pale grey with the pixels EM relabelled in vermillion."""
    shown, small_km = utils.display_copy(image, kmeans_labels)
    _, small_gmm = utils.display_copy(image, gmm_labels)
    grey = shown.mean(axis=2, keepdims=True) * 0.5 + 0.45
    vermillion = np.array([0xD5, 0x5E, 0x00]) / 255
    return np.where((small_km != small_gmm)[:, :, None], vermillion, grey)


def photo_comparison(paths, k, written):
    """Figure and table: k-means beside the GMM it seeds, on every sample photo."""
    from matplotlib.figure import Figure
    from sklearn.metrics import adjusted_rand_score

    images = [utils.load_image(path) for path in paths]
    aspects = [image.shape[0] / image.shape[1] for image in images]
    figure = Figure(figsize=(14, 3.3 * sum(aspects) + 0.4 * len(paths) + 0.5),
                    layout="constrained")
    axes = figure.subplots(len(paths), 4, squeeze=False, height_ratios=aspects)
    rows, values = [], {}
    for row, (path, image) in enumerate(zip(paths, images, strict=True)):
        stem = stem_of(path)
        kmeans_labels, gmm_labels, seed_ll, gmm_ll = kmeans_and_gmm(image, k)
        share = np.mean(kmeans_labels != gmm_labels)
        ari = adjusted_rand_score(kmeans_labels.ravel(), gmm_labels.ravel())
        rows.append([stem, k, f"{seed_ll:.3f}", f"{gmm_ll:.3f}", f"{100 * share:.1f}%",
                     f"{ari:.2f}"])
        values[f"cmp_{stem}_changed"] = f"{100 * share:.1f}%"
        values[f"cmp_{stem}_ari"] = f"{ari:.2f}"
        shown, _ = utils.display_copy(image, gmm_labels)
        panels = [(shown, f"{stem}: input"),
                  (colour_by_mean(image, kmeans_labels, k), f"k-means, k = {k}"),
                  (colour_by_mean(image, gmm_labels, k), f"GMM (EM), k = {k}"),
                  (changed_pixels(image, kmeans_labels, gmm_labels),
                   f"relabelled by EM: {100 * share:.1f}% (vermillion)")]
        for ax, (data, title) in zip(axes[row], panels, strict=True):
            ax.imshow(data, interpolation="nearest")
            ax.set_title(title, fontsize=11)
            ax.set_axis_off()
    figure.suptitle(f"k-means against the GMM it seeds, k = {k}: each segment painted "
                    "its pixels' mean colour", fontsize=13)
    save_figure(figure, f"kmeans_vs_gmm_k{k}.png", written)
    table = markdown_table(
        ["image", "k", "log-lik./pixel at the k-means seed", "log-lik./pixel after EM",
         "pixels EM relabelled", "ARI(k-means, GMM)"], rows)
    return table, values


# --------------------------------------------------------------------------
# Sweep over k on every sample image
# --------------------------------------------------------------------------

def sweep(path, written):
    """Fit one image for every k with ``gmmseg.segment_file``; its sweep figure and table.

    It writes the per-k files and the sweep's into a temporary folder; the
    sweep figure is copied into results/, and chelsea's k = 4 figure that
    README shows into docs/img/. The sweep stars the k the default ``--k-criterion`` picks,
    as the CLI's does.

    Returns
    -------
    table : str
        ``gmmseg.selection.sweep_table``: log-likelihood, BIC, AIC, iterations
        and seconds per k.
    records : list of dict
    """
    stem = stem_of(path)
    with tempfile.TemporaryDirectory() as out:
        records = pipeline.segment_file(path, list(KS), max_iter=MAX_ITERATIONS,
                                        random_state=SEED, out=out, progress=False)
        name = outputs.sweep_name(stem, KS) + ".png"
        shutil.copy(os.path.join(out, name), os.path.join(RESULTS, name))
        written.append(name)
        for name in README_FILES:
            if name.startswith(f"{stem}_"):
                shutil.copy(os.path.join(out, name), os.path.join(README_FIGURES, name))
    return selection.sweep_table(records), records


def hierarchy_figure(written):
    """The region hierarchy of coffee with the README's command; its figure of cuts.

    ``--k 12 --color-space lab --smooth 2 --iters 10 --hierarchy`` through
    ``gmmseg.segment_file``, whose ``_hierarchy.png`` (the cuts into 2, 4 ...
    64 regions beside the default one) is copied into results/.

    Returns
    -------
    values : dict
        ``hierarchy_fine`` and ``hierarchy_regions``: coffee's fine regions
        and the regions of the default cut.
    """
    with tempfile.TemporaryDirectory() as out:
        (record,) = pipeline.segment_file(os.path.join("images", "coffee.png"), 12,
                                          color_space="lab", smooth=2.0, max_iter=10,
                                          hierarchy=True, random_state=SEED, out=out,
                                          progress=False)
        name = "coffee_k12_hierarchy.png"
        shutil.copy(os.path.join(out, name), os.path.join(RESULTS, name))
        written.append(name)
    return {"hierarchy_fine": str(record["fine_regions"]),
            "hierarchy_regions": str(record["n_regions"])}


def bsds_table():
    """The BSDS500 side-by-side table recorded by ``bench/bench_bsds.py --summary``.

    Its first paragraph and table only: what each method chose follows them there.
    """
    with open(os.path.join(ROOT, "bench", "bsds_results.json")) as f:
        saved = json.load(f)
    return saved["table"].split("\n\nChosen")[0], saved["date"]


def smallest_det(record):
    """The smallest covariance determinant: near 0, a component sits on one colour."""
    return float(np.linalg.det(np.asarray(record["covariances"])).min())


def determinant_table(all_records):
    """Smallest covariance determinant of each fit: near 0, a component sits on one colour."""
    rows = [[stem] + [f"{smallest_det(r):.1e}" for r in records]
            for stem, records in all_records.items()]
    return markdown_table(["image"] + [f"k = {k}" for k in KS], rows)


def images_table(paths):
    """Size, distinct colours and the most frequent colour of each image."""
    rows, values = [], {}
    for path in paths:
        image = utils.load_image(path)
        colours, counts, _ = gmm_lab.distinct_colours(image)
        top = counts.argmax()
        share = f"{100 * counts[top] / counts.sum():.1f}%"
        values[f"top_share_{stem_of(path)}"] = share
        rows.append([stem_of(path), f"{image.shape[1]}x{image.shape[0]}",
                     f"{counts.sum():,}", f"{len(colours):,}",
                     "(" + ", ".join(str(int(v)) for v in colours[top]) + ")",
                     share])
    return markdown_table(["image", "size", "pixels", "distinct colours",
                           "most frequent colour (RGB)", "its share of pixels"], rows), values


def settings_table():
    """The settings every fit in this report uses (the program's defaults)."""
    return markdown_table(["setting", "value", "in the code"], [
        ["k-means seed (k-means++ initialisation)", SEED, "`--seed`"],
        ["regulariser ε added to each covariance's diagonal", f"{gmm_lab.REG_COVAR:g}",
         "`REG_COVAR`"],
        ["stop when the log-likelihood per pixel changes by less than",
         f"{gmm_lab.TOL:g} nats", "`TOL`, `--tol`"],
        ["at most this many EM iterations per fit", MAX_ITERATIONS, "`--iters`"],
        ["side of a warm-up histogram bin (Z-scored units)", f"{gmm_lab.HISTOGRAM_STEP:g}",
         "`HISTOGRAM_STEP`"],
        ["video: refit when a frame's log-likelihood per pixel drops by more than",
         f"{video.REFIT_DROP:g} nats", "`REFIT_DROP`"],
        ["video: at most this many EM iterations per refit", video.REFIT_ITERATIONS,
         "`REFIT_ITERATIONS`"],
    ])


def record_values(stem, records):
    """Per-k numbers the prose may cite, formatted exactly as in the tables.

    The log-likelihood as ``gmmseg.selection.sweep_table`` prints it, the
    determinant as ``determinant_table``.
    """
    values = {}
    for r in records:
        key = f"{stem}_k{r['k']}"
        values[f"ll_{key}"] = f"{r['log_likelihood']:.4f}"
        values[f"det_{key}"] = f"{smallest_det(r):.1e}"
    return values


def choice_table(all_records):
    """Which k the BIC picks and which we pick by eye, per image."""
    rows, values = [], {}
    for stem, records in all_records.items():
        by_bic = selection.choose_k(records, "bic")["k"]
        by_eye, why = BY_EYE[stem]
        rows.append([stem, by_bic, by_eye, "yes" if by_bic == by_eye else "no", why])
        values[f"bic_k_{stem}"] = str(by_bic)
    values["n_disagree"] = str(sum(row[3] == "no" for row in rows))
    values["n_images"] = str(len(rows))
    table = markdown_table(["image", "k by BIC", "k by eye", "agree", "why (by eye)"], rows)
    return table, values


# --------------------------------------------------------------------------
# Video and speed: recorded measurements
# --------------------------------------------------------------------------

def video_demo(written):
    """Remake the demo GIF and frame strip; table of the recorded frame rates."""
    bench_video.make_demo(VIDEO_MEASUREMENT["k"])
    written.extend(VIDEO_FILES)
    info, frames = video_io.open_video(os.path.join(RESULTS, VIDEO_FILES[0]))
    first = next(frames)
    n_frames = 1 + sum(1 for _ in frames)
    m = VIDEO_MEASUREMENT
    demo = markdown_table(
        ["demo clip", "frames", "size", "plays at", "k"],
        [[f"`{RESULTS}/{VIDEO_FILES[0]}`", n_frames, f"{first.shape[1]}x{first.shape[0]}",
          f"{info['fps']:.0f} frames/s", m["k"]]])
    speed = markdown_table(
        ["clip", "k", "frames refitted", "CLI, start to exit: median (best)",
         "`segment_video` in process: median (best)"],
        [[m["clip"], m["k"], m["refitted"],
          f"{m['cli_median']} frames/s ({m['cli_best']})",
          f"{m['in_process_median']} frames/s ({m['in_process_best']})"]])
    values = {"video_cli_fps": str(m["cli_median"]), "video_clip_fps": str(m["clip_fps"]),
              "video_in_process_fps": str(m["in_process_median"]),
              "video_date": m["date"], "video_command": m["command"]}
    return demo + "\n\n" + speed, values


def speed_table():
    """The speed benchmark's Markdown and a summary sentence, from its JSON.

    Returns
    -------
    table : str
        The benchmark's own tables (its ``markdown`` key, or rebuilt with
        ``bench_speed.report``), or a note saying how to measure it.
    summary : str
        The ratios the prose cites, formatted as the benchmark's targets table
        formats them.
    """
    if not os.path.exists(SPEED_JSON):
        note = ("*Not measured yet. On an idle machine run `python bench/bench_speed.py "
                f"--repeat 3 --json {SPEED_JSON}` (minutes), then `python "
                "bench/make_report.py`.*")
        return note, "The benchmark has not been run for this report yet (see below)."
    with open(SPEED_JSON) as f:
        record = json.load(f)
    if "markdown" in record:
        table = record["markdown"]
    else:
        runs = {tuple(key.split("_", 1)): run for key, run in record["runs"].items()}
        table = bench_speed.report(runs, record["em_iteration_seconds"], record["targets"],
                                   record["machine"], record["repeat"])
    return table, speed_summary(record.get("targets", {}), record.get("runs", {}))


def speed_summary(targets, runs):
    """One sentence per measured ratio of the benchmark's targets table, then what missed.

    Numbers are formatted as the benchmark's own tables format them.
    """
    sentences = {
        "speedup_vs_sklearn_3mp": "On the 3 MP photo our command line is {:.2f} times faster "
                                  "than the scikit-learn pipeline (wall time).",
        "memory_ours_over_sklearn_3mp": "It needs {:.2f} times the pipeline's peak memory.",
        "ll_ours_minus_sklearn_3mp": "Its log-likelihood per pixel differs from the "
                                     "pipeline's by {:.2e} nats (positive: ours is higher).",
        "cli_over_floor_11mp": "On the 11 MP photo it takes {:.2f} times as long as only "
                               "decoding the photo and writing a PNG.",
        "em_iteration_ours_over_sklearn": "One EM iteration of ours takes {:.2f} times as long "
                                          "as one of scikit-learn's on the same points.",
    }
    found = [text.format(targets[name]) for name, text in sentences.items() if name in targets]
    if not found:
        return "The benchmark's JSON has no targets to summarise."
    text = " ".join(found) + " (These ratios are the targets table's `measured` column.)"
    missed = [name for name, (goal, at_least) in bench_speed.TARGETS.items()
              if name in targets and not (targets[name] >= goal if at_least
                                          else targets[name] <= goal)]
    if missed:
        text += (" The benchmark's goal" + ("s " if len(missed) > 1 else " ")
                 + ", ".join(f"`{name}`" for name in missed) + " "
                 + ("are" if len(missed) > 1 else "is") + " missed.")
    if "cli_3mp" in runs and "floor_3mp" in runs:
        text += (f" Of our {runs['cli_3mp']['seconds']:.2f} s on the 3 MP photo, "
                 f"{runs['floor_3mp']['seconds']:.2f} s is the floor alone (starting Python, "
                 "importing the libraries, decoding the photo, writing a PNG), which bounds "
                 "how much faster than scikit-learn the whole command can be.")
    return text


# --------------------------------------------------------------------------
# Assemble
# --------------------------------------------------------------------------

def fill_template(slots):
    """report.md from the template; every ``{{name}}`` must have a value."""
    with open(TEMPLATE) as f:
        text = f.read()
    for name, value in slots.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        start = text.index("{{")
        raise RuntimeError(f"unfilled placeholder {text[start:text.index('}}', start) + 2]}")

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    utils.write_atomic("report.md", write)


def remove_stale(written):
    """Delete files in results/ that this run did not write (old figures)."""
    for name in sorted(os.listdir(RESULTS)):
        if name not in written and os.path.isfile(os.path.join(RESULTS, name)):
            os.remove(os.path.join(RESULTS, name))
            print(f"removed stale {RESULTS}/{name}")


def main():
    os.chdir(ROOT)  # so that records name images relatively, and paths are short
    os.makedirs(RESULTS, exist_ok=True)
    written, slots = [], {}
    paths = image_paths()
    slots["settings"] = settings_table()
    slots["images"], values = images_table(paths)
    slots.update(values)
    all_records = {}
    for path in paths:
        table, all_records[stem_of(path)] = sweep(path, written)
        slots[f"sweep_{stem_of(path)}"] = table
        slots.update(record_values(stem_of(path), all_records[stem_of(path)]))
    slots["determinants"] = determinant_table(all_records)
    slots["choice"], values = choice_table(all_records)
    slots.update(values)
    slots["photo_comparison"], values = photo_comparison(paths, COMPARE_K, written)
    slots.update(values)
    slots["synthetic"], values = synthetic_cases(written)
    slots.update(values)
    slots["video"], values = video_demo(written)
    slots.update(values)
    slots["speed"], slots["speed_summary"] = speed_table()
    slots.update(hierarchy_figure(written))
    slots["bsds"], slots["bsds_date"] = bsds_table()
    fill_template(slots)
    remove_stale(written)
    print(f"wrote report.md and {len(written)} files in {RESULTS}/")


if __name__ == "__main__":
    main()
