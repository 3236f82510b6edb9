"""Files beyond the lab's photos: TIFF stacks, NIfTI volumes, masks, at full depth.

``read`` reads any input file into the engine's shape, (h, w, c) for an
image or (z, y, x, c) for a volume, and says what it decided
(``Source``): TIFF with any number of channels and pages (tifffile), NIfTI
with its affine (nibabel, an optional requirement), and every format
``utils.load_image`` reads (PNG, JPEG, ... through Pillow; 16-bit colour PNG
through imagecodecs). The axes are decided in one place,
``params.image_axes``, from ``channel_axis`` or the format's own default:

=============================  ===========================================
TIFF                           channels: its ``S`` (samples, as RGB) or
                               ``C`` axis; pages or ``Z`` the volume's
                               depth (a multi-page grey TIFF is a z-stack,
                               as ImageJ and tifffile read it); axes of
                               size 1 beyond y and x dropped
NIfTI                          (i, j, k) the volume as stored, a 4th axis
                               the channels; axes of size 1 past the 3rd
                               dropped
arrays                         ``params.image_axes``
=============================  ===========================================

Every reader checks the size its header claims before reading the data
(``check_size``): the decompression-bomb guard Pillow gives photos.
"""

import dataclasses
import os
import sys

import numpy as np

import utils
from gmmseg.params import (
    MASK_LABEL,
    ParameterError,
    check_channel_axis,
    check_float_values,
    image_axes,
)

__all__ = ["NIFTI_EXTENSIONS", "TIFF_EXTENSIONS", "Source", "check_image", "check_mask",
           "check_size", "inside", "max_values", "read", "read_mask", "spread"]

TIFF_EXTENSIONS = (".tif", ".tiff")
NIFTI_EXTENSIONS = (".nii", ".nii.gz")


@dataclasses.dataclass(frozen=True)
class Source:
    """What ``read`` decided about a file.

    Attributes
    ----------
    format : {"image", "tiff", "nifti"}
        "image" for what ``utils.load_image`` reads.
    shape : tuple of int
        The data's shape in the file, as its library gives it.
    axes : str
        The file's axes in that order (tifffile's letters; "ijkc" for NIfTI,
        "yxc" for an image).
    channel_axis : int or None
        The axis of ``shape`` that became the channels; None for none.
    affine : ndarray of shape (4, 4) or None
        A NIfTI's voxel-to-world affine, written back with its labels.
    spatial_shape : tuple of int
        The image's or volume's shape without its channels, as segmented.
    """

    format: str
    shape: tuple
    axes: str
    channel_axis: int | None
    affine: np.ndarray | None = None
    spatial_shape: tuple = ()

    def record(self):
        """What a record keeps of it (its ``input``), JSON-ready; None for a photo."""
        if self.format == "image":
            return None
        return {"format": self.format, "shape": list(self.shape), "axes": self.axes,
                "channel_axis": self.channel_axis, "spatial_shape": list(self.spatial_shape),
                "affine": None if self.affine is None else self.affine.tolist()}


def max_values():
    """The most values (voxels times channels) a file may claim: Pillow's limit for RGB.

    Pillow refuses an image of more than twice ``Image.MAX_IMAGE_PIXELS``
    pixels, three values each; raising Pillow's limit raises this one.
    """
    from PIL import Image

    return 3 * 2 * (Image.MAX_IMAGE_PIXELS or 2**62)


def check_size(path, shape):
    """Refuse, before any allocation, a file whose header claims too many values."""
    values = int(np.prod(shape, dtype=object))
    if values > max_values():
        raise utils.InputError(f"{path}: too large to decode safely (its header claims "
                               f"{values:,} values, shape {tuple(shape)}; the limit is "
                               f"{max_values():,})")


