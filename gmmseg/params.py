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
import sys

import numpy as np

import segmentation_GMM as sg
import utils

__all__ = [
    "K_MAX_LIMIT",
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
    "check_image",
    "check_int",
    "check_video_params",
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


def check_image(image, name="image"):
    """An image as the lab's functions take it: from a path, a PIL image or an array.

    Parameters
    ----------
    image : str, path-like, PIL.Image.Image or ndarray
        A file any of ``utils.load_image``'s formats; a PIL image (converted
        as ``utils.load_image`` converts a file's); or an array of shape
        (h, w) (grey), (h, w, 1), (h, w, 2) (grey and alpha), (h, w, 3) (RGB)
        or (h, w, 4) (RGBA), of integers, booleans or finite floats of at most
        ``MAX_FLOAT_VALUE``. Alpha is dropped, as ``utils.load_image`` drops it.
    name : str, default="image"
        The parameter's name, for the messages.

    Returns
    -------
    image : ndarray of shape (h, w, c), c in {1, 3}
    """
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        return utils.load_image(image)
    if _is_pil_image(image):
        return utils.image_array(image)
    if not isinstance(image, np.ndarray):
        raise ParameterError(name, f"{name} must be a NumPy array, a PIL image or a file's "
                                   f"path, not {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ParameterError(name, f"{name} must have shape (h, w) or (h, w, c) with c from "
                                   f"1 to 4, not {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ParameterError(name, f"{name} has no pixels (shape {image.shape})")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8)
    elif not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ParameterError(name, f"{name} must hold numbers, not {image.dtype}")
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ParameterError(name, f"{name} holds NaN or infinite values")
        top = float(np.abs(image).max())
        if top > MAX_FLOAT_VALUE or 0 < top < 1 / MAX_FLOAT_VALUE:
            raise ParameterError(name, f"{name} holds values up to {top:.3g}, beyond "
                                       f"{MAX_FLOAT_VALUE:g} or below {1 / MAX_FLOAT_VALUE:g}: "
                                       f"rescale it (the Z-score would overflow or "
                                       f"underflow)")
    # Grey + alpha keeps the grey channel, RGBA its three colours.
    return image[:, :, :1] if image.shape[2] == 2 else image[:, :, :3]


def _is_pil_image(image):
    """Whether ``image`` is a PIL image, without importing PIL for other types."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(image, pil.Image)


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
