"""A fitted mixture you can keep, share and apply: ``fit``, ``MixtureModel``, ``load_model``.

``fit`` fits the lab's ``GMM`` to one image or to many, on their pooled
distinct colours with summed pixel counts: the same sums EM computes on all
their pixels together, so the same model as a fit on the images stacked into
one. The ``MixtureModel`` it returns labels any image with the same features
and the same Z-score, without refitting (``segment``), and is saved as a
versioned JSON file (``save``, ``load_model``; the format: docs/model.md).
``gmmseg.segment`` is ``fit`` and ``segment`` of one image, sharing the fit's
last E-step instead of running it again.

Examples
--------
>>> import numpy as np, gmmseg
>>> a = np.zeros((8, 8, 3), np.uint8); a[:, 4:] = 200
>>> model = gmmseg.fit([a, a[::-1]], 2, progress=False)
>>> model.segment(a).labels[0]
array([0, 0, 0, 0, 1, 1, 1, 1], dtype=uint8)
"""

import dataclasses
import json
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

import segmentation_GMM as sg
import utils
from gmmseg import features, mrf, params, preload
from gmmseg.hierarchy import label_regions
from gmmseg.options import Options, make_options
from gmmseg.params import (
    MASK_LABEL,
    ParameterError,
    check_components,
    check_int,
)
from gmmseg.readers import check_image, check_mask, inside, spread
from gmmseg.result import Segmentation

__all__ = ["FORMAT", "FORMAT_VERSION", "MixtureModel", "count_colours", "fit",
           "fit_colour_counts", "load_model", "pool_colours"]

FORMAT = "gmmseg-model"
FORMAT_VERSION = 1

# What a fitted model fixes: its features and how it was fitted. The other
# options say how an image's labels become regions, and apply to any image.
FIT_OPTIONS = Options.names("fit", "features")
LABEL_OPTIONS = Options.names("labelling")

# The dtypes of images (``readers.check_image``): a model applies to images of
# its own, or, fitted on floats, to any floats.
IMAGE_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                "float16", "float32", "float64")


