"""The public entry: segment an image with every option, each parameter checked once.

``segment`` takes an array or a path and returns the labels and the fitted
mixture; ``segment_file`` is the command line's job for one image file: one or
several k (or k chosen automatically), scores against human segmentations, and
the files written into a folder. Both check every argument before any work
(``gmmseg.params``), and both fit through the lab's own functions
(``segmentation_GMM``), so the default result is the lab's.
"""

import os
import time
import warnings

import numpy as np

import segmentation_GMM as sg
import utils
from gmmseg import features, figures, scores, selection
from gmmseg.hierarchy import DEFAULT_LEVEL, build_hierarchy, fine_min_region, save_hierarchy
from gmmseg.hierarchy import cut as cut_hierarchy
from gmmseg.params import (
    check_choice,
    check_components,
    check_image,
    check_int,
    check_segment_params,
)
from gmmseg.regions import connected_regions, merge_regions

__all__ = ["segment", "segment_file"]


def segment(image, n_components=4, *, max_iter=100, tol=sg.TOL, random_state=0,
            color_space="rgb", spatial=0.0, smooth=0.0, min_region=0, merge=0.0,
            hierarchy=False, regions=None, level=None, progress=True):
    """Fit a Gaussian mixture to an image's pixels and label every pixel.

    With the defaults this is the lab's segmentation (``segmentation_GMM.segment``):
    Z-scored colours, k-means seeding, EM, each pixel given its most likely
    component. The other options change the features, the labelling or add
    regions; all are off by default.

    Parameters
    ----------
    image : ndarray or str
        An array of shape (h, w) (grey), (h, w, 1), (h, w, 2), (h, w, 3) or
        (h, w, 4) (alpha is dropped), or the path of an image file.
    n_components : int, default=4
        K, from 1 to 256 (the labels are 8-bit). An image with fewer distinct
        colours gets that many components, with a warning.
    max_iter : int, default=100
        At most this many EM steps (up to ``params.MAX_ITER``).
    tol : float, default=1e-4
        EM stops when the mean log-likelihood per pixel changes by less (nats).
    random_state : int, default=0
        Seeds k-means++ (and the pixel sample of ``spatial``); 0 .. 2**32 - 1.
    color_space : {"rgb", "lab"}, default="rgb"
        The colour features (``features.colour_features``); "lab" needs a
        colour image.
    spatial : float, default=0
        Weight of each pixel's Z-scored row and column appended to its features
        (0 .. ``params.SPATIAL_MAX``); 0 leaves them out.
    smooth : float, default=0
        Sigma in pixels of the Gaussian that blurs each component's
        responsibilities before the argmax (``features.smoothed_argmax``); at
        most a quarter of the image's shorter side.
    min_region : int, default=0
        If above 0, split the labels into connected regions and fold regions of
        fewer pixels into their neighbours (``regions.connected_regions``).
    merge : float, default=0
        If above 0, also merge touching regions whose mean colours differ by
        less than this CIELAB Delta E (``regions.merge_regions``).
    hierarchy : bool, default=False
        Merge the connected regions pair by pair into one
        (``hierarchy.build_hierarchy``) and cut the hierarchy at
        ``hierarchy.DEFAULT_LEVEL``, or where ``regions`` or ``level`` says
        (either implies ``hierarchy``; not with ``merge``). ``min_region`` is
        then at least ``hierarchy.fine_min_region`` of the image.
    regions : int, optional
        Cut the hierarchy into this many regions (fewer only if there are
        fewer fine regions).
    level : float, optional
        Cut the hierarchy at this height (``hierarchy.build_hierarchy``).
    progress : bool, default=True
        Show EM's tqdm bar (on a terminal only).

    Returns
    -------
    result : dict
        ``labels`` (h, w) uint8; ``gmm`` (the fitted ``segmentation_GMM.GMM``:
        ``mus``, ``covs``, ``priors``, ``log_likelihood_history``); ``mean``
        and ``std`` (c,) of the features' Z-score; ``means_rgb`` (K, c), each
        component's mean colour in the image's units; ``n_colours``;
        ``warm_up_history`` (``segmentation_GMM.fit_colours``); ``seconds``; with ``min_region``,
        ``merge`` or ``hierarchy`` also ``regions`` (h, w) int32; with
        ``hierarchy`` also ``fine`` (h, w) int32, the fine regions, and
        ``merges`` (n_fine - 1, 4), the linkage matrix of their merges
        (``gmmseg.cut_hierarchy`` takes any other cut of them).

    Raises
    ------
    ValueError
        ``utils.InputError``, naming the parameter, for any bad argument.

    Examples
    --------
    >>> import numpy as np, gmmseg
    >>> image = np.zeros((20, 30, 3), np.uint8); image[:, 15:] = 200
    >>> result = gmmseg.segment(image, 2, progress=False)
    >>> np.unique(result["labels"][:, :15]).size, np.unique(result["labels"][:, 15:]).size
    (1, 1)
    """
    image = check_image(image)
    params = check_segment_params(image, max_iter, tol, random_state, color_space, spatial,
                                  smooth, min_region, merge, hierarchy, regions, level)
    ncomp = check_int(n_components, "n_components", 1, sg.MAX_COMPONENTS)
    return _segment(image, ncomp, progress=progress, **params)


