"""Every parameter of the public entries, checked in one place.

``gmmseg.segment``, ``gmmseg.segment_file`` and ``gmmseg.segment_video`` call
these checks before any work, and the command line calls those entries, so a
notebook and the CLI refuse the same things with the same words. A check
raises ``utils.InputError`` (a ``ValueError``) whose message names the
parameter as Python knows it and, in brackets, the flag the command line
gives it; the CLI prints that one line and exits 2.
"""

import math
import numbers

import numpy as np

import segmentation_GMM as sg
import utils
from gmmseg.features import COLOR_SPACES

__all__ = [
    "K_MAX_LIMIT",
    "MAX_FPS",
    "MAX_ITER",
    "MAX_SEED",
    "SPATIAL_MAX",
    "check_components",
    "check_cut",
    "check_image",
    "check_segment_params",
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

# The command line's name of each parameter, for the messages.
FLAGS = {"n_components": "--k", "max_iter": "--iters", "tol": "--tol",
         "random_state": "--seed", "color_space": "--color-space", "spatial": "--spatial",
         "smooth": "--smooth", "min_region": "--min-region", "merge": "--merge",
         "k_max": "--k-max", "criterion": "--k-criterion", "fps": "--fps", "jobs": "--jobs",
         "hierarchy": "--hierarchy", "regions": "--regions", "n_regions": "--regions",
         "level": "--level",
         "preset": "--preset"}


def _named(name):
    return f"{name} ({FLAGS[name]})" if name in FLAGS else name


def check_int(value, name, low, high=None):
    """``value`` as an int in [low, high], or an InputError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise utils.InputError(f"{_named(name)} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise utils.InputError(f"{_named(name)} must be {bound}, not {value}")
    return int(value)


def check_float(value, name, low, high=math.inf, include_low=True):
    """``value`` as a finite float in [low, high] (or (low, high]), or an InputError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise utils.InputError(f"{_named(name)} must be a number, not {value!r}")
    value = float(value)
    above = value >= low if include_low else value > low
    if not (math.isfinite(value) and above and value <= high):
        lower = f"{low:g} or more" if include_low else f"above {low:g}"
        bound = lower if high == math.inf else f"{lower} and at most {high:g}"
        raise utils.InputError(f"{_named(name)} must be {bound}, not {value:g}")
    return value


def check_choice(value, name, choices):
    """``value`` if it is one of ``choices``, or an InputError listing them."""
    if value not in choices:
        raise utils.InputError(f"{_named(name)} must be one of {', '.join(choices)}, "
                               f"not {value!r}")
    return value


def check_image(image):
    """An image as the lab's functions take it, from a path or an array.

    Parameters
    ----------
    image : str, path-like or ndarray
        A file any of ``utils.load_image``'s formats, or an array of shape
        (h, w) (grey), (h, w, 1), (h, w, 2) (grey and alpha), (h, w, 3) (RGB)
        or (h, w, 4) (RGBA), of integers, booleans or finite floats. Alpha is
        dropped, as ``utils.load_image`` drops it.

    Returns
    -------
    image : ndarray of shape (h, w, c), c in {1, 3}
    """
    if not isinstance(image, np.ndarray):
        return utils.load_image(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise utils.InputError(f"image must have shape (h, w) or (h, w, c) with c from 1 to 4, "
                               f"not {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise utils.InputError(f"image has no pixels (shape {image.shape})")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8)
    elif not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise utils.InputError(f"image must hold numbers, not {image.dtype}")
    elif np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise utils.InputError("image holds NaN or infinite values")
    # Grey + alpha keeps the grey channel, RGBA its three colours.
    return image[:, :, :1] if image.shape[2] == 2 else image[:, :, :3]


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
            raise utils.InputError(f"{_named('n_components')} must be a whole number or "
                                   f"'auto', not {n_components!r}")
        check_int(k_max, "k_max", 2, K_MAX_LIMIT)
        return "auto"
    values = list(np.atleast_1d(np.asarray(n_components, dtype=object)))
    if not values:
        raise utils.InputError(f"{_named('n_components')} needs at least one value")
    ks = [check_int(value, "n_components", 1, sg.MAX_COMPONENTS) for value in values]
    return list(dict.fromkeys(ks))


def check_segment_params(image, max_iter, tol, random_state, color_space="rgb", spatial=0.0,
                         smooth=0.0, min_region=0, merge=0.0, hierarchy=False, regions=None,
                         level=None):
    """Check what ``gmmseg.segment`` takes, against the image it is for.

    Parameters
    ----------
    image : ndarray of shape (h, w, c), from ``check_image``
    max_iter, tol, random_state, color_space, spatial, smooth, min_region, merge
    hierarchy, regions, level
        See ``gmmseg.segment``; ``n_components`` has ``check_components``.

    Returns
    -------
    params : dict
        The values as int, float or str, by name; ``hierarchy`` is True when
        ``regions`` or ``level`` asks for a cut.
    """
    h, w, c = image.shape
    params = {
        "max_iter": check_int(max_iter, "max_iter", 1, MAX_ITER),
        "tol": check_float(tol, "tol", 0.0, include_low=False),
        "random_state": check_int(random_state, "random_state", 0, MAX_SEED),
        "color_space": check_choice(color_space, "color_space", COLOR_SPACES),
        "spatial": check_float(spatial, "spatial", 0.0, SPATIAL_MAX),
        # Beyond a quarter of the shorter side every pixel already weighs the
        # evidence of the whole image; the blur's cost grows with sigma.
        "smooth": check_float(smooth, "smooth", 0.0, max(1.0, min(h, w) / 4)),
        "min_region": check_int(min_region, "min_region", 0, h * w),
        "merge": check_float(merge, "merge", 0.0),
    }
    if not isinstance(hierarchy, (bool, np.bool_)):
        raise utils.InputError(f"{_named('hierarchy')} must be True or False, not {hierarchy!r}")
    params["regions"], params["level"] = check_cut(regions, level, h * w)
    params["hierarchy"] = bool(hierarchy) or regions is not None or level is not None
    if params["hierarchy"] and params["merge"] > 0:
        raise utils.InputError(f"{_named('merge')} and {_named('hierarchy')} both merge "
                               f"regions; give one")
    if params["color_space"] == "lab" and c != 3:
        raise utils.InputError(f"{_named('color_space')} lab needs a colour image; "
                               f"this one is greyscale")
    return params


def check_cut(regions, level, n_pixels, name="regions"):
    """Where to cut a region hierarchy: a number of regions or a height, not both.

    Returns
    -------
    regions : int or None
        From 1 to ``n_pixels``.
    level : float or None
        Finite, 0 or more.
    """
    if regions is not None and level is not None:
        raise utils.InputError(f"{_named(name)} and {_named('level')} both say where to cut "
                               f"the hierarchy; give one")
    return (None if regions is None else check_int(regions, name, 1, n_pixels),
            None if level is None else check_float(level, "level", 0.0))


def check_video_params(max_iter, tol, random_state, fps=None, preset=None):
    """Check what ``gmmseg.segment_video`` takes besides the clip and k.

    Returns
    -------
    params : dict
        ``max_iter``, ``tol``, ``random_state``, ``fps`` (None: the clip's) and
        ``preset`` (None: ``video_io.MP4_PRESET``).
    """
    from gmmseg.video_io import MP4_PRESETS

    return {"max_iter": check_int(max_iter, "max_iter", 1, MAX_ITER),
            "tol": check_float(tol, "tol", 0.0, include_low=False),
            "random_state": check_int(random_state, "random_state", 0, MAX_SEED),
            "fps": None if fps is None else check_float(fps, "fps", 0.0, MAX_FPS,
                                                        include_low=False),
            "preset": None if preset is None else check_choice(preset, "preset",
                                                               MP4_PRESETS)}
