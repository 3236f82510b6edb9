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
4. Prints a Markdown table of the mean PRI and VoI over the images for each
   (setting, k); the best single k per setting for the whole set (the
   "ODS"-like figure the literature reports; chosen by PRI); and the
   ``--k auto`` rows: each image's k chosen from its own sweep by
   ``choose_k`` with each criterion of ``--criteria`` and each gain threshold
   of ``--gains`` (no human looked at). ``--from-json`` prints the tables of a
   saved run again, without segmenting.

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
from gmmseg import batch, selection

# Each setting is the keyword arguments of ``gmmseg.segment`` (and the CLI's flags).
SETTINGS = {
    "default (rgb)": {},
    "best": {"color_space": "lab", "spatial": 0.5, "smooth": 3.0, "min_region": 1000,
             "merge": 10.0},
}


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
                rows.append({"id": utils.file_stem(row["image"]), "setting": setting,
                             "k": row["k"], "pri": row["pri"], "voi": row["voi"],
                             "seconds": row["seconds"],
                             "record": {name: row[name]
                                        for name in ("k", "log_likelihood", "bic", "aic")}})
    return rows


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


def main(argv=None):
    args = parse_args(argv)
    rules = auto_rules(args.criteria, args.gains)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        settings = list(saved["settings"])
        table, best, auto = summarise(saved["rows"], settings, saved["k"], rules)
        print(markdown(table, best, auto, settings, saved["k"], len(saved["images"])))
        return
    ids = image_ids(args.data)[: args.limit]
    start = time.perf_counter()
    rows = evaluate(args.data, ids, args.settings, args.k, args.jobs)
    table, best, auto = summarise(rows, args.settings, args.k, rules)
    print(markdown(table, best, auto, args.settings, args.k, len(ids)))
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{len(rows)} fits in {seconds / 60:.1f} min on {platform.machine()} "
          f"({os.cpu_count()} CPUs, load average {load:.1f}).")
    if args.json:
        utils.write_json(args.json, {
            "settings": {s: SETTINGS[s] for s in args.settings}, "k": args.k,
            "images": ids, "rows": rows,
            "mean": [{"setting": s, "k": k, "pri": table[s, k][0], "voi": table[s, k][1]}
                     for s, k in table],
            "best_k": best,
            "auto": [{"setting": s, "rule": c, "pri": v[0], "voi": v[1], "mean_k": v[2]}
                     for (s, c), v in auto.items()],
            "seconds": seconds})


if __name__ == "__main__":
    main()
