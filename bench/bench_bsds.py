"""Segment quality on BSDS500 (issues 4, 11 and 22): PRI, VoI and Covering at ODS and OIS.

One command, from the repository root::

    python bench/bench_bsds.py                     # the 100 validation images, ~15 min
    python bench/bench_bsds.py --json bsds.json    # also save every figure
    python bench/bench_bsds.py --sweeps            # also the lab's k sweeps (much longer)

What it does:

1. Reads the BSDS500 images and their 5 to 9 human segmentations from
   ``--data`` (default ``../shared/bsds500/val``, the 100 validation images,
   beside the repository; its README says where they come from). Nothing of
   it is copied into the project. The learned merge order was trained on the
   200 training images (``bench/train_merges.py``), never on these; its
   number of epochs and ``hierarchy.DEFAULT_LEVEL`` were chosen on these.
2. Builds the region hierarchy of every image through the batch mode
   (``--hierarchy``, the CLI's path), for each setting of ``HIERARCHIES``:
   the learned order (the default) and the likelihood order of issue 11
   (``--merge-order likelihood``), each on its fine regions, reads the saved
   ``_hierarchy.npz`` and cuts it at every height of the setting's levels;
   runs scikit-image's ``felzenszwalb`` at every ``scale`` and ``min_size`` of
   ``FH_SCALES`` and ``FH_MIN_SIZES``.
3. Scores each segmentation as the benchmark does (``gmmseg.scores``): PRI,
   VoI in bits and Segmentation Covering, each the mean over the image's
   humans, then over the images; at ODS (one parameter for the whole set,
   each measure at its own best, as ``collect_eval_reg.m`` does) and OIS
   (the best per image); and the cross-validated ODS: 5 folds, the
   parameter chosen on the other images and scored on the fold's.
4. With ``--sweeps``, also the lab's segmentation and the "best" setting
   for every k of ``--k`` (issue 4), with the ``--k auto`` rows: each
   image's k chosen from its own sweep by ``choose_k`` with each criterion of
   ``--criteria`` and gain threshold of ``--gains``. ``--from-json`` prints
   the tables of a saved run again, without segmenting.

Published BSDS500 figures (test set, ODS): Felzenszwalb-Huttenlocher PRI 0.79 /
VoI 2.16, Mean Shift 0.79 / 1.85, gPb-owt-ucm 0.83 / 1.69 (Covering 0.59).
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

MEASURES = ("pri", "voi", "covering")

# Each setting is the keyword arguments of ``gmmseg.segment`` (and the CLI's flags).
SETTINGS = {
    "default (rgb)": {},
    "best": {"color_space": "lab", "spatial": 0.5, "smooth": 3.0, "min_region": 1000,
             "merge": 10.0},
}


# The hierarchies compared: each a method whose parameters (its fine-region
# settings and the level) are searched together. The learned order's fine
# regions are the README's hierarchy command (k = 12, bench/train_merges.py's
# FINE); the likelihood order's those of issue 11, where it was chosen (k = 8),
# and k = 12. Its heights are nats per pixel times Delta E; the learned
# order's, probabilities.
HIERARCHIES = {
    "hierarchy, learned order": {
        "settings": {"k = 12, smooth 2, iters 10": {"k": 12, "color_space": "lab",
                                                    "smooth": 2.0, "max_iter": 10}},
        "levels": np.linspace(0.02, 0.98, 49)},
    "hierarchy, likelihood order": {
        "settings": {f"k = {k}, smooth 2, iters 10": {"k": k, "color_space": "lab",
                                                      "smooth": 2.0, "max_iter": 10,
                                                      "merge_order": "likelihood"}
                     for k in (8, 12)},
        "levels": np.geomspace(0.01, 10.0, 31)},
}

# felzenszwalb's scale (larger: larger regions) and smallest region; sigma
# stays at its default 0.8.
FH_SCALES = (50, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000)
FH_MIN_SIZES = (20, 100)

FOLDS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "bsds500", "val"),
                        help="folder with images/<id>.jpg and truth/<id>.npz "
                             "(default: ../shared/bsds500/val)")
    parser.add_argument("--sweeps", action="store_true",
                        help="also the lab's k sweeps and the best setting (issue 4)")
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
    parser.add_argument("--summary", metavar="PATH",
                        help="also write the side-by-side table and its date to this JSON "
                             "(bench/bsds_results.json: what report.md shows)")
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
                             "covering": row["covering"],
                             "seconds": row["seconds"],
                             "record": {name: row[name]
                                        for name in ("k", "log_likelihood", "bic", "aic")}})
    return rows


def load_truths(data, ids):
    return {name: scores.load_truth(os.path.join(data, "truth", name + ".npz")) for name in ids}


def score(segmentation, truths):
    """PRI, VoI (bits) and Covering of one segmentation, each the mean over the humans."""
    return scores.mean_scores(segmentation, truths).tolist()


def evaluate_hierarchy(data, ids, truths, method, jobs=None):
    """Score every cut of every image's hierarchy, for each fine-region setting of a method.

    The hierarchies are built by the batch mode (``--hierarchy``) and read
    back from the ``_hierarchy.npz`` it writes, as a user would cut them.

    Parameters
    ----------
    method : dict
        One of ``HIERARCHIES``: its ``settings`` and ``levels``.

    Returns
    -------
    results : ndarray of shape (n_images, n_settings * n_levels, 3)
        PRI, VoI and Covering; the settings' columns one after the other.
    seconds : ndarray of shape (n_images, n_settings)
        Fit and whole hierarchy, per image (one core per worker).
    """
    paths = [os.path.join(data, "images", name + ".jpg") for name in ids]
    settings, levels = method["settings"], method["levels"]
    results = np.zeros((len(ids), len(settings), len(levels), 3))
    seconds = np.zeros((len(ids), len(settings)))
    with tempfile.TemporaryDirectory() as out:
        for column, (name, setting) in enumerate(settings.items()):
            print(f"hierarchy, {name}, {setting.get('merge_order', 'learned')} order:",
                  file=sys.stderr)
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
                results[image, column] = scores.hierarchy_scores(fine, merges,
                                                                 truths[ids[image]], levels)
    return results.reshape(len(ids), -1, 3), seconds


def evaluate_felzenszwalb(data, ids, truths):
    """Score scikit-image's ``felzenszwalb`` at every (min_size, scale).

    Returns
    -------
    results : ndarray of shape (n_images, n_min_sizes * n_scales, 3)
    seconds : ndarray of shape (n_images,)
        Mean time of one call.
    """
    from skimage.segmentation import felzenszwalb

    grid = [(size, scale) for size in FH_MIN_SIZES for scale in FH_SCALES]
    results = np.zeros((len(ids), len(grid), 3))
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
    """A setting's per-k rows as an array of shape (n_images, n_k, 3): PRI, VoI, Covering."""
    found = {(r["id"], r["k"]): [r[name] for name in MEASURES] for r in rows
             if r["setting"] == setting}
    return np.array([[found[name, k] for k in ks] for name in ids])


