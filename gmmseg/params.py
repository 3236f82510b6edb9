"""Every parameter's check and bound, in the library's own words.

A check raises ``ParameterError`` (a ``utils.InputError``, so a
``ValueError``) whose message names the parameter as Python knows it
(``smooth must be ...``) and which carries that name in ``parameters``: the
command line, which alone knows its flags, rewrites the names as flags
(``gmmseg.cli``). ``gmmseg.options.Options`` runs the checks of the
segmentation options when it is built; the entries check the rest here.
"""

import math
import numbers

import numpy as np

import segmentation_GMM as sg
import utils

__all__ = [
    "K_MAX_LIMIT",
    "MASK_LABEL",
    "MRF_MAX",
    "MAX_CHANNELS",
    "MAX_FPS",
    "MAX_ITER",
    "MAX_SEED",
    "SPATIAL_MAX",
    "ParameterError",
    "ParameterWarning",
    "check_choice",
    "check_components",
    "check_cut",
    "check_float",
    "check_channel_axis",
    "check_float_values",
    "check_int",
    "check_video_params",
    "image_axes",
]

# EM converges in tens of steps on photos (hundreds at most on synthetic
# data with tol near 0); a cap well above that keeps a typo such as 1e20 from
# overflowing or running for days.
MAX_ITER = 10_000

# scikit-learn hands random_state to numpy's RandomState, whose seeds are
# 32-bit.
MAX_SEED = 2**32 - 1

# --k auto fits every k from 2 to k_max in turn, each a full fit. Past a few
# dozen colour components a photo's segmentation no longer changes to the eye,
# while the sweep's time grows with the sum of the k's.
K_MAX_LIMIT = 32

# The position features are Z-scored, times ``spatial``: a component's largest
# variance grows as spatial^2 while its smallest colour variance can be as
# small as REG_COVAR, and SciPy's multivariate_normal refuses a covariance
# whose eigenvalues span more than about 1 / (1e6 * machine epsilon). On an
# image of flat colours (the worst case: components collapse onto one colour)
# 45 still fitted and 70 raised LinAlgError; 10, seven times below, is far
# beyond any useful weight (the best measured on BSDS500 is 0.5).
SPATIAL_MAX = 10.0

# A frame rate beyond this is no clip a player shows (GIF delays are whole
# hundredths of a second: 100 frames/s at the most).
MAX_FPS = 1000.0

# The Z-score squares each value's distance from the mean: beyond about
# sqrt(largest float) / 2 that square is infinite and every feature NaN, and
# below sqrt(smallest float) it is 0 and every pixel one colour. Values this
# large or small carry no meaning their scale would lose, so an image whose
# largest magnitude is beyond either is refused with its size.
MAX_FLOAT_VALUE = 1e150

# Channels an image or volume may have: multispectral scenes and multiplexed
# microscopy reach a few dozen; each costs c + c (c + 1) / 2 parameters a
# component, and a component's covariance needs many more pixels than that.
MAX_CHANNELS = 32

# The Potts prior's weight (gmmseg.mrf) adds up to 6 beta to a log-prior in
# 3-D: at 10 a pixel's neighbours outweigh any colour evidence (a difference of
# 60 nats), so a larger weight can only flatten the image to one label.
MRF_MAX = 10.0

# The label of the pixels outside a mask: the 8-bit labels' last value, which
# the components leave free (at most 255 of them with a mask).
MASK_LABEL = 255


class ParameterError(utils.InputError):
    """A bad value of a named parameter.

    Parameters
    ----------
    parameters : str or tuple of str
        The Python names of the parameters the message speaks of.
    message : str
        Naming them as they are spelled in ``parameters``.
    """

    def __init__(self, parameters, message):
        super().__init__(message)
        self.parameters = _names(parameters)


class ParameterWarning(UserWarning):
    """A warning about a parameter's value; ``parameters`` names it, as ``ParameterError``'s."""

    def __init__(self, parameters, message):
        super().__init__(message)
        self.parameters = _names(parameters)


def _names(parameters):
    """One name or several, as a tuple."""
    return (parameters,) if isinstance(parameters, str) else tuple(parameters)


def check_int(value, name, low, high=None):
    """``value`` as an int in [low, high], or a ParameterError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterError(name, f"{name} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ParameterError(name, f"{name} must be {bound}, not {value}")
    return int(value)


def check_float(value, name, low, high=math.inf, include_low=True):
    """``value`` as a finite float in [low, high] (or (low, high]), or a ParameterError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterError(name, f"{name} must be a number, not {value!r}")
    value = float(value)
    above = value >= low if include_low else value > low
    if not (math.isfinite(value) and above and value <= high):
        lower = f"{low:g} or more" if include_low else f"above {low:g}"
        bound = lower if high == math.inf else f"{lower} and at most {high:g}"
        raise ParameterError(name, f"{name} must be {bound}, not {value:g}")
    return value


