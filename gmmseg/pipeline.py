"""The public entries for an image: ``segment`` and ``segment_file``.

``segment`` takes an array, a PIL image or a path and returns a
``Segmentation``; ``segment_file`` is the command line's job for one image
file: one or several k (or k chosen automatically), or a given model; scores
against human segmentations; the files written into a folder. Both check
every argument before any work (``gmmseg.options``, ``gmmseg.params``), and
both fit through ``gmmseg.model``, which fits with the lab's own functions
(``segmentation_GMM``), so the default result is the lab's.
"""

import os
import tempfile

import numpy as np

import segmentation_GMM as sg
import utils
from gmmseg import figures, outputs, readers, scores, selection
from gmmseg.model import MixtureModel, fit_segment, load_model
from gmmseg.options import Options, make_options
from gmmseg.params import ParameterError, check_choice, check_components, check_int
from gmmseg.readers import check_image, check_mask

__all__ = ["segment", "segment_file"]


def segment(image, n_components=4, *, options=None, progress=True, mask=None,
            channel_axis="auto", **kwargs):
    """Fit a Gaussian mixture to an image's pixels and label every pixel.

    ``fit`` and ``MixtureModel.segment`` of one image, in one pass: the fit's
    last E-step labels the pixels. With the default options this is the lab's
    segmentation (``segmentation_GMM.segment``): Z-scored colours, k-means
    seeding, EM, each pixel given its most likely component.

    Parameters
    ----------
    image : ndarray, PIL image or str
        An image or a volume: an array, 2-D or 3-D with channels or none
        (``channel_axis``), of integers of any width or floats; a PIL image;
        or the path of a file (``gmmseg.readers.read``: photos, 16-bit PNG,
        TIFF stacks of any channels, NIfTI). By default (h, w) is grey,
        (h, w, c) with c up to 4 an image (alpha dropped), any other 3-D
        array a grey volume (z, y, x), and (z, y, x, c) a volume.
    n_components : int, default=4
        K, from 1 to 256 (the labels are 8-bit). An image with fewer distinct
        colours gets that many components, with a warning.
    options : Options, optional
        Every other option (``gmmseg.Options``: ``max_iter``, ``tol``,
        ``random_state``, ``color_space``, ``spatial``, ``smooth``,
        ``min_region``, ``merge``, ``hierarchy``, ``n_regions``, ``level``);
        keyword arguments of those names replace some.
    progress : bool, default=True
        Show EM's tqdm bar (on a terminal only).
    mask : ndarray or str, optional
        Which pixels (voxels) to fit and label, nonzero inside: an array or a
        file of the image's spatial shape. The outside is labelled
        ``params.MASK_LABEL`` (255).
    channel_axis : int, None or "auto", default="auto"
        The image's axis of channels (``params.image_axes``), None for a
        grey image or volume without one.

    Returns
    -------
    segmentation : Segmentation
        ``labels`` (h, w) or (z, y, x) uint8, ``model`` (the fitted ``MixtureModel``, whose
        ``gmm`` has ``mus``, ``covs``, ``priors``), ``means_rgb``, and
        ``regions``, ``fine``, ``merges`` when the options ask for them (None
        otherwise).

    Raises
    ------
    ValueError
        ``params.ParameterError``, naming the parameter, for any bad argument.

    Examples
    --------
    >>> import numpy as np, gmmseg
    >>> image = np.zeros((20, 30, 3), np.uint8); image[:, 15:] = 200
    >>> result = gmmseg.segment(image, 2, progress=False)
    >>> np.unique(result.labels[:, :15]).size, np.unique(result.labels[:, 15:]).size
    (1, 1)
    """
    options = make_options(options, **kwargs)
    ncomp = check_int(n_components, "n_components", 1, sg.MAX_COMPONENTS)
    image = check_image(image, channel_axis=channel_axis)
    mask = check_mask(mask, image, ncomp)
    options.check_for(image.shape, mask is not None)
    return fit_segment(image, ncomp, options, progress, mask=mask)


