"""The command line: ``python segmentation_GMM.py`` (or ``python -m gmmseg``).

Flags are parsed here; the segmentation options become one ``gmmseg.Options``
(checked as it is built), the rest go to the public entries
(``gmmseg.segment_file``, ``run_batch``, ``segment_video``), which check them.
Any refusal, from argparse or from the library, is one line on stderr and exit
code 2, the library's parameter names written as the flags (``FLAGS``). The
modules imported before the flags are parsed load none of SciPy,
scikit-learn and matplotlib, so ``--help`` answers at once.
"""

import argparse
import os
import re
import sys
import warnings

import segmentation_GMM as sg
import utils
from gmmseg import features, hierarchy, merge_order, outputs, preload, selection, video_io

__all__ = ["FLAGS", "describe", "in_flags", "main", "parse_args"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line, not usage + error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(kind, name):
    """An argparse type: the text as ``kind``; its range is the entry's to check."""
    def parse(text):
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{name} must be {what}, not {text!r}") from None
    return parse


def _channel_axis(text):
    """``--channel-axis``: auto, none, or an axis number."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto, none or an axis number, not "
                                         f"{text!r}") from None


def _k_value(text):
    return "auto" if text == "auto" else _number(int, "k")(text)


def default_image():
    """The sample image, named relative to the working folder when it is inside it.

    The JSON record keeps the path as given, so the default run in the
    project's folder records ``images/chelsea.png``, not where the checkout
    happens to be.
    """
    relative = os.path.relpath(sg.DEFAULT_IMAGE)
    return sg.DEFAULT_IMAGE if relative.startswith(os.pardir) else relative


def parse_args(argv=None):
    """The command line's flags, parsed but not yet checked."""
    parser = _Parser(
        prog="segmentation_GMM.py",
        description="Segment an image or a video with a Gaussian mixture fitted by EM, "
                    "initialised by k-means. Any bad input: one line on stderr, exit 2.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", nargs="+", action="extend", metavar="PATH",
                        help="image file (default: images/chelsea.png); several files, folders "
                             "(their images, in natural order) or quoted glob patterns make a "
                             "batch, summarised in --out/summary.csv")
    source.add_argument("--video", nargs="+", action="extend", metavar="PATH",
                        help="MP4 (or other video ffmpeg reads), animated GIF, or folder "
                             "of frames in natural order (frame2 before frame10); writes a "
                             "segmented clip, the labels, a frames figure and a JSON record "
                             "per K. Several clips, folders of clips or quoted globs make a "
                             "batch, summarised in --out/summary.csv")
    parser.add_argument("--k", nargs="+", type=_k_value, metavar="K",
                        help=f"number of components, 1 to {sg.MAX_COMPONENTS}; several values "
                             f"fit each in turn and draw a sweep figure; 'auto' fits 2..K-MAX "
                             f"and keeps one (see --k-criterion; default: 4)")
    parser.add_argument("--k-max", type=_number(int, "k-max"),
                        help=f"largest k that --k auto tries, 2 to 32 "
                             f"(default: {selection.K_MAX})")
    parser.add_argument("--k-criterion", choices=selection.CRITERIA,
                        help=f"how k is chosen among several: 'gain' keeps the smallest k "
                             f"whose log-likelihood per pixel grows by less than "
                             f"{selection.K_GAIN} nats with one more component; 'bic', 'aic' "
                             f"the lowest. --k auto keeps that k; a sweep figure (several k, or "
                             f"auto) stars it (default: gain)")
    parser.add_argument("--iters", type=_number(int, "iters"), default=100,
                        help="at most this many EM iterations in all, the warm-up at most half; "
                             "1 to 10000 (default: 100)")
    parser.add_argument("--tol", type=_number(float, "tol"), default=sg.TOL,
                        help=f"stop when the log-likelihood per pixel changes by less "
                             f"(default: {sg.TOL})")
    parser.add_argument("--seed", type=_number(int, "seed"), default=0,
                        help="k-means seed, 0 to 2**32 - 1 (default: 0)")
    parser.add_argument("--out", default="results",
                        help="folder for the outputs (default: results)")
    parser.add_argument("--show", action="store_true", help="open each figure in a window")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results in --out of another input with the same "
                             "name (a.png after a.tif, say), which is refused otherwise; a "
                             "rerun on the same input always replaces its own")
    parser.add_argument("--fps", type=_number(float, "fps"),
                        help=f"frame rate of the segmented clip (default: the input's; "
                             f"{video_io.DEFAULT_FPS:g} for a folder of frames)")
    parser.add_argument("--preset", choices=video_io.MP4_PRESETS,
                        help=f"libx264 preset of the segmented MP4 (video only): a faster one "
                             f"takes less CPU for lower quality or a larger file; the labels "
                             f"are the same (default: {video_io.MP4_PRESET})")
    parser.add_argument("--labels", choices=video_io.LABEL_FORMATS,
                        help="how a clip's label frames are kept (video only): mkv, lossless "
                             "and about 1%% of npy's size, any frame readable alone "
                             "(gmmseg.video_io.read_labels); npy, the raw uint8 array; none "
                             "(default: mkv)")
    many = parser.add_argument_group("many images (see docs/batch.md)")
    many.add_argument("--jobs", type=_number(int, "jobs"),
                      help="worker processes, each importing the libraries once (default: "
                           "the machine's cores; 1 runs in this process)")
    many.add_argument("--dask", metavar="ADDRESS",
                      help="send the images to the Dask scheduler at ADDRESS (tcp://host:8786, or"
                           " its --scheduler-file); its workers read and write on a shared file "
                           "system")
    many.add_argument("--resume", action="store_true",
                      help="skip images whose outputs are already complete with these settings")
    many.add_argument("--shared-model", action="store_true",
                      help="fit one mixture on all the images (their colours pooled) and label "
                           "every image with it, so that label k is the same colour class in "
                           "every image; needs one --k")
    models = parser.add_argument_group("models (see docs/model.md)")
    models.add_argument("--save-model", metavar="PATH",
                        help="write the fitted model (JSON) to PATH: of the one --k, of the k "
                             "--k auto keeps, or a batch's --shared-model")
    models.add_argument("--model", metavar="PATH",
                        help="label with the model saved at PATH instead of fitting one (its k, "
                             "colour space and features); for --video, the starting mixture")
    quality = parser.add_argument_group("segment quality (images only; see docs/quality.md)")
    quality.add_argument("--color-space", choices=features.COLOR_SPACES, default="rgb",
                         help="colour features: Z-scored RGB, or CIELAB, closer to "
                              "perceived colour differences (default: rgb)")
    quality.add_argument("--spatial", type=_number(float, "spatial"), default=0.0, metavar="W",
                         help="append each pixel's Z-scored row and column times W (0 to 10) "
                              "to its features; fitted on a random sample of "
                              f"{features.SPATIAL_SAMPLE} pixels (default: 0, colour only)")
    quality.add_argument("--mrf", type=_number(float, "mrf"), default=0.0, metavar="B",
                         help="a Potts prior inside EM of weight B (0 to 10; mean-field, as "
                              "FAST and Atropos): a pixel leans to its 4 (in 3-D 6) "
                              "neighbours' components (default: 0, none)")
    quality.add_argument("--smooth", type=_number(float, "smooth"), default=0.0, metavar="S",
                         help="blur each component's responsibilities with a Gaussian of "
                              "S pixels (at most a quarter of the shorter side) before "
                              "labelling (default: 0, none)")
    quality.add_argument("--min-region", type=_number(int, "min-region"), default=0,
                         metavar="A",
                         help="also split the labels into connected regions, fold regions "
                              "under A pixels into the nearest larger one, and write them "
                              "(<stem>_k<K>_regions.png, 16-bit); --truth then scores the "
                              "regions (default: 0, off)")
    quality.add_argument("--merge", type=_number(float, "merge"), default=0.0, metavar="D",
                         help="also merge touching regions whose mean colours differ by less "
                              "than D (CIELAB Delta E), most similar first; implies the "
                              "regions of --min-region (default: 0, off)")
    levels = parser.add_argument_group("region hierarchy (images only; see docs/quality.md)")
    levels.add_argument("--hierarchy", action="store_true",
                        help="merge the connected regions of the labels pair by pair, least "
                             "different first, into one; cut at the default height "
                             f"({hierarchy.DEFAULT_LEVEL:g} for the learned order) unless "
                             "--regions or --level says "
                             "where; writes <stem>_k<K>_hierarchy.npz (every cut) and .png "
                             "(several cuts)")
    levels.add_argument("--regions", type=_number(int, "regions"), metavar="N",
                        help="cut the hierarchy into N regions (implies --hierarchy)")
    levels.add_argument("--level", type=_number(float, "level"), metavar="T",
                        help="cut the hierarchy at height T: every merge that costs at most T "
                             "(with the learned order, T is the probability that a merge is "
                             "wrong; implies --hierarchy)")
    levels.add_argument("--merge-order", choices=merge_order.ORDERS,
                        help="the hierarchy's cost of a merge: learned from BSDS500's human "
                             "segmentations (default), or likelihood, the mixture's "
                             "log-likelihood lost times the border's contrast (default cut "
                             f"{hierarchy.DEFAULT_LEVELS['likelihood']:g}); implies nothing: "
                             "give --hierarchy too")
    volumes = parser.add_argument_group("volumes, channels and masks (see docs/volumes.md)")
    volumes.add_argument("--channel-axis", type=_channel_axis, default="auto", metavar="AXIS",
                         help="the input's axis of channels (counted as tifffile or nibabel "
                              "give the data), none for a grey image or volume, or auto "
                              "(default): a TIFF's S or C axis, a NIfTI's 4th")
    volumes.add_argument("--mask", metavar="PATH",
                         help="image or volume of the input's shape, nonzero where to fit "
                              "and label; the outside is labelled 255")
    quality.add_argument("--truth", metavar="PATH",
                         help="human segmentation(s) of the image: a label image, .npy, "
                              ".npz (key segs) or BSDS .mat; for a batch, a folder of them "
                              "named by image stem; prints and records PRI, VoI (bits) and "
                              "ARI")
    args = parser.parse_args(argv)
    args.image = args.image or [default_image()]  # --image a --image b: both
    # After parsing: --help answers without the batch, the model and what they import.
    from gmmseg import batch

    if args.model is not None and args.save_model is not None:
        parser.error("--save-model writes a fitted model; with --model nothing is fitted")
    if args.video is not None and (args.save_model or args.shared_model):
        parser.error("--save-model and --shared-model are for images, not --video")
    if args.k is None:
        args.k = None if args.model is not None else [4]
    elif args.k == ["auto"]:
        args.k = "auto"
    if args.model is not None and args.k is not None and (args.k == "auto" or len(args.k) > 1):
        parser.error("--model labels with the model's k: give no --k, or that one")
    if args.k_max is not None and args.k != "auto":
        parser.error("--k-max is for --k auto")
    if args.k_criterion is not None and args.k != "auto" and len(args.k or []) < 2:
        parser.error("--k-criterion chooses among several k: give --k auto or several values")
    if args.fps is not None and args.video is None:
        parser.error("--fps is for --video")
    if args.preset is not None and args.video is None:
        parser.error("--preset is for --video")
    if args.labels is not None and args.video is None:
        parser.error("--labels is for --video; an image's labels are a PNG")
    many = args.jobs is not None or args.dask is not None or args.resume
    if args.video is None:
        args.batch = many or args.shared_model or batch.is_batch(args.image)
    else:
        from gmmseg import clips

        args.batch = many or clips.is_clip_batch(args.video)
    if args.batch and args.show:
        parser.error("--show opens the figure of one image; a batch writes them to --out")
    if args.mask is not None and (args.batch or args.video is not None):
        parser.error("--mask is one image's: give one --image")
    if args.channel_axis != "auto" and args.video is not None:
        parser.error("--channel-axis is for images and volumes, not --video")
    args.k_max = selection.K_MAX if args.k_max is None else args.k_max
    args.k_criterion = args.k_criterion or "gain"
    if args.video is not None:
        from gmmseg.options import Options

        default = Options()
        given = [FLAGS[name] for name in (*Options.names("features", "labelling"), "mrf")
                 if getattr(args, _dest(name)) != getattr(default, name)]
        given += ["--truth"] if args.truth else []
        if given:
            parser.error(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for images, "
                         f"not --video")
    return args