def folds(n_images, n_folds=FOLDS):
    """Each image's fold, 0 .. n_folds - 1: the images in id order, dealt in turn."""
    return np.arange(n_images) % n_folds


def compare(results):
    """ODS, OIS and the cross-validated ODS of one method.

    Parameters
    ----------
    results : ndarray of shape (n_images, n_parameters, 3)
        PRI, VoI and Covering of every image at every parameter of the method.

    Returns
    -------
    figures : dict
        For each measure m of ``MEASURES``: ``ods_m`` (at its own best
        parameter for the whole set), ``ois_m`` (best per image), ``cv_m``
        (held out), ``chosen_m`` (the parameter's index chosen in each fold)
        and ``best_m`` (the ODS parameter's index).
    """
    fold = folds(len(results))
    figures = {}
    for index, name in enumerate(MEASURES):
        values = results[..., index] if name != "voi" else -results[..., index]
        held, chosen = np.zeros(len(results)), []
        for f in range(FOLDS):
            train, test = fold != f, fold == f
            best = int(values[train].mean(0).argmax())
            held[test] = values[test, best]
            chosen.append(best)
        sign = -1.0 if name == "voi" else 1.0
        figures.update({f"ods_{name}": sign * float(values.mean(0).max()),
                        f"ois_{name}": sign * float(values.max(1).mean()),
                        f"cv_{name}": sign * float(held.mean()), f"chosen_{name}": chosen,
                        f"best_{name}": int(values.mean(0).argmax())})
    return figures


