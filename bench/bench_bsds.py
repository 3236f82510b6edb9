"""Segment quality on BSDS500 (issue 4): PRI and VoI of the default and the best options.

One command, from the repository root::

    python bench/bench_bsds.py                     # ~10 min on 2 cores
    python bench/bench_bsds.py --json bsds.json    # also save every figure

What it does:

1. Reads the 30 BSDS500 training images and their 5 to 8 human
   segmentations from ``--data`` (default ``../shared/bsds-train``, beside the
   repository; its README says where they come from). They are evaluation
   material only: nothing is copied into the project.
2. Segments each image with the batch mode (``gmmseg.batch.run_batch``, the
   CLI's ``--image FOLDER --truth FOLDER``) for every setting of ``SETTINGS``
   and every k of ``--k`` (default 2 .. 12), seed 0, the CLI's defaults
   otherwise, in ``--jobs`` worker processes.
   "best" is ``--color-space lab --spatial 0.5 --smooth 3 --min-region 1000
   --merge 10``, chosen on these images (README); its scores are of the
   merged regions.
3. Scores each segmentation against the image's humans with the project's
   ``probabilistic_rand_index`` and ``variation_of_information`` (mean over
   the humans, bits), on the segmentation as given: the labels (one may
   cover several disconnected regions, a legitimate segmentation for these
   label-free measures), or the regions where a setting makes them.
4. Builds the region hierarchy (``--hierarchy``) of every image for each
   fine-region setting of ``HIERARCHY_SETTINGS``, reads the saved
   ``_hierarchy.npz`` and cuts it at every height of ``LEVELS``; runs
   scikit-image's ``felzenszwalb`` at every ``scale`` and ``min_size`` of
   ``FH_SCALES`` and ``FH_MIN_SIZES``.
5. Prints the comparison the BSDS500 benchmark reports, per method: PRI and
   VoI (bits) at ODS (one parameter for the whole set; PRI and VoI each at its
   own best, as ``collect_eval_reg.m`` does) and OIS (the best per image),
   and the cross-validated ODS: 5 folds of 6 images, the parameter chosen on
   the other 24 and scored on the 6, the mean over the 30 held-out scores.
   Every parameter of a method is chosen together (k; the fine-region setting
   and the level; scale and min_size), so the held-out figure is of a choice
   never made on the images it scores.
6. Prints a Markdown table of the mean PRI and VoI over the images for each
   (setting, k); the best single k per setting for the whole set (the
   "ODS"-like figure the literature reports; chosen by PRI); and the
   ``--k auto`` rows: each image's k chosen from its own sweep by
   ``choose_k`` with each criterion of ``--criteria`` and each gain threshold
   of ``--gains`` (no human looked at). ``--from-json`` prints the tables of a
   saved run again, without segmenting.

The two steps of scoring are the benchmark's own: each segmentation's PRI
and VoI are the means over the image's humans (``gmmseg.scores``), then the
means over the images.

Published BSDS500 figures (test set, ODS): Felzenszwalb-Huttenlocher PRI 0.79 /
VoI 2.16, Mean Shift 0.79 / 1.85, gPb-owt-ucm 0.83 / 1.69.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import utils  # after the path is set
from gmmseg import batch, hierarchy, outputs, scores, selection

# Each setting is the keyword arguments of ``gmmseg.segment`` (and the CLI's flags).
SETTINGS = {
    "default (rgb)": {},
    "best": {"color_space": "lab", "spatial": 0.5, "smooth": 3.0, "min_region": 1000,
             "merge": 10.0},
}


# The fine regions the hierarchy is built on: the GMM's labels in CIELAB, for
# two k, smoothed or not, with EM stopped early or run to convergence;
# cross-validation picks one with the level. (Measured once on these images:
# 1 to 25 EM steps scored within 0.015 PRI of each other.)
HIERARCHY_SETTINGS = {
    f"k = {k}, smooth {smooth:g}, iters {iters}": {"k": k, "color_space": "lab",
                                                   "smooth": smooth, "max_iter": iters}
    for k, smooth, iters in ((8, 2.0, 10), (8, 0.0, 10), (12, 2.0, 10), (8, 2.0, 100))}

# Heights the hierarchies are cut at: from a few hundred regions per image to
# one or two.
LEVELS = np.geomspace(0.01, 10.0, 31)

# felzenszwalb's scale (larger: larger regions) and smallest region; sigma
# stays at its default 0.8.
FH_SCALES = (50, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000)
FH_MIN_SIZES = (20, 100)

FOLDS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "bsds-train"),
                        help="folder with images/<id>.jpg and truth/<id>.npz "
                             "(default: ../shared/bsds-train)")
    parser.add_argument("--k", nargs="+", type=int, default=list(range(2, 13)),
                        help="the K of every sweep, in increasing order: the auto row "
                             "chooses among them (default: 2 .. 12)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                        default=list(SETTINGS), help="default: all")
    parser.add_argument("--criteria", nargs="+", default=list(selection.CRITERIA),
                        choices=list(selection.CRITERIA), help="for the auto row (default: all)")
    parser.add_argument("--gains", nargs="+", type=float, default=[0.02, 0.05, 0.1, 0.2],
                        help="thresholds (nats/pixel) of the gain rule to compare in the "
                             "auto rows (default: 0.02 0.05 0.1 0.2)")
    parser.add_argument("--limit", type=int, help="only the first N images (a quick look)")
    parser.add_argument("--jobs", type=int, help="worker processes (default: the cores)")
    parser.add_argument("--from-json", metavar="PATH",
                        help="print the tables of a saved --json run instead of segmenting")
    parser.add_argument("--json", help="also write every figure to this file")
    return parser.parse_args(argv)


def image_ids(data):
    """The ids of the images that have a truth file, sorted as integers."""
    folder = os.path.join(data, "images")
    if not os.path.isdir(folder) or not os.path.isdir(os.path.join(data, "truth")):
        sys.exit(f"error: {data}: no images/ and truth/ folders (see --data)")
    ids = [name[:-4] for name in os.listdir(folder) if name.endswith(".jpg")
           and os.path.exists(os.path.join(data, "truth", name[:-4] + ".npz"))]
    if not ids:
        sys.exit(f"error: {data}: no image with a truth file")
    return sorted(ids, key=int)


def evaluate(data, ids, settings, ks, jobs=None):
    """Segment and score every image for every setting and k, through the batch mode.

    Each setting is one ``gmmseg.batch.run_batch`` over the images, with the
    truth folder paired by stem: what ``python segmentation_GMM.py --image
    DATA/images --k 2 ... 12 --truth DATA/truth`` does, outputs in a temporary
    folder.

    Returns
    -------
    rows : list of dict
        ``id``, ``setting``, ``k``, ``pri``, ``voi``, ``seconds`` and the
        ``record`` (``k``, ``log_likelihood``, ``bic``, ``aic``: what
        ``choose_k`` compares), one per fit.
    """
    paths = [os.path.join(data, "images", name + ".jpg") for name in ids]
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for number, setting in enumerate(settings):
            print(f"{setting}:", file=sys.stderr)
            for row in batch.run_batch(paths, ks, out=os.path.join(out, str(number)), jobs=jobs,
                                       truth=os.path.join(data, "truth"), **SETTINGS[setting]):
                if row["error"]:
                    sys.exit(f"error: {row['image']}: {row['error']}")
                rows.append({"id": outputs.file_stem(row["image"]), "setting": setting,
                             "k": row["k"], "pri": row["pri"], "voi": row["voi"],
                             "seconds": row["seconds"],
                             "record": {name: row[name]
                                        for name in ("k", "log_likelihood", "bic", "aic")}})
    return rows


def load_truths(data, ids):
    return {name: scores.load_truth(os.path.join(data, "truth", name + ".npz")) for name in ids}


def score(segmentation, truths):
    """PRI and VoI (bits) of one segmentation, each the mean over the humans."""
    return (scores.probabilistic_rand_index(segmentation, truths),
            float(np.mean([scores.variation_of_information(segmentation, truth)
                           for truth in truths])))


def evaluate_hierarchy(data, ids, truths, jobs=None):
    """Score every cut at ``LEVELS`` of every image's hierarchy, per fine-region setting.

    The hierarchies are built by the batch mode (``--hierarchy``) and read
    back from the ``_hierarchy.npz`` it writes, as a user would cut them.

    Returns
    -------
    results : ndarray of shape (n_images, n_settings * n_levels, 2)
        PRI and VoI; the settings' columns one after the other.
    seconds : ndarray of shape (n_images, n_settings)
        Fit and whole hierarchy, per image (one core per worker).
    """
    paths = [os.path.join(data, "images", name + ".jpg") for name in ids]
    results = np.zeros((len(ids), len(HIERARCHY_SETTINGS), len(LEVELS), 2))
    seconds = np.zeros((len(ids), len(HIERARCHY_SETTINGS)))
    with tempfile.TemporaryDirectory() as out:
        for column, (name, setting) in enumerate(HIERARCHY_SETTINGS.items()):
            print(f"hierarchy, {name}:", file=sys.stderr)
            folder = os.path.join(out, str(column))
            options = {key: value for key, value in setting.items() if key != "k"}
            for row in batch.run_batch(paths, setting["k"], out=folder, jobs=jobs,
                                       hierarchy=True, **options):
                if row["error"]:
                    sys.exit(f"error: {row['image']}: {row['error']}")
                image = ids.index(outputs.file_stem(row["image"]))
                seconds[image, column] = row["seconds"]
                fine, merges = hierarchy.load_hierarchy(os.path.join(
                    folder, f"{ids[image]}_k{setting['k']}_hierarchy.npz"))
                results[image, column] = [score(hierarchy.cut(fine, merges, level=level),
                                                truths[ids[image]]) for level in LEVELS]
    return results.reshape(len(ids), -1, 2), seconds


def evaluate_felzenszwalb(data, ids, truths):
    """Score scikit-image's ``felzenszwalb`` at every (min_size, scale).

    Returns
    -------
    results : ndarray of shape (n_images, n_min_sizes * n_scales, 2)
    seconds : ndarray of shape (n_images,)
        Mean time of one call.
    """
    from skimage.segmentation import felzenszwalb

    grid = [(size, scale) for size in FH_MIN_SIZES for scale in FH_SCALES]
    results = np.zeros((len(ids), len(grid), 2))
    seconds = np.zeros(len(ids))
    print("felzenszwalb:", file=sys.stderr)
    for image, name in enumerate(ids):
        photo = utils.load_image(os.path.join(data, "images", name + ".jpg"))
        start = time.perf_counter()
        segmentations = [felzenszwalb(photo, scale=scale, sigma=0.8, min_size=size)
                         for size, scale in grid]
        seconds[image] = (time.perf_counter() - start) / len(grid)
        results[image] = [score(segmentation, truths[name]) for segmentation in segmentations]
    return results, seconds


def by_k(rows, ids, setting, ks):
    """A setting's per-k rows as an array of shape (n_images, n_k, 2): PRI, VoI."""
    found = {(r["id"], r["k"]): (r["pri"], r["voi"]) for r in rows if r["setting"] == setting}
    return np.array([[found[name, k] for k in ks] for name in ids])