def _dest(name):
    """Where argparse keeps the flag of parameter ``name``: --min-region in min_region."""
    return FLAGS[name][2:].replace("-", "_")


# The command line's name of each parameter, for its messages.
FLAGS = {"n_components": "--k", "max_iter": "--iters", "tol": "--tol",
         "random_state": "--seed", "color_space": "--color-space", "spatial": "--spatial",
         "mrf": "--mrf",
         "smooth": "--smooth", "min_region": "--min-region", "merge": "--merge",
         "hierarchy": "--hierarchy", "n_regions": "--regions", "level": "--level",
         "merge_order": "--merge-order",
         "k_max": "--k-max", "criterion": "--k-criterion", "fps": "--fps",
         "preset": "--preset", "labels": "--labels", "jobs": "--jobs", "dask": "--dask",
         "out": "--out",
         "overwrite": "--overwrite", "truth": "--truth", "model": "--model",
         "save_model": "--save-model", "shared_model": "--shared-model", "image": "--image",
         "mask": "--mask", "channel_axis": "--channel-axis", "image_path": "--image"}


def in_flags(message, parameters):
    """A library message with each parameter's name (its first mention) as the CLI's flag.

    A name inside a path (``/tmp/run/out: ...``) is a folder, not the parameter.
    """
    for name in parameters:
        if name in FLAGS:
            message = re.sub(rf"(?<![\w./\\-]){re.escape(name)}(?![\w/\\-])",
                             lambda _, flag=FLAGS[name]: flag, message, count=1)
    return message