def _segment(image, ncomp, *, max_iter, tol, random_state, color_space, spatial, smooth,
             min_region, merge, hierarchy, regions, level, progress):
    """``segment`` on checked arguments."""
    start = time.perf_counter()
    h, w = image.shape[:2]
    top = utils.max_value(image)
    colour_features = None if color_space == "rgb" else (
        lambda colours: features.colour_features(colours, color_space, top))
    if spatial > 0:
        colours_norm, counts, inverse, mean, std = sg.normalised_colours(image, colour_features)
        gmm, component_gamma = features.fit_spatial(colours_norm, inverse, (h, w), ncomp,
                                                    spatial, max_iter, tol, random_state,
                                                    progress)
        result = {"gmm": gmm, "mean": mean, "std": std, "n_colours": len(counts),
                  "warm_up_history": []}
        labels = (features.smoothed_argmax(component_gamma, gmm.ncomp, (h, w), smooth)
                  if smooth > 0 else
                  features.spatial_argmax(gmm, colours_norm, inverse, (h, w), spatial))
    else:
        result = sg.segment(image, ncomp, max_iter, tol, random_state, progress,
                            features=colour_features)
        gamma, inverse = result.pop("gamma"), result.pop("inverse")
        labels = result["labels"]
        if smooth > 0:
            labels = features.smoothed_argmax(lambda k: gamma[inverse, k], result["gmm"].ncomp,
                                              (h, w), smooth)
    region_map = None
    if min_region > 0 or merge > 0 or hierarchy:
        if hierarchy:
            min_region = max(min_region, fine_min_region((h, w)))
        region_map, labels = connected_regions(labels, min_region)
    if merge > 0:
        region_map = merge_regions(region_map, image, merge)
    if hierarchy:
        result["fine"], result["merges"] = region_map, build_hierarchy(region_map, image)
        if regions is None and level is None:
            level = DEFAULT_LEVEL
        elif regions is not None and regions > len(result["merges"]) + 1:
            warnings.warn(f"regions (--regions) {regions}: the hierarchy has "
                          f"{len(result['merges']) + 1} fine regions; all are kept", stacklevel=3)
        region_map = cut_hierarchy(region_map, result["merges"], regions, level)
    if color_space != "rgb" or spatial > 0 or region_map is not None:
        # The components' means are in other units (or include the position):
        # each label's mean colour is what a reader of the figure expects.
        result["means_rgb"] = utils.label_means(image, labels, result["gmm"].ncomp)
    result["labels"] = labels
    if region_map is not None:
        result["regions"] = region_map
    result["seconds"] = time.perf_counter() - start
    return result