def folds(n_images, n_folds=FOLDS):
    """Each image's fold, 0 .. n_folds - 1: the images in id order, dealt in turn."""
    return np.arange(n_images) % n_folds


def compare(results):
    """ODS, OIS and the cross-validated ODS of one method.

    Parameters
    ----------
    results : ndarray of shape (n_images, n_parameters, 2)
        PRI and VoI of every image at every parameter of the method.

    Returns
    -------
    figures : dict
        ``ods_pri``, ``ods_voi`` (each at its own best parameter for the
        whole set), ``ois_pri``, ``ois_voi`` (best per image), ``cv_pri``,
        ``cv_voi`` (held-out), and ``chosen_pri``, ``chosen_voi``: the
        parameter's index chosen in each fold.
    """
    pri, voi = results[..., 0], results[..., 1]
    fold = folds(len(results))
    held_pri, held_voi = np.zeros(len(results)), np.zeros(len(results))
    chosen_pri, chosen_voi = [], []
    for f in range(FOLDS):
        train, test = fold != f, fold == f
        best_pri = int(pri[train].mean(0).argmax())
        best_voi = int(voi[train].mean(0).argmin())
        held_pri[test], held_voi[test] = pri[test, best_pri], voi[test, best_voi]
        chosen_pri.append(best_pri)
        chosen_voi.append(best_voi)
    return {"ods_pri": float(pri.mean(0).max()), "ods_voi": float(voi.mean(0).min()),
            "ois_pri": float(pri.max(1).mean()), "ois_voi": float(voi.min(1).mean()),
            "cv_pri": float(held_pri.mean()), "cv_voi": float(held_voi.mean()),
            "chosen_pri": chosen_pri, "chosen_voi": chosen_voi}