def describe(exc):
    """An error's one line as the command line says it: its parameters as flags."""
    return in_flags(str(exc), getattr(exc, "parameters", ()))


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    text = str(message)
    return f"warning: {in_flags(text, getattr(message, 'parameters', ()))}\n"


def _options(args):
    """The segmentation options the flags give: each option from its flag in ``FLAGS``."""
    from gmmseg.options import Options

    return Options(**{name: getattr(args, _dest(name))
                      for name in Options.names("fit", "features", "labelling")})


def _run(args):
    """Do what the flags ask; return the records (or a batch's summary rows)."""
    from gmmseg import batch
    from gmmseg.pipeline import segment_file

    options = _options(args)
    if args.batch and args.video is not None:
        from gmmseg import clips

        if args.k == "auto":
            raise utils.InputError("--k auto is for images; give a video its k")
        return clips.run_clips(args.video, args.k, options=options, out=args.out,
                               jobs=args.jobs, dask=args.dask, resume=args.resume,
                               overwrite=args.overwrite, fps=args.fps, preset=args.preset,
                               labels=args.labels or "mkv", model=args.model,
                               describe=describe)
    if args.batch:
        n_components = args.k if args.k in (None, "auto") or len(args.k) > 1 else args.k[0]
        return batch.run_batch(args.image, n_components, options=options, out=args.out,
                               jobs=args.jobs, dask=args.dask, resume=args.resume,
                               truth=args.truth, overwrite=args.overwrite, k_max=args.k_max,
                               criterion=args.k_criterion, model=args.model,
                               shared_model=args.shared_model, save_model=args.save_model,
                               channel_axis=args.channel_axis, describe=describe)
    if args.video is None:
        if args.model is None:
            # The fit's libraries imported while the image is read and its colours
            # counted, until fit_segment waits for them (gmmseg.preload).
            preload.start()
        return segment_file(args.image[0], args.k, options=options, out=args.out,
                            show=args.show, k_max=args.k_max, criterion=args.k_criterion,
                            truth=args.truth, overwrite=args.overwrite,
                            model=args.model, save_model=args.save_model, mask=args.mask,
                            channel_axis=args.channel_axis)
    from gmmseg.params import check_components
    from gmmseg.video import segment_video

    if args.model is not None:  # the model's k, or the one --k that must equal it
        ks = [args.k[0] if args.k else None]
    else:
        ks = check_components(args.k, args.k_max)
    if ks == "auto":
        raise utils.InputError("--k auto is for images; give a video its k")
    return [segment_video(args.video[0], k, options=options, out=args.out, fps=args.fps,
                          show=args.show, overwrite=args.overwrite, preset=args.preset,
                          model=args.model, labels=args.labels or "mkv")
            for k in ks]