def segment_file(image_path=sg.DEFAULT_IMAGE, n_components=None, *, options=None,
                 out="results", show=False, progress=True, k_max=selection.K_MAX,
                 criterion="gain", truth=None, overwrite=False, model=None, save_model=None,
                 mask=None, channel_axis="auto", **kwargs):
    """Segment one image file for one or several K and write the results.

    For each K, the files of ``outputs.save_fit`` (labels, figure, JSON
    record; regions, hierarchy); for several K (or "auto") also the sweep's
    figure and table, ``<stem>_sweep_k<ks>.png`` and ``.json``
    (``outputs.sweep_name``). Every argument is checked, the image and the
    truth read, ``out`` tried for writing and searched for another input's
    results of the same names before the first fit.

    Parameters
    ----------
    image_path : str
    n_components : int, sequence of int, or "auto", optional
        Number(s) of components; each is fitted in turn. ``"auto"`` fits
        K = 2 .. ``k_max`` and keeps the one ``criterion`` prefers
        (``selection.choose_k``). Default 4; with ``model``, the model's K
        (the only one it takes).
    options : Options, optional
        See ``segment``; keyword arguments of the options' names replace some.
    out : str, default="results"
        Folder for the files (created if missing).
    show : bool, default=False
        Also open each figure in a window.
    progress : bool, default=True
        Show EM's tqdm bar (on a terminal only).
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
        (``outputs.check_outputs_free``), and a ``save_model`` file that is
        not a model; a rerun on the same image always may.
    model : MixtureModel or str, optional
        Label the image with this model (or the model file at this path)
        instead of fitting one: its features and fit options are the
        model's; the labelling options (``smooth`` ... ``level``) are
        ``options``'. The record's ``model`` says which (``path``, ``sha256``).
    save_model : str, optional
        Write the fitted model there (``MixtureModel.save``): of the one K, or
        of the K that "auto" keeps.
    mask : str, optional
        A file of the image's spatial shape, nonzero where to fit and label
        (``segment``); the record's ``mask`` names it.
    channel_axis : int, None or "auto", default="auto"
        See ``gmmseg.readers.read``; what it decided for a TIFF or NIfTI is
        the record's ``input``.

    Returns
    -------
    records : list of dict
        One JSON record per K (``segmentation_GMM.summary``, plus the options
        and the scores); with ``"auto"``, the chosen K's alone, whose
        ``selection`` says what was compared.
    """
    options = make_options(options, **kwargs)
    criterion = check_choice(criterion, "criterion", selection.CRITERIA)
    image, source = readers.read(utils.file_path(image_path, "image_path"),
                                 channel_axis=channel_axis)
    mask_path = mask
    if model is not None:
        model, model_record = resolve_model(model)
        if save_model is not None:
            raise ParameterError(("save_model", "model"), "save_model writes a fitted model; "
                                                          "with model nothing is fitted")
        labelling = model.check_options(options)
        options = model.label_options(labelling)
        model.check_image(image, options, mask is not None)
        model.check_components(n_components, k_max)
        ks = [model.n_components]
    else:
        options.check_for(image.shape, mask is not None)
        ks = check_components(4 if n_components is None else n_components, k_max)
    if mask is not None:
        mask = check_mask(utils.file_path(mask, "mask"), image, k_max if ks == "auto" else max(ks))
        if save_model is not None and ks != "auto" and len(ks) > 1:
            raise ParameterError(("save_model", "n_components"),
                                 "save_model keeps one model: give one n_components, or auto")
    auto = ks == "auto"
    if auto:
        ks = range(2, k_max + 1)
    truths = None
    if truth is not None:
        if image.ndim == 4:
            raise ParameterError("truth", "truth scores 2-D images, not volumes")
        truths = scores.load_truth(truth)
        scores.check_truth(truths, image.shape[:2], truth)
    outputs.prepare_out(out)
    stem = outputs.file_stem(image_path)
    sweep = outputs.sweep_base(out, stem, ks, auto)
    if save_model is not None:
        check_model_free(save_model, overwrite, [
            image_path, *(name for k in ks for name in outputs.OutputNames(out, stem, k).files),
            *([sweep + ".json", sweep + ".png"] if sweep else [])])
    provenance = {**options.record(), "source_sha256": outputs.fingerprint(image_path)}
    if source.record() is not None:
        provenance["input"] = source.record()
    if mask is not None:
        provenance["mask"] = {"path": os.fspath(mask_path),
                              "sha256": outputs.fingerprint(mask_path),
                              "n_inside": int(mask.sum())}
    if model is not None:
        provenance["model"] = model_record
    # Claimed from the collision check to the last file: another run into this out with
    # this stem waits, or, for another input's, is refused (outputs.claim).
    with outputs.claim(out, stem, provenance["source_sha256"], overwrite):
        outputs.check_outputs_free([outputs.OutputNames(out, stem, k).record for k in ks]
                                   + ([sweep + ".json"] if sweep else []), image_path,
                                   provenance["source_sha256"], overwrite)
        fits = []
        for k in ks:
            if model is None:
                result = fit_segment(image, k, options, progress, mask=mask)
            else:
                result = model.segment(image, mask=mask, **labelling)
            record = {**sg.summary(result, image_path, k, options.random_state), **provenance}
            if result.regions is not None:
                record["n_regions"] = int(result.regions.max()) + 1
            if result.merges is not None:
                record["fine_regions"] = len(result.merges) + 1
            if truths is not None:
                record["truth"] = {"path": os.fspath(truth),
                                   **scores.truth_scores(result.segments, truths)}
            if not auto:  # written at once, so an interrupted sweep keeps what it finished
                outputs.save_fit(image, result, record, outputs.OutputNames(out, stem, k), stem,
                                 show)
            fits.append((result, record))
            if auto and result.model.n_components < k:
                break  # the image has fewer colours than k: a larger k fits the same mixture
        records = [record for _, record in fits]
        chosen = selection.choose_k(records, criterion)
        kept = fits[records.index(chosen)][0]
        if auto:
            chosen["selection"] = {"criterion": criterion, "k": [r["k"] for r in records],
                                   "bic": [r["bic"] for r in records],
                                   "aic": [r["aic"] for r in records],
                                   "log_likelihood": [r["log_likelihood"] for r in records]}
            outputs.save_fit(image, kept, chosen, outputs.OutputNames(out, stem, chosen["k"]),
                             stem, show)
        if save_model is not None:
            kept.model.save(save_model)
        if sweep:
            if len(fits) > 1:
                figures.visualize_sweep(*figures.display_view(
                                            image, [result.labels for result, _ in fits],
                                            [np.asarray(record["means_rgb"])
                                             for record in records]),
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
RECORDED_OPTIONS = tuple(Options.recorded().values())

# What the sweep's JSON keeps of each fit: the table's columns.
SWEEP_FIELDS = ("k", "n_components", "log_likelihood", "bic", "aic", "iterations",
                "warm_up_iterations", "converged", "seconds", "n_regions", "fine_regions",
                "truth")


def resolve_model(model):
    """A model and what a record says of it, from a ``MixtureModel`` or a model file.

    Returns
    -------
    model : MixtureModel
    record : dict
        ``path`` (the file, or None for a model given as an object) and
        ``sha256`` (of the file, or of the bytes ``save`` would write).
    """
    if isinstance(model, MixtureModel):
        return model, {"path": None, "sha256": model_digest(model)}
    if not isinstance(model, (str, os.PathLike)):
        raise ParameterError("model", f"model must be a MixtureModel or a model file's path, "
                                      f"not {type(model).__name__}")
    return load_model(model), {"path": os.fspath(model), "sha256": outputs.fingerprint(model)}


def model_digest(model):
    """The SHA-256 of the file ``model.save`` writes, without writing it."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(model.to_dict(), indent=1).encode()).hexdigest()


def check_model_free(path, overwrite=False, taken=()):
    """Refuse, before any fit, a ``save_model`` path that cannot or may not take the model.

    Parameters
    ----------
    path : str
    overwrite : bool, default=False
        Replace a file that is not a model.
    taken : iterable of str
        The run's inputs and the files it writes: never replaced by the model.
    """
    path = utils.file_path(path, "save_model")
    if not path or os.path.isdir(path):
        raise ParameterError("save_model", f"save_model {path!r}: is not a file's path")
    if os.path.realpath(path) in {os.path.realpath(other) for other in taken}:
        raise ParameterError("save_model", f"save_model {path}: is an input or an output of "
                                           f"this run")
    try:
        with tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(path))):
            pass
    except OSError as exc:
        raise ParameterError("save_model", f"save_model {path}: cannot write there "
                                           f"({exc.strerror or exc})") from None
    if overwrite or not os.path.exists(path):
        return
    try:
        load_model(path)
    except utils.InputError:
        raise ParameterError(("save_model", "overwrite"),
                             f"save_model {path}: exists and is not a model; give another "
                             f"path, or overwrite to replace it") from None