def check_choice(value, name, choices):
    """``value`` if it is one of ``choices``, or a ParameterError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(name, f"{name} must be one of {', '.join(choices)}, "
                                   f"not {value!r}")
    return value


def check_bool(value, name):
    """``value`` as a bool, or a ParameterError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(name, f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_float_values(image, name="image"):
    """Refuse floats the Z-score cannot take: NaN, infinities, magnitudes beyond its range."""
    if not np.isfinite(image).all():
        raise ParameterError(name, f"{name} holds NaN or infinite values")
    top = float(np.abs(image).max())
    if top > MAX_FLOAT_VALUE or 0 < top < 1 / MAX_FLOAT_VALUE:
        raise ParameterError(name, f"{name} holds values up to {top:.3g}, beyond "
                                   f"{MAX_FLOAT_VALUE:g} or below {1 / MAX_FLOAT_VALUE:g}: "
                                   f"rescale it (the Z-score would overflow or underflow)")


def check_channel_axis(channel_axis, ndim, pillow=False):
    """``channel_axis`` checked against an array of ``ndim`` axes: "auto", None or an int.

    Returns the axis as a non-negative int, None, or "auto". A Pillow image's
    channels are its last axis: it takes "auto" or that axis alone.
    """
    if channel_axis is None or (isinstance(channel_axis, str) and channel_axis == "auto"):
        if pillow and channel_axis is None:
            raise ParameterError("channel_axis", "channel_axis None: a PNG, JPEG or other "
                                                 "photo's channels are its last axis; give "
                                                 "auto or -1")
        return channel_axis
    axis = check_int(channel_axis, "channel_axis", -ndim, ndim - 1)
    axis %= ndim
    if pillow and axis != ndim - 1:
        raise ParameterError("channel_axis", f"channel_axis {channel_axis}: a PNG, JPEG or "
                                             f"other photo's channels are its last axis")
    return axis


def image_axes(array, channel_axis="auto", name="image", auto="shape"):
    """The one place that decides an array's axes: spatial axes first, channels last.

    Parameters
    ----------
    array : ndarray
    channel_axis : int, None or "auto", default="auto"
        The axis that holds the channels (moved last; every channel kept), or
        None for none (one channel; every axis spatial). "auto" takes ``auto``
        (a reader's decision), or by default decides from the shape: (h, w) a
        grey image; (h, w, c) with c from 1 to 4 an image whose last axis is
        grey, grey and alpha, RGB or RGBA (alpha dropped, as
        ``utils.load_image`` drops it); any other 3-D array a grey volume
        (z, y, x); a 4-D array a volume (z, y, x, c).
    name : str, default="image"
    auto : int, None or "shape", default="shape"
        The channel axis "auto" stands for (a file's own, ``readers.read``).

    Returns
    -------
    image : ndarray of shape (h, w, c) or (z, y, x, c)
        A view of ``array`` where it can be.
    """
    axis = check_channel_axis(channel_axis, max(array.ndim, 1))
    drop_alpha = False
    if isinstance(axis, str):  # "auto"
        if not isinstance(auto, str):
            axis = auto
        elif array.ndim == 3 and array.shape[2] <= 4:
            axis, drop_alpha = 2, True
        else:
            axis = 3 if array.ndim == 4 else None
    image = array[..., None] if axis is None else np.moveaxis(array, axis, -1)
    if image.ndim not in (3, 4):
        raise ParameterError((name, "channel_axis"),
                             f"{name} must be 2-D or 3-D with channel_axis {channel_axis!r}: "
                             f"shape {array.shape} gives {image.ndim - 1} spatial axes")
    if min(image.shape[:-1]) == 0 or image.shape[-1] == 0:
        raise ParameterError(name, f"{name} has no pixels (shape {array.shape})")
    c = image.shape[-1]
    if c > MAX_CHANNELS:
        raise ParameterError((name, "channel_axis"),
                             f"{name} has {c} channels on axis {axis} (shape {array.shape}); "
                             f"at most {MAX_CHANNELS}: is channel_axis right?")
    if drop_alpha:  # grey and alpha keeps the grey channel, RGBA its three colours
        image = image[..., :1] if c == 2 else image[..., :3]
    return image


def check_components(n_components, k_max=None):
    """The numbers of components to fit: a list of ints, or "auto" with its k_max.

    Parameters
    ----------
    n_components : int, sequence of int, or "auto"
    k_max : int, optional
        Only with "auto": the largest k tried, from 2 to ``K_MAX_LIMIT``.

    Returns
    -------
    ks : list of int, or "auto"
        Repeated values are fitted once, in the order given.
    """
    if isinstance(n_components, str):
        if n_components != "auto":
            raise ParameterError("n_components", f"n_components must be a whole number or "
                                                 f"'auto', not {n_components!r}")
        check_int(k_max, "k_max", 2, K_MAX_LIMIT)
        return "auto"
    values = list(np.atleast_1d(np.asarray(n_components, dtype=object)))
    if not values:
        raise ParameterError("n_components", "n_components needs at least one value")
    ks = [check_int(value, "n_components", 1, sg.MAX_COMPONENTS) for value in values]
    return list(dict.fromkeys(ks))


def check_cut(n_regions, level, n_pixels):
    """Where to cut a region hierarchy: a number of regions or a height, not both.

    Returns
    -------
    n_regions : int or None
        From 1 to ``n_pixels``.
    level : float or None
        Finite, 0 or more.
    """
    if n_regions is not None and level is not None:
        raise ParameterError(("n_regions", "level"), "n_regions and level both say where to "
                                                     "cut the hierarchy; give one")
    return (None if n_regions is None else check_int(n_regions, "n_regions", 1, n_pixels),
            None if level is None else check_float(level, "level", 0.0))


def check_video_params(fps=None, preset=None, labels="mkv"):
    """Check what ``gmmseg.segment_video`` takes besides the clip, k and the options.

    Returns
    -------
    params : dict
        ``fps`` (None: the clip's), ``preset`` (None: ``video_io.MP4_PRESET``)
        and ``labels`` (one of ``video_io.LABEL_FORMATS``).
    """
    from gmmseg.video_io import LABEL_FORMATS, MP4_PRESETS

    return {"fps": None if fps is None else check_float(fps, "fps", 0.0, MAX_FPS,
                                                        include_low=False),
            "preset": None if preset is None else check_choice(preset, "preset",
                                                               MP4_PRESETS),
            "labels": check_choice(labels, "labels", LABEL_FORMATS)}