def _report(records, args):
    """The console lines: one per record, the scores, the choice of k, the sweep table."""
    for record in records:
        stem = outputs.file_stem(record.get("video", record.get("image")))
        files = outputs.OutputNames(args.out, stem, record["k"]).pattern
        if "video" in record:
            print(f"k={record['k']}: {record['frames']} frames, "
                  f"{len(record['refit_frames'])} refitted, "
                  f"{record['frames'] / record['seconds']:.1f} frames/s -> {files}")
            continue
        warm_up = (f"{record['warm_up_iterations']} warm-up + "
                   if record["warm_up_iterations"] else "")
        regions = f"{record['n_regions']} regions, " if "n_regions" in record else ""
        if "fine_regions" in record:
            regions = f"{record['n_regions']} of {record['fine_regions']} fine regions, "
        print(f"k={record['k']}: {warm_up}{record['iterations']} EM iterations, "
              f"log-likelihood {record['log_likelihood']:.4f} nats/pixel, "
              f"BIC {record['bic']:.4g}, {regions}{record['seconds']:.2f} s -> {files}")
        if "truth" in record:
            scores = record["truth"]
            scored = f"{record['n_regions']} regions" if "n_regions" in record else "labels"
            print(f"k={record['k']}: {scored}: PRI {scores['pri']:.4f}, "
                  f"VoI {scores['voi']:.4f} bits, Covering {scores['covering']:.4f}, "
                  f"ARI {scores['ari']:.4f} against "
                  f"{scores['humans']} human segmentation(s) in {scores['path']}")
        if "selection" in record:
            print(selection.selection_reason(record))
    if args.video is None and len(records) > 1:
        print(selection.sweep_table(records))


def main(argv=None):
    """Run the command line; return the exit code."""
    args = parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        records = _run(args)
    except utils.InputError as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.batch:
        return _report_batch(records, args)
    _report(records, args)
    return 0


def _report_batch(rows, args):
    """The batch's last console line; exit code 1 when an image failed."""
    from gmmseg.batch import score_means

    failed = sorted({row["image"] for row in rows if row["error"]})
    images = len({row["image"] for row in rows})
    means = score_means(rows)
    scores = (f"; mean PRI {means['pri']:.4f}, VoI {means['voi']:.4f} bits"
              if means["scored"] else "")
    if means["covered"]:
        scores += f", Covering {means['covering']:.4f}"
        if means["covered"] < means["scored"]:
            scores += f" (of the {means['covered']} rows recorded with it)"
    print(f"{images} {'clip' if args.video else 'image'}(s), {len(failed)} failed, "
          f"{len(rows)} row(s){scores} -> "
          f"{os.path.join(args.out, 'summary.csv')}")
    return 1 if failed else 0