def comparison_markdown(methods, n_images):
    """The side-by-side table, then what each fold chose."""
    lines = [(f"{n_images} BSDS500 training images, {FOLDS} folds; PRI higher is better, VoI "
             "(bits) lower is better."), "",
             ("| method | parameters searched | ODS PRI | ODS VoI | **held-out PRI** | "
             "**held-out VoI** | OIS PRI | OIS VoI | s/image |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, (searched, figures, seconds, _) in methods.items():
        lines.append(f"| {name} | {searched} | {figures['ods_pri']:.3f} | "
                     f"{figures['ods_voi']:.2f} | **{figures['cv_pri']:.3f}** | "
                     f"**{figures['cv_voi']:.2f}** | {figures['ois_pri']:.3f} | "
                     f"{figures['ois_voi']:.2f} | {seconds:.2f} |")
    lines += ["", "Chosen on the other 24 images, per fold (for PRI; for VoI):", "",
              "| method | " + " | ".join(f"fold {f + 1}" for f in range(FOLDS)) + " |",
              "|---|" + "---|" * FOLDS]
    for name, (_, figures, _, labels) in methods.items():
        cells = [f"{labels[p]}; {labels[v]}"
                 for p, v in zip(figures["chosen_pri"], figures["chosen_voi"], strict=False)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_scores(rows):
    return float(np.mean([r["pri"] for r in rows])), float(np.mean([r["voi"] for r in rows]))


def auto_rules(criteria, gains):
    """The rules of the auto rows: (name, criterion, gain threshold)."""
    rules = []
    for criterion in criteria:
        if criterion == "gain":
            rules += [(f"gain < {gain:g}", "gain", gain) for gain in gains]
        else:
            rules.append((criterion, criterion, selection.K_GAIN))
    return rules


def summarise(rows, settings, ks, rules):
    """Mean PRI and VoI per (setting, k), the best single k, and the auto rows."""
    table = {}
    for setting in settings:
        for k in ks:
            table[setting, k] = mean_scores([r for r in rows
                                             if r["setting"] == setting and r["k"] == k])
    best = {setting: max(ks, key=lambda k: table[setting, k][0]) for setting in settings}
    auto = {}
    for setting in settings:
        for rule, criterion, gain in rules:
            chosen = []
            for name in dict.fromkeys(r["id"] for r in rows):
                sweep = [r for r in rows if r["setting"] == setting and r["id"] == name]
                records = [r["record"] for r in sweep]
                chosen.append(sweep[records.index(selection.choose_k(records, criterion, gain))])
            auto[setting, rule] = (*mean_scores(chosen),
                                   float(np.mean([r["k"] for r in chosen])))
    return table, best, auto


def markdown(table, best, auto, settings, ks, n_images):
    lines = [(f"Mean over {n_images} BSDS500 training images; PRI higher is better, VoI "
              "(bits) lower is better."), "",
             "| setting | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "|---|" + "---:|" * len(ks)]
    for setting in settings:
        cells = []
        for k in ks:
            pri, voi = table[setting, k]
            cell = f"{pri:.3f} / {voi:.2f}"
            cells.append(f"**{cell}**" if k == best[setting] else cell)
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    lines += ["", "PRI / VoI per k; bold: the best single k for the whole set (by PRI).", "",
              "| setting | k chosen | mean k | PRI | VoI |", "|---|---|---:|---:|---:|"]
    for setting in settings:
        pri, voi = table[setting, best[setting]]
        lines.append(f"| {setting} | best single k = {best[setting]} | {best[setting]} "
                     f"| {pri:.3f} | {voi:.2f} |")
        for (which, rule), (pri, voi, mean_k) in auto.items():
            if which == setting:
                lines.append(f"| {setting} | auto, {rule} | {mean_k:.1f} "
                             f"| {pri:.3f} | {voi:.2f} |")
    return "\n".join(lines)


def methods_table(rows, ids, ks, settings, tree, tree_seconds, fh, fh_seconds):
    """Each method's searched parameters, figures (``compare``), s/image and parameter names."""
    methods = {}
    names = {"default (rgb)": "lab default (RGB, one k)", "best": "best setting (--merge 10)"}
    for setting in settings:
        seconds = float(np.mean([r["seconds"] for r in rows if r["setting"] == setting]))
        methods[names.get(setting, setting)] = (
            f"k = {ks[0]} .. {ks[-1]}", compare(by_k(rows, ids, setting, ks)), seconds,
            [f"k = {k}" for k in ks])
    if tree is not None:
        labels = [f"{name}, level {level:.3g}" for name in HIERARCHY_SETTINGS for level in LEVELS]
        methods["hierarchy (--hierarchy)"] = (
            f"{len(HIERARCHY_SETTINGS)} fine settings x {len(LEVELS)} levels", compare(tree),
            float(np.mean(tree_seconds)), labels)
    if fh is not None:
        labels = [f"min_size {size}, scale {scale}" for size in FH_MIN_SIZES
                  for scale in FH_SCALES]
        methods["felzenszwalb (scikit-image)"] = (
            f"{len(FH_MIN_SIZES)} min_size x {len(FH_SCALES)} scale", compare(fh),
            float(np.mean(fh_seconds)), labels)
    return methods


def main(argv=None):
    args = parse_args(argv)
    rules = auto_rules(args.criteria, args.gains)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        settings = list(saved["settings"])
        table, best, auto = summarise(saved["rows"], settings, saved["k"], rules)
        if "hierarchy" in saved:
            methods = methods_table(saved["rows"], saved["images"], saved["k"], settings,
                                    np.array(saved["hierarchy"]),
                                    np.array(saved["hierarchy_seconds"]),
                                    np.array(saved["felzenszwalb"]),
                                    np.array(saved["felzenszwalb_seconds"]))
            print(comparison_markdown(methods, len(saved["images"])) + "\n")
        print(markdown(table, best, auto, settings, saved["k"], len(saved["images"])))
        return
    ids = image_ids(args.data)[: args.limit]
    start = time.perf_counter()
    truths = load_truths(args.data, ids)
    # The new methods first, each reported as it finishes: the k sweeps take longest.
    tree, tree_seconds = evaluate_hierarchy(args.data, ids, truths, args.jobs)
    print(comparison_markdown(methods_table([], ids, args.k, [], tree, tree_seconds, None,
                                            None), len(ids)), file=sys.stderr)
    fh, fh_seconds = evaluate_felzenszwalb(args.data, ids, truths)
    print(comparison_markdown(methods_table([], ids, args.k, [], None, None, fh, fh_seconds),
                              len(ids)), file=sys.stderr)
    rows = evaluate(args.data, ids, args.settings, args.k, args.jobs)
    methods = methods_table(rows, ids, args.k, args.settings, tree, tree_seconds, fh,
                            fh_seconds)
    print(comparison_markdown(methods, len(ids)) + "\n")
    table, best, auto = summarise(rows, args.settings, args.k, rules)
    print(markdown(table, best, auto, args.settings, args.k, len(ids)))
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{len(rows)} fits, {len(ids) * len(HIERARCHY_SETTINGS)} hierarchies and "
          f"{len(ids) * len(FH_SCALES) * len(FH_MIN_SIZES)} felzenszwalb runs in "
          f"{seconds / 60:.1f} min on {platform.machine()} ({os.cpu_count()} CPUs, load "
          f"average {load:.1f}); hierarchy: fit and whole hierarchy "
          f"{np.mean(tree_seconds):.2f} s per image on average, {np.max(tree_seconds):.2f} s "
          f"at most (one core per worker, --jobs {args.jobs or os.cpu_count()}).")
    if args.json:
        utils.write_json(args.json, {
            "settings": {s: SETTINGS[s] for s in args.settings}, "k": args.k,
            "images": ids, "rows": rows,
            "mean": [{"setting": s, "k": k, "pri": table[s, k][0], "voi": table[s, k][1]}
                     for s, k in table],
            "best_k": best,
            "auto": [{"setting": s, "rule": c, "pri": v[0], "voi": v[1], "mean_k": v[2]}
                     for (s, c), v in auto.items()],
            "hierarchy_settings": HIERARCHY_SETTINGS, "levels": LEVELS.tolist(),
            "hierarchy": tree.tolist(), "hierarchy_seconds": tree_seconds.tolist(),
            "felzenszwalb_grid": {"min_size": FH_MIN_SIZES, "scale": FH_SCALES},
            "felzenszwalb": fh.tolist(), "felzenszwalb_seconds": fh_seconds.tolist(),
            "comparison": {name: figures for name, (_, figures, _, _) in methods.items()},
            "seconds": seconds})


if __name__ == "__main__":
    main()