@dataclasses.dataclass(eq=False)
class MixtureModel:
    """A Gaussian mixture fitted to images' colours, and how pixels become its points.

    Built by ``fit`` or ``load_model``, not by hand.

    Attributes
    ----------
    gmm : segmentation_GMM.GMM
        The lab's mixture: ``mus`` (K, d), ``covs`` (K, d, d), ``priors``
        (K,), in Z-scored units; d is the channels, plus 2 with ``spatial``.
        Its ``log_likelihood_history`` and ``converged`` are the fit's.
    mean, std : ndarray of shape (c,)
        The Z-score of the colour features, over every pixel fitted on.
    n_channels : int
        c, the channels of the images it applies to (1 grey, 3 colour).
    dtype : str
        The images' dtype (``IMAGE_DTYPES``): an 8-bit model's Z-score means
        nothing to a 16-bit image.
    top : float
        Full intensity of the images fitted on (``utils.max_value``), which
        CIELAB's conversion divides by.
    options : Options
        The options it was fitted with; ``segment`` applies their labelling
        part (``smooth`` .. ``level``) unless told otherwise.
    n_images, n_pixels, n_colours : int
        What it was fitted on: images, pixels, and their distinct colours.
    warm_up_history : list of float
        EM on the colour histogram before the exact steps (``fit_colours``).
    """

    gmm: sg.GMM
    mean: np.ndarray
    std: np.ndarray
    n_channels: int
    dtype: str
    top: float
    options: Options
    n_images: int
    n_pixels: int
    n_colours: int
    warm_up_history: list

    @property
    def n_components(self):
        """K, the number of components."""
        return self.gmm.ncomp

    def segment(self, image, *, options=None, mask=None, channel_axis="auto", **labelling):
        """Label every pixel of an image with its most likely component; no refit.

        Parameters
        ----------
        image : ndarray, PIL image or str
            As ``gmmseg.segment`` takes it, with the model's number of channels.
        options : Options, optional
            Its labelling options replace the model's where they are not at
            their defaults (``check_options``).
        mask, channel_axis
            As ``gmmseg.segment`` takes them.
        **labelling
            Options that turn labels into regions, replacing the model's:
            ``smooth``, ``min_region``, ``merge``, ``hierarchy``,
            ``n_regions``, ``level``. The fit's (``max_iter``, ``tol``,
            ``random_state``, ``color_space``, ``spatial``) are the model's.

        Returns
        -------
        segmentation : Segmentation
            ``log_likelihood_history`` holds one value, the image's mean
            log-likelihood per pixel; ``converged`` is None (no EM ran).
        """
        start = time.perf_counter()
        image = check_image(image, channel_axis=channel_axis)
        if options is not None:
            labelling = {**self.check_options(make_options(options)), **labelling}
        options = self.label_options(labelling)
        mask = check_mask(mask, image, self.n_components)
        self.check_image(image, options, mask is not None)
        colours, counts, inverse = sg.distinct_colours(inside(image, mask))
        colours_norm, _, _ = sg.zscore_colours(colours, counts, self._colour_features(),
                                               self.mean, self.std)
        return self._label(image, colours_norm, counts, inverse, options, start, mask=mask)

    def label_options(self, labelling):
        """The model's options with some labelling options replaced, checked."""
        for name, value in labelling.items():
            if name in FIT_OPTIONS and value != getattr(self.options, name):
                raise ParameterError(name, f"{name} is fixed by the model's fit "
                                           f"({getattr(self.options, name)!r}), not {value!r}")
        return make_options(self.options, **labelling)

    def check_options(self, options):
        """The labelling options ``options`` asks of this model, for a run that applies it.

        An option at its default is not asked for: the model's own value
        holds (as a flag left out on the command line). An option of the fit
        (``FIT_OPTIONS``) may otherwise only equal the model's; any other value
        asks for another model.

        Returns
        -------
        labelling : dict
            The labelling options (``LABEL_OPTIONS``) ``options`` changes, for
            ``segment``.
        """
        default = Options()
        for name in FIT_OPTIONS:
            value = getattr(options, name)
            if value != getattr(default, name) and value != getattr(self.options, name):
                raise ParameterError(name, f"{name} {value!r}: the model was fitted with "
                                           f"{getattr(self.options, name)!r}")
        return {name: getattr(options, name) for name in LABEL_OPTIONS
                if getattr(options, name) != getattr(default, name)}

    def check_components(self, n_components, k_max=None):
        """Refuse an ``n_components`` other than None or the model's K."""
        asked = None if n_components is None else check_components(n_components, k_max)
        if asked not in (None, [self.n_components]):
            shown = asked if asked == "auto" else " ".join(map(str, asked))
            raise ParameterError("n_components", f"n_components {shown}: the model has "
                                                 f"{self.n_components} components")

    def check_image(self, image, options=None, masked=False):
        """Refuse an image the model cannot label (channels, size-bound options)."""
        c = image.shape[-1]
        if c != self.n_channels:
            raise ParameterError("image", f"image has {c} channel{'s' if c > 1 else ''}; the "
                                          f"model was fitted on {self.n_channels}-channel images")
        kind = image.dtype.name
        if kind != self.dtype and not (image.dtype.kind == "f" and self.dtype.startswith("float")):
            raise ParameterError("image", f"image is {kind}; the model was fitted on "
                                          f"{self.dtype} images")
        (options or self.options).check_for(image.shape, masked)

    def _colour_features(self):
        return _features(self.options.color_space, self.top)

    def _label(self, image, colours_norm, counts, inverse, options, start, fitted=False,
               gamma=None, mask=None, pixel_gamma=None):
        """Labels, regions and means of one image in the model's units.

        ``colours_norm`` are the image's Z-scored distinct colours, ``counts``
        their pixels and ``inverse`` each pixel's colour. ``fitted``: the image
        is the one the model was fitted on, whose EM history is the model's;
        ``gamma`` is then the fit's last E-step on these colours (without
        ``spatial``), which need not run again; with ``mrf``, ``pixel_gamma``
        is its last E-step, each pixel's (n_pixels, K). With a ``mask``, the
        colours are those of the pixels inside, and the outside is ``MASK_LABEL``.
        """
        shape = image.shape[:-1]
        h, w = shape[:2]  # with spatial, which takes 2-D images alone
        gmm, spatial, smooth = self.gmm, options.spatial, options.smooth
        history = None
        if spatial > 0:
            if smooth > 0:
                labels = features.smoothed_argmax(
                    features.spatial_gamma(gmm, colours_norm, inverse, (h, w), spatial),
                    gmm.ncomp, (h, w), smooth)
            else:
                labels = features.spatial_argmax(gmm, colours_norm, inverse, (h, w), spatial)
            if not fitted:
                history = [features.spatial_log_likelihood(gmm, colours_norm, inverse, (h, w),
                                                           spatial)]
        else:
            if not fitted:
                # BLAS on one thread, as in the fit: the products are too thin
                # to share, and the E-step then equals the fit's to the bit.
                with threadpool_limits(limits=1, user_api="blas"):
                    gamma, log_likelihood = gmm.inference(colours_norm, counts)
                history = [log_likelihood / inverse.size]
                if options.mrf > 0:  # the prior's E-steps, the parameters as they are
                    pixel_gamma = mrf.mean_field(gmm, colours_norm, counts, inverse,
                                                 mrf.layout(shape, mask), options.mrf,
                                                 options.max_iter, update=False,
                                                 progress=False)[0]
            if smooth > 0:
                labels = features.smoothed_argmax(
                    lambda k: spread(gamma[inverse, k] if pixel_gamma is None
                                     else pixel_gamma[:, k], mask, 0.0),
                    gmm.ncomp, shape, smooth)
                if mask is not None:
                    labels[~mask] = MASK_LABEL
            else:
                pixel_labels = (np.argmax(gamma, axis=1).astype(np.uint8)[inverse]
                                if pixel_gamma is None
                                else np.argmax(pixel_gamma, axis=1).astype(np.uint8))
                labels = spread(pixel_labels, mask, MASK_LABEL).reshape(shape)
        labels, regions, fine, merges = label_regions(image, labels, options)
        if options.color_space != "rgb" or spatial > 0 or regions is not None:
            # The components' means are in other units (or include the position):
            # each label's mean colour is what a reader of the figure expects.
            means_rgb = utils.label_means(inside(image, mask), inside(labels, mask), gmm.ncomp)
        else:
            means_rgb = gmm.mus * self.std + self.mean
        if fitted:
            history, warm_up, converged = (gmm.log_likelihood_history, self.warm_up_history,
                                           gmm.converged)
        else:
            warm_up, converged = [], None
        return Segmentation(labels=labels, model=self, means_rgb=means_rgb,
                            log_likelihood_history=history, warm_up_history=warm_up,
                            converged=converged, n_colours=len(counts), regions=regions,
                            fine=fine, merges=merges, seconds=time.perf_counter() - start,
                            mask=mask)

    def to_dict(self):
        """The model as the JSON object ``save`` writes (see docs/model.md)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "n_components": self.n_components,
            "n_channels": self.n_channels,
            "dtype": self.dtype,
            "top": self.top,
            "options": dataclasses.asdict(self.options),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "mus": self.gmm.mus.tolist(),
            "covs": self.gmm.covs.tolist(),
            "priors": self.gmm.priors.tolist(),
            "fit": {"n_images": self.n_images, "n_pixels": self.n_pixels,
                    "n_colours": self.n_colours, "converged": self.gmm.converged,
                    "log_likelihood_history": self.gmm.log_likelihood_history,
                    "warm_up_log_likelihood_history": self.warm_up_history},
        }

    def save(self, path):
        """Write the model to ``path`` as JSON, atomically.

        Floats are written as Python's shortest round-tripping repr, so a
        loaded model holds the very same numbers and labels every image as
        this one does.
        """
        utils.write_atomic(utils.file_path(path), lambda tmp: _write_text(
            tmp, json.dumps(self.to_dict(), indent=1)))


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def fit(images, n_components=4, *, options=None, progress=True, mask=None, channel_axis="auto",
        **kwargs):
    """Fit one mixture to one image or to many, on their pooled distinct colours.

    Parameters
    ----------
    images : image, or list of images
        An image is an array, a PIL image or a path (as ``gmmseg.segment``
        takes it); a list (or tuple) of them is pooled. All must have the
        same number of channels and the same dtype.
    n_components : int, default=4
        K, from 1 to 256. Fewer distinct colours than K give that many
        components, with a warning.
    options : Options, optional
        The options; keyword arguments (``max_iter=50``, ...) replace some.
    progress : bool, default=True
        Show EM's tqdm bar (on a terminal only).
    mask, channel_axis
        As ``gmmseg.segment`` takes them; a mask for one image alone.

    Returns
    -------
    model : MixtureModel

    Raises
    ------
    ValueError
        ``params.ParameterError`` naming the bad parameter; ``spatial`` with
        several images (each image's position is its own).
    """
    options = make_options(options, **kwargs)
    ncomp = check_int(n_components, "n_components", 1, sg.MAX_COMPONENTS)
    if isinstance(images, (list, tuple)):
        if not images:
            raise ParameterError("images", "images is empty")
        if len(images) > 1:
            if mask is not None:
                raise ParameterError(("mask", "images"), "mask is one image's: fit several "
                                                         "images without it")
            return _fit_pooled(images, ncomp, options, progress, channel_axis)
        images = images[0]
    image = check_image(images, "images", channel_axis)
    mask = check_mask(mask, image, ncomp)
    options.check_for(image.shape, mask is not None)
    return fit_segment(image, ncomp, options, progress, label=False, mask=mask)


def fit_segment(image, ncomp, options, progress=True, label=True, mask=None):
    """Fit a model to one checked image and (``label``) segment it with the fit's E-step.

    With a ``mask`` (``check_mask``), the pixels inside alone. The colours are
    counted while the fit's libraries are imported (``gmmseg.preload``).

    Returns
    -------
    model : MixtureModel, if not ``label``
    segmentation : Segmentation, if ``label``
    """
    start = time.perf_counter()
    preload.start()
    pixels = inside(image, mask)  # a copy with a mask: taken once
    top = utils.max_value(pixels)
    colours, counts, inverse = sg.distinct_colours(pixels)
    preload.wait()  # before the fit's first threadpool_limits (see gmmseg.preload)
    colours_norm, mean, std = sg.zscore_colours(colours, counts,
                                                _features(options.color_space, top))
    gamma = pixel_gamma = None
    if options.spatial > 0:
        gmm = features.fit_spatial(colours_norm, inverse, image.shape[:2], ncomp,
                                   options.spatial, options.max_iter, options.tol,
                                   options.random_state, progress)
        warm_up = []
    elif options.mrf > 0:
        gmm, warm_up, pixel_gamma = mrf.fit(colours_norm, counts, inverse, image.shape[:-1],
                                            ncomp, options, mask, progress)
    else:
        gmm, gamma, warm_up = sg.fit_colours(colours_norm, counts, ncomp, options.max_iter,
                                             options.tol, options.random_state, progress)
    model = MixtureModel(gmm=gmm, mean=mean, std=std, n_channels=image.shape[-1],
                         dtype=image.dtype.name, top=top,
                         options=options, n_images=1,
                         n_pixels=int(counts.sum()), n_colours=len(counts),
                         warm_up_history=warm_up)
    if not label:
        return model
    return model._label(image, colours_norm, counts, inverse, options, start, fitted=True,
                        gamma=gamma, mask=mask, pixel_gamma=pixel_gamma)


def _features(color_space, top):
    """The map from colours to features before the Z-score; None for RGB (as they are)."""
    return None if color_space == "rgb" else (
        lambda colours: features.colour_features(colours, color_space, top))


def check_poolable(options):
    """Refuse options a pooled fit cannot take: position is each image's own."""
    for name in ("spatial", "mrf"):
        if getattr(options, name) > 0:
            raise ParameterError(name, f"{name} needs one image to fit: a pooled model is "
                                       f"fitted on colours alone")


def _fit_pooled(images, ncomp, options, progress, channel_axis="auto"):
    """``fit`` of several images: count each one's colours, pool the counts, fit once."""
    check_poolable(options)
    counted, kinds = [], set()
    for index, image in enumerate(images):
        image = check_image(image, f"images[{index}]", channel_axis)
        options.check_for(image.shape)
        kinds.add((image.shape[-1], image.dtype.str))
        if len(kinds) > 1:
            raise ParameterError("images", f"images mixes {_kinds(kinds)} images: give "
                                           f"images of one type and number of channels")
        counted.append(count_colours(image))
    return fit_colour_counts(counted, ncomp, options, progress)


def count_colours(image):
    """What a pooled fit keeps of one image: ``(colours, counts, top)``.

    The distinct colours (shape (n, c)) in the image's own dtype, which holds
    them exactly in an eighth of the int64 ``distinct_colours`` returns for
    8-bit images (less to pool, and to send from a batch's workers); their
    pixel counts; the image's full intensity (``utils.max_value``).
    """
    colours, counts, _ = sg.distinct_colours(image)
    return colours.astype(image.dtype, copy=False), counts, utils.max_value(image)


def _kinds(kinds):
    return " and ".join(f"{c}-channel {np.dtype(dtype).name}" for c, dtype in sorted(kinds))


def fit_colour_counts(counted, ncomp, options, progress=True):
    """Fit one model to images' distinct colours and counts (``fit``'s pooled step).

    Parameters
    ----------
    counted : list of (colours, counts, top)
        Each image's ``distinct_colours`` (colours of shape (n, c) in the
        image's units, counts of shape (n,)) and ``utils.max_value``; the
        batch's workers count them (``--shared-model``).
    ncomp : int
    options : Options
    progress : bool, default=True

    Returns
    -------
    model : MixtureModel
    """
    check_poolable(options)
    colours, counts = pool_colours([(c, n) for c, n, _ in counted])
    top = max(top for _, _, top in counted)
    colours_norm, mean, std = sg.zscore_colours(colours, counts,
                                                _features(options.color_space, top))
    gmm, _, warm_up = sg.fit_colours(colours_norm, counts, ncomp, options.max_iter, options.tol,
                                     options.random_state, progress)
    return MixtureModel(gmm=gmm, mean=mean, std=std, n_channels=colours.shape[1],
                        dtype=counted[0][0].dtype.name, top=top,
                        options=options, n_images=len(counted), n_pixels=int(counts.sum()),
                        n_colours=len(counts), warm_up_history=warm_up)


def pool_colours(counted):
    """The distinct colours of several images together, with their summed counts.

    Parameters
    ----------
    counted : list of (colours, counts)
        Each image's ``distinct_colours``: (n_i, c) and (n_i,).

    Returns
    -------
    colours : ndarray of shape (n_colours, c)
        Each colour once, in the order ``distinct_colours`` gives the images
        stacked into one: the same rows, the same counts.
    counts : ndarray of shape (n_colours,), int64
    """
    if len(counted) == 1:
        return counted[0]
    colours = np.concatenate([colours for colours, _ in counted])
    weights = np.concatenate([counts for _, counts in counted])
    pooled, _, member = sg.distinct_colours(colours[:, None, :])
    # Exact: every partial sum is an integer below 2**53.
    return pooled, np.bincount(member, weights=weights).astype(np.int64)


def load_model(path):
    """Read a model that ``MixtureModel.save`` wrote, checking every field.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : MixtureModel

    Raises
    ------
    ValueError
        ``utils.InputError`` naming the file: missing, not JSON, not a
        gmmseg model, of a newer format version, or with a field that is
        missing, of the wrong type or shape, or does not make a mixture (a
        covariance that is not positive definite, priors that do not sum to
        1, values beyond what any fit gives).
    """
    path = utils.file_path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise utils.InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise utils.InputError(f"{path}: is a directory, not a model") from None
    except RecursionError:
        raise utils.InputError(f"{path}: not a gmmseg model (nested too deep)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise utils.InputError(f"{path}: not a gmmseg model ({_first_line(exc)})") from None
    try:
        return from_dict(data)
    except ValueError as exc:
        raise utils.InputError(f"{path}: not a gmmseg model ({_first_line(exc)})") from None


def _first_line(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# Bounds no fit reaches: Z-scored means beyond 1e8 (a 12 MP image's largest
# Z-score is about 3 500), a Z-score's mean or std beyond the floats the image
# checks accept. A file beyond them was edited, and would label in NaN.
MAX_MU = 1e8
STD_RANGE = (1e-100, params.MAX_FLOAT_VALUE)


def from_dict(data):
    """A ``MixtureModel`` from ``to_dict``'s object, every field checked (``load_model``).

    Raises
    ------
    ValueError
        Naming the first field that is missing or wrong (``fit.n_pixels``).
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"its format is not {FORMAT!r}")
    version = _field(data, "version", int)
    if version < 1:
        raise ValueError(f"version must be 1 or more, not {version}")
    if version > FORMAT_VERSION:
        raise ValueError(f"format version {version}, newer than this gmmseg reads "
                         f"({FORMAT_VERSION}): update gmmseg")
    settings = _field(data, "options", dict)
    missing = sorted({field.name for field in dataclasses.fields(Options)} - set(settings))
    if missing:
        raise ValueError(f"no field 'options.{missing[0]}'")
    try:
        options = Options(**settings)
    except ParameterError as exc:
        raise ValueError(f"options.{exc}") from None
    ncomp = _field(data, "n_components", int)
    c = _field(data, "n_channels", int)
    if not (1 <= ncomp <= sg.MAX_COMPONENTS and c in (1, 3)):
        raise ValueError(f"{ncomp} components of {c} channels")
    dtype = _field(data, "dtype", str)
    if dtype not in IMAGE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(IMAGE_DTYPES)}, not {dtype!r}")
    d = c + 2 * (options.spatial > 0)
    mean, std = _array(data, "mean", (c,)), _array(data, "std", (c,))
    mus, covs = _array(data, "mus", (ncomp, d)), _array(data, "covs", (ncomp, d, d))
    priors = _array(data, "priors", (ncomp,))
    if not ((std >= STD_RANGE[0]) & (std <= STD_RANGE[1])).all():
        raise ValueError(f"std must be from {STD_RANGE[0]:g} to {STD_RANGE[1]:g}")
    if (np.abs(mean) > params.MAX_FLOAT_VALUE).any() or (np.abs(mus) > MAX_MU).any():
        raise ValueError("mean or mus beyond any fit's")
    if (priors <= 0).any() or not math.isclose(priors.sum(), 1.0, rel_tol=1e-9):
        raise ValueError("priors must be positive and sum to 1")
    if not np.allclose(covs, covs.transpose(0, 2, 1)):
        raise ValueError("covs must be symmetric")
    try:
        np.linalg.cholesky(covs)
    except np.linalg.LinAlgError:
        raise ValueError("covs must be positive definite") from None
    top = _field(data, "top", float)
    if not (math.isfinite(top) and 0 < top <= params.MAX_FLOAT_VALUE):
        raise ValueError("top must be a positive number")
    fitted = _field(data, "fit", dict)
    gmm = sg.GMM(ncomp, mus, covs, priors)
    gmm.log_likelihood_history = _array(fitted, "log_likelihood_history", None,
                                        "fit.").tolist()
    gmm.converged = _field(fitted, "converged", bool, "fit.")
    return MixtureModel(gmm=gmm, mean=mean, std=std, n_channels=c, dtype=dtype, top=top,
                        options=options, n_images=_field(fitted, "n_images", int, "fit."),
                        n_pixels=_field(fitted, "n_pixels", int, "fit."),
                        n_colours=_field(fitted, "n_colours", int, "fit."),
                        warm_up_history=_array(fitted, "warm_up_log_likelihood_history", None,
                                               "fit.").tolist())


def _field(data, name, kind, where=""):
    """``data[name]``, which must be of ``kind`` (bool is no int; an int is a float)."""
    if name not in data:
        raise ValueError(f"no field '{where}{name}'")
    value = data[name]
    kinds = (int, float) if kind is float else kind
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kinds):
        raise ValueError(f"{where}{name} must be {_KIND_NAMES[kind]}, not {value!r:.40}")
    return float(value) if kind is float else value


_KIND_NAMES = {int: "a whole number", float: "a number", bool: "true or false",
               str: "a string", dict: "an object", list: "a list"}


def _array(data, name, shape, where=""):
    """``data[name]`` as a float array of ``shape`` (None: any 1-D), finite."""
    value = _field(data, name, list, where)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}{name} must be an array of numbers") from None
    if (array.ndim != 1) if shape is None else (array.shape != shape):
        raise ValueError(f"{where}{name} has shape {array.shape}, not {shape or '(n,)'}")
    if not np.isfinite(array).all():
        raise ValueError(f"{where}{name} holds NaN or infinite values")
    return array