def read(path, *, channel_axis="auto", name="image"):
    """Read an image or volume file at full depth.

    Parameters
    ----------
    path : str or path-like
    channel_axis : int, None or "auto", default="auto"
        The axis of the file's data (as ``Source.shape`` gives it) holding the
        channels, None for none, or "auto" for the format's own (see the
        module's table). A photo's channels are its last axis. A NIfTI's
        axes of size 1 past the third are dropped first; its channels are
        never one of its first three axes, which its affine maps.
    name : str, default="image"
        The parameter the data is, for the messages (``mask``).

    Returns
    -------
    image : ndarray of shape (h, w, c) or (z, y, x, c)
    source : Source

    Raises
    ------
    utils.InputError
        A missing, unreadable or too large file, or nibabel missing for NIfTI;
        ``params.ParameterError`` for a ``channel_axis`` the data cannot take.
    """
    path = utils.file_path(path)
    lower = os.fspath(path).lower()
    if not lower.endswith(TIFF_EXTENSIONS + NIFTI_EXTENSIONS):
        image = utils.load_image(path)
        if not (isinstance(channel_axis, str) and channel_axis == "auto"):
            image = image_axes(image, channel_axis, name)
        return image, Source("image", image.shape, "yxc", 2, spatial_shape=image.shape[:-1])
    utils.check_file(path)
    reader = _read_tiff if lower.endswith(TIFF_EXTENSIONS) else _read_nifti
    array, source, auto = reader(path)
    if (source.format == "nifti" and isinstance(channel_axis, int)
            and channel_axis % array.ndim < 3):
        raise ParameterError("channel_axis", f"channel_axis {channel_axis}: a NIfTI's first "
                                             f"three axes are the ones its affine maps; its "
                                             f"channels can only be the 4th")
    image = image_axes(array, channel_axis, name, auto=auto)
    if np.issubdtype(image.dtype, np.floating):
        check_float_values(image, name)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8)
    axis = auto if isinstance(channel_axis, str) else (
        None if channel_axis is None else channel_axis % array.ndim)
    return image, dataclasses.replace(source, channel_axis=axis,
                                      spatial_shape=image.shape[:-1])