def segment_file(image_path=sg.DEFAULT_IMAGE, n_components=4, *, max_iter=100, tol=sg.TOL,
                 random_state=0, out="results", show=False, progress=True,
                 k_max=selection.K_MAX, criterion="gain", color_space="rgb", spatial=0.0,
                 smooth=0.0, min_region=0, merge=0.0, hierarchy=False, regions=None, level=None,
                 truth=None, overwrite=False):
    """Segment one image file for one or several K and write the results.

    For each K, the files of ``utils.save_result`` (labels, figure, JSON
    record) and, with regions, ``<stem>_k<K>_regions.png``; with the hierarchy
    also ``<stem>_k<K>_hierarchy.npz`` (``hierarchy.save_hierarchy``) and
    ``<stem>_k<K>_hierarchy.png`` (several cuts side by side); for several K
    (or "auto") also the sweep's figure and table, ``<stem>_sweep_k<ks>.png``
    and ``.json`` (``sweep_name``). Every argument is checked, the image and
    the truth read, ``out`` tried for writing and searched for another
    input's results of the same names before the first fit.

    Parameters
    ----------
    image_path : str
    n_components : int, sequence of int, or "auto"
        Number(s) of components; each is fitted in turn. ``"auto"`` fits
        K = 2 .. ``k_max`` and keeps the one ``criterion`` prefers
        (``selection.choose_k``).
    max_iter, tol, random_state, color_space, spatial, smooth, min_region, merge
    hierarchy, regions, level, progress
        See ``segment``.
    out : str, default="results"
        Folder for the files (created if missing).
    show : bool, default=False
        Also open each figure in a window.
    k_max : int, default=10
        Largest K tried by ``"auto"``, from 2 to ``params.K_MAX_LIMIT``.
    criterion : {"gain", "bic", "aic"}, default="gain"
        See ``selection.choose_k``.
    truth : str, optional
        Human segmentation(s) of the image (``scores.load_truth``): each
        record then holds ``truth``, the scores of ``scores.truth_scores`` (of
        the regions with ``min_region`` or ``merge``, else of the labels).
    overwrite : bool, default=False
        Replace the results of another input of the same name stem
        (``utils.check_outputs_free``); a rerun on the same image always may.

    Returns
    -------
    records : list of dict
        One JSON record per K (``segmentation_GMM.summary``, plus the options
        and the scores); with ``"auto"``, the chosen K's alone, whose
        ``selection`` says what was compared.
    """
    image = utils.load_image(image_path)
    params = check_segment_params(image, max_iter, tol, random_state, color_space, spatial,
                                  smooth, min_region, merge, hierarchy, regions, level)
    ks = check_components(n_components, k_max)
    criterion = check_choice(criterion, "criterion", selection.CRITERIA)
    auto = ks == "auto"
    if auto:
        ks = range(2, k_max + 1)
    truths = None
    if truth is not None:
        truths = scores.load_truth(truth)
        scores.check_truth(truths, image.shape[:2], truth)
    utils.prepare_out(out)
    stem = utils.file_stem(image_path)
    sweep = sweep_base(out, stem, ks, auto)
    options = {name: params[name] for name in RECORDED_OPTIONS}
    options["source_sha256"] = utils.fingerprint(image_path)
    utils.check_outputs_free([os.path.join(out, f"{stem}_k{k}.json") for k in ks]
                             + ([sweep + ".json"] if sweep else []), image_path,
                             options["source_sha256"], overwrite)
    fits = []
    for k in ks:
        result = _segment(image, k, progress=progress, **params)
        record = sg.summary(result, image_path, k, params["random_state"])
        record.update(options)
        segmentation = result.get("regions", result["labels"])
        if "regions" in result:
            record["n_regions"] = int(segmentation.max()) + 1
        if "merges" in result:
            record["fine_regions"] = len(result["merges"]) + 1
        if truths is not None:
            record["truth"] = {"path": os.fspath(truth),
                               **scores.truth_scores(segmentation, truths)}
        if not auto:  # written at once, so an interrupted sweep keeps what it finished
            _save(image, result, record, out, stem, show)
        fits.append((result, record))
        if auto and result["gmm"].ncomp < k:
            break  # the image has fewer colours than k: a larger k fits the same mixture
    records = [record for _, record in fits]
    chosen = selection.choose_k(records, criterion)
    if auto:
        chosen["selection"] = {"criterion": criterion, "k": [r["k"] for r in records],
                               "bic": [r["bic"] for r in records],
                               "aic": [r["aic"] for r in records],
                               "log_likelihood": [r["log_likelihood"] for r in records]}
        _save(image, fits[records.index(chosen)][0], chosen, out, stem, show)
    if sweep:
        if len(fits) > 1:
            figures.visualize_sweep(image, [result["labels"] for result, _ in fits],
                                    [np.asarray(record["means_rgb"]) for record in records],
                                    records, marked_k=chosen["k"], criterion=criterion,
                                    title=f"{stem}: GMM for k = "
                                    f"{', '.join(str(record['k']) for record in records)}",
                                    path=sweep + ".png", show=show)
        # Written last: its presence says the whole run finished (batch --resume).
        utils.write_json(sweep + ".json", {
            **{name: records[0][name] for name in ("image", "source_sha256", "seed",
                                                     *RECORDED_OPTIONS)},
            "criterion": criterion, "marked_k": chosen["k"],
            "fits": [{name: record[name] for name in SWEEP_FIELDS if name in record}
                     for record in records]})
    return [chosen] if auto else records