def comparison_markdown(methods, n_images):
    """The side-by-side table, then what each method chose for the whole set and per fold."""
    lines = [(f"{n_images} BSDS500 images; PRI and Covering higher is better, VoI (bits) lower "
              f"is better; held out: {FOLDS} folds, the parameters chosen on the other images."),
             "", ("| method | parameters searched | ODS PRI | ODS VoI | ODS Covering | OIS PRI | "
                  "OIS VoI | OIS Covering | held-out PRI | held-out VoI | held-out Covering | "
                  "s/image |"),
             "|---|---|" + "---:|" * 10]
    for name, (searched, figures, seconds, _) in methods.items():
        cells = [f"{figures[f'{kind}_{m}']:.{2 if m == 'voi' else 3}f}"
                 for kind in ("ods", "ois", "cv") for m in MEASURES]
        lines.append(f"| {name} | {searched} | " + " | ".join(cells) + f" | {seconds:.2f} |")
    lines += ["", "Chosen for the whole set (ODS), by PRI; VoI; Covering:", ""]
    for name, (_, figures, _, labels) in methods.items():
        lines.append(f"- {name}: " + "; ".join(labels[figures[f'best_{m}']] for m in MEASURES))
    lines += ["", "Chosen on the other images, per fold (for PRI; for VoI):", "",
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


def methods_table(rows, ids, ks, settings, trees, fh, fh_seconds):
    """Each method's searched parameters, figures (``compare``), s/image and parameter names.

    ``trees`` maps a name of ``HIERARCHIES`` to its (results, seconds); ``fh``
    is felzenszwalb's results, or None.
    """
    methods = {}
    for name, (results, seconds) in trees.items():
        method = HIERARCHIES[name]
        labels = [f"{setting}, level {level:.3g}" for setting in method["settings"]
                  for level in method["levels"]]
        methods[name] = (f"{len(method['settings'])} fine setting(s) x "
                         f"{len(method['levels'])} levels", compare(np.asarray(results)),
                         float(np.mean(seconds)), labels)
    if fh is not None:
        labels = [f"min_size {size}, scale {scale}" for size in FH_MIN_SIZES
                  for scale in FH_SCALES]
        methods["felzenszwalb (scikit-image)"] = (
            f"{len(FH_MIN_SIZES)} min_size x {len(FH_SCALES)} scale", compare(np.asarray(fh)),
            float(np.mean(fh_seconds)), labels)
    names = {"default (rgb)": "lab default (RGB, one k)", "best": "best setting (--merge 10)"}
    for setting in settings:
        seconds = float(np.mean([r["seconds"] for r in rows if r["setting"] == setting]))
        methods[names.get(setting, setting)] = (
            f"k = {ks[0]} .. {ks[-1]}", compare(by_k(rows, ids, setting, ks)), seconds,
            [f"k = {k}" for k in ks])
    return methods


def write_summary(path, methods, n_images, date):
    """The side-by-side table and each method's figures, for report.md (``--summary``)."""
    utils.write_json(path, {
        "date": date, "images": n_images, "table": comparison_markdown(methods, n_images),
        "comparison": {name: figures for name, (_, figures, _, _) in methods.items()}})


def main(argv=None):
    args = parse_args(argv)
    rules = auto_rules(args.criteria, args.gains)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        settings = list(saved["settings"])
        methods = methods_table(saved["rows"], saved["images"], saved["k"], settings,
                                saved["hierarchies"], saved["felzenszwalb"],
                                saved["felzenszwalb_seconds"])
        print(comparison_markdown(methods, len(saved["images"])) + "\n")
        if args.summary:
            write_summary(args.summary, methods, len(saved["images"]),
                          saved.get("date", "undated"))
        if settings:
            table, best, auto = summarise(saved["rows"], settings, saved["k"], rules)
            print(markdown(table, best, auto, settings, saved["k"], len(saved["images"])))
        return
    ids = image_ids(args.data)[: args.limit]
    start = time.perf_counter()
    truths = load_truths(args.data, ids)
    trees = {}
    for name, method in HIERARCHIES.items():
        trees[name] = evaluate_hierarchy(args.data, ids, truths, method, args.jobs)
        print(comparison_markdown(methods_table([], ids, args.k, [], {name: trees[name]}, None,
                                                None), len(ids)), file=sys.stderr)
    fh, fh_seconds = evaluate_felzenszwalb(args.data, ids, truths)
    settings = args.settings if args.sweeps else []
    rows = evaluate(args.data, ids, settings, args.k, args.jobs) if settings else []
    methods = methods_table(rows, ids, args.k, settings, trees, fh, fh_seconds)
    print(comparison_markdown(methods, len(ids)) + "\n")
    if args.summary:
        write_summary(args.summary, methods, len(ids), time.strftime("%Y-%m-%d"))
    if settings:
        table, best, auto = summarise(rows, settings, args.k, rules)
        print(markdown(table, best, auto, settings, args.k, len(ids)))
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tree_seconds = np.concatenate([np.ravel(s) for _, s in trees.values()])
    print(f"\n{len(rows)} fits, {len(tree_seconds)} hierarchies and "
          f"{len(ids) * len(FH_SCALES) * len(FH_MIN_SIZES)} felzenszwalb runs in "
          f"{seconds / 60:.1f} min on {platform.machine()} ({os.cpu_count()} CPUs, load "
          f"average {load:.1f}); " + "; ".join(
              f"{name}: fit and whole hierarchy {np.mean(s):.2f} s per image on average, "
              f"{np.max(s):.2f} s at most" for name, (_, s) in trees.items())
          + f" (one core per worker, --jobs {args.jobs or os.cpu_count()}).")
    if args.json:
        record = {
            "settings": {s: SETTINGS[s] for s in settings}, "k": args.k, "images": ids,
            "rows": rows,
            "hierarchy_methods": {name: {"settings": method["settings"],
                                         "levels": method["levels"].tolist()}
                                  for name, method in HIERARCHIES.items()},
            "hierarchies": {name: [results.tolist(), s.tolist()]
                            for name, (results, s) in trees.items()},
            "felzenszwalb_grid": {"min_size": FH_MIN_SIZES, "scale": FH_SCALES},
            "felzenszwalb": fh.tolist(), "felzenszwalb_seconds": fh_seconds.tolist(),
            "comparison": {name: figures for name, (_, figures, _, _) in methods.items()},
            "seconds": seconds, "date": time.strftime("%Y-%m-%d")}
        if settings:
            table, best, auto = summarise(rows, settings, args.k, rules)
            record.update(
                mean=[{"setting": s, "k": k, "pri": table[s, k][0], "voi": table[s, k][1]}
                      for s, k in table], best_k=best,
                auto=[{"setting": s, "rule": c, "pri": v[0], "voi": v[1], "mean_k": v[2]}
                      for (s, c), v in auto.items()])
        utils.write_json(args.json, record)


if __name__ == "__main__":
    main()