def _read_tiff(path):
    """A TIFF's first series with its channel axis: (array, source, auto axis)."""
    import logging

    import tifffile

    # tifffile logs what it finds wrong, and then raises or reads what it can:
    # the run's one line says it.
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_size(path, series.shape)
            axes, shape = series.axes, series.shape
            array = series.asarray()
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        if isinstance(exc, utils.InputError):
            raise
        raise utils.InputError(f"{path}: not a readable TIFF ({_first_line(exc)})") from None
    finally:
        logger.setLevel(level)
    keep = [i for i, (axis, size) in enumerate(zip(axes, shape, strict=True))
            if size > 1 or axis in "YX"]
    array = array.reshape([shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    channel = next((axes.index(a) for a in "SC" if a in axes), None)
    return array, Source("tiff", tuple(shape), series.axes, channel), channel


def _read_nifti(path):
    """A NIfTI's data (its scaling applied) and affine: (array, source, auto axis)."""
    try:
        import nibabel
    except ImportError:
        raise utils.InputError(f"{path}: reading NIfTI needs nibabel (pip install -r "
                               f"requirements-volumes.txt)") from None
    try:
        img = nibabel.load(path)
        shape = img.shape
        check_size(path, shape)
        array = np.asanyarray(img.dataobj)
    except (nibabel.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as exc:
        if isinstance(exc, utils.InputError):
            raise
        raise utils.InputError(f"{path}: not a readable NIfTI ({_first_line(exc)})") from None
    array = array.reshape(*shape[:3], *(size for size in shape[3:] if size > 1))
    if array.ndim > 4:
        raise utils.InputError(f"{path}: a NIfTI of shape {shape}: at most 3 spatial axes "
                               f"and one of channels")
    channel = 3 if array.ndim == 4 else None
    return array, Source("nifti", tuple(shape), "ijkc"[:len(shape)], channel,
                         np.asarray(img.affine, float)), channel


def _first_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_mask(mask, shape, name="mask"):
    """A mask of the image's voxels: from a file or an array, nonzero inside.

    Parameters
    ----------
    mask : str, path-like or ndarray
        Any file ``read`` reads, or an array; of the image's spatial shape
        (one channel, or none).
    shape : tuple of int
        The image's spatial shape.
    name : str, default="mask"

    Returns
    -------
    mask : ndarray of bool, of shape ``shape``
    """
    if isinstance(mask, (str, bytes)) or hasattr(mask, "__fspath__"):
        array = read(mask, channel_axis="auto", name=name)[0]
    elif isinstance(mask, np.ndarray):
        array = mask
    else:
        raise ParameterError(name, f"{name} must be an array or a file's path, not "
                                   f"{type(mask).__name__}")
    if array.shape != tuple(shape) and array.shape[-1:] == (1,):
        array = array[..., 0]
    if array.shape != tuple(shape):
        raise ParameterError(name, f"{name} has shape {array.shape}; the image's is "
                                   f"{tuple(shape)}")
    inside = array != 0
    if not inside.any():
        raise ParameterError(name, f"{name} has no voxel inside (every value is 0)")
    return inside


def check_image(image, name="image", channel_axis="auto"):
    """An image or a volume as the engine takes it: from a path, a PIL image or an array.

    Parameters
    ----------
    image : str, path-like, PIL.Image.Image or ndarray
        A file of any of ``read``'s formats; a PIL image
        (converted as ``utils.load_image`` converts a file's); or an array of
        integers, booleans or finite floats of at most ``MAX_FLOAT_VALUE``,
        whose axes ``channel_axis`` tells (``image_axes``).
    name : str, default="image"
        The parameter's name, for the messages.
    channel_axis : int, None or "auto", default="auto"
        See ``image_axes``.

    Returns
    -------
    image : ndarray of shape (h, w, c) or (z, y, x, c), c from 1 to ``MAX_CHANNELS``
    """
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        return read(image, channel_axis=channel_axis)[0]
    if _is_pil_image(image):
        check_channel_axis(channel_axis, 3, pillow=True)
        return utils.image_array(image)
    if not isinstance(image, np.ndarray):
        raise ParameterError(name, f"{name} must be a NumPy array, a PIL image or a file's "
                                   f"path, not {type(image).__name__}")
    image = image_axes(image, channel_axis, name)
    if image.dtype == np.bool_:
        image = image.astype(np.uint8)
    elif not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ParameterError(name, f"{name} must hold numbers, not {image.dtype}")
    elif np.issubdtype(image.dtype, np.floating):
        check_float_values(image, name)
    return image


def _is_pil_image(image):
    """Whether ``image`` is a PIL image, without importing PIL for other types."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(image, pil.Image)


def check_mask(mask, image, ncomp):
    """``mask`` as a boolean array of the image's spatial shape, or None.

    A file or array, nonzero inside (``readers.read_mask``). The outside
    takes ``MASK_LABEL``, which no component may have: K at most 255.
    """
    if mask is None:
        return None
    mask = read_mask(mask, image.shape[:-1])
    if ncomp > MASK_LABEL:
        raise ParameterError(("n_components", "mask"), f"n_components with a mask must be at "
                                                       f"most {MASK_LABEL}, not {ncomp}: "
                                                       f"{MASK_LABEL} labels the outside")
    return mask


def inside(array, mask):
    """The pixels of ``array`` (of the mask's shape, plus channels) inside ``mask``, as an
    (n, 1, ...) strip the lab's functions take; ``array`` itself without a mask."""
    return array if mask is None else array[mask][:, None]


def spread(values, mask, outside):
    """Values of the pixels inside ``mask`` put back in place, ``outside`` elsewhere (flat)."""
    if mask is None:
        return values
    full = np.full(mask.size, outside, dtype=values.dtype)
    full[mask.ravel()] = values
    return full