# The settings every record keeps beside the fit, so that a rerun can tell
# whether earlier results were made the same way (batch --resume).
RECORDED_OPTIONS = ("max_iter", "tol", "color_space", "spatial", "smooth", "min_region",
                    "merge", "hierarchy", "regions", "level")

# What the sweep's JSON keeps of each fit: the table's columns.
SWEEP_FIELDS = ("k", "n_components", "log_likelihood", "bic", "aic", "iterations",
                "warm_up_iterations", "converged", "seconds", "n_regions", "fine_regions",
                "truth")


def sweep_base(out, stem, ks, auto=False):
    """Where a run's sweep files go, without the extension; None for one k (not "auto").

    Its JSON is the last file a run writes (``segment_file``): batch
    ``--resume`` looks for it.
    """
    ks = list(ks)
    return os.path.join(out, sweep_name(stem, ks)) if auto or len(ks) > 1 else None


def sweep_name(stem, ks):
    """The sweep's file name without extension, after the k it compares.

    ``<stem>_sweep_k2-6`` for a run of consecutive k (``--k 2 3 4 5 6``, or
    ``--k auto`` up to 6), ``<stem>_sweep_k2_4_8`` otherwise: two sweeps over
    different k never share a file.
    """
    ks = list(ks)
    if ks == list(range(ks[0], ks[-1] + 1)):
        return f"{stem}_sweep_k{ks[0]}-{ks[-1]}"
    return f"{stem}_sweep_k" + "_".join(map(str, ks))


def _save(image, result, record, out, stem, show):
    """The lab's three files (``utils.save_result``), the region map and the hierarchy.

    The region map is a 16-bit PNG, or a ``.npy`` when there are more regions
    than 16 bits can number; the hierarchy an ``.npz`` and a figure of cuts.
    """
    region_map = result.get("regions")
    base = os.path.join(out, f"{stem}_k{record['k']}")
    if "merges" in result:
        save_hierarchy(base + "_hierarchy.npz", result["fine"], result["merges"])
        figures.visualize_cuts(image, result["fine"], result["merges"], record["n_regions"],
                               title=f"{stem}: region hierarchy from the GMM, k = "
                               f"{record['k']}", path=base + "_hierarchy.png", show=show)
    if region_map is not None and region_map.max() < 2**16:
        utils.write_png(base + "_regions.png", region_map.astype(np.uint16))
    elif region_map is not None:
        utils.write_atomic(base + "_regions.npy", lambda tmp: np.save(tmp, region_map))
    utils.save_result(image, result["labels"], record, out, stem, show, region_map)
