"""Helpers for Lab 10: reading an image, writing files safely, drawing the result.

Nothing here runs on import: matplotlib is imported only when a figure is drawn,
so the module loads fast and works on a machine without a display.
"""

import os
import tempfile
import warnings

import numpy as np
from PIL import Image, ImageOps

# A figure is drawn from a copy whose longer side is at most this many pixels:
# a 12 MP photo drawn at full resolution costs seconds and looks the same.
DISPLAY_SIDE = 640

# Okabe-Ito: a palette that stays distinct under the common colour blindnesses.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442",
             "#0072B2", "#D55E00", "#CC79A7", "#000000"]


class InputError(ValueError):
    """An input the program cannot use; its message is shown to the user as is."""


def load_image(path):
    """Read an image file into an array of shape (h, w, c).

    Any format Pillow reads is accepted. The image is turned upright by its
    EXIF orientation; alpha is dropped; palette images become RGB; CMYK and
    YCbCr become RGB; greyscale (8-bit, 16-bit, 32-bit or float) stays one
    channel. Integer images keep their integer type so that their distinct
    colours can be counted exactly.

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    image : ndarray of shape (h, w, c), c in {1, 3}
        uint8, uint16, int32 or float32 pixel values.

    Raises
    ------
    InputError
        If the file is missing, is a directory, or is not a readable image.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an image")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            # A file over Pillow's pixel limit is refused below; one just under
            # it is a large photo, not an attack, so its warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                img.load()
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    return _to_array(img)


def _to_array(img):
    """Turn a decoded Pillow image into an (h, w, c) array with c in {1, 3}."""
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("1", "LA", "La"):
        img = img.convert("L")
    elif mode in ("RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode.startswith("I;16"):
        # Pillow's 16-bit modes come in several byte orders; numpy reads them all.
        img = np.asarray(img).astype(np.uint16)
        return img[:, :, None]
    array = np.asarray(img)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError("the image has no pixels")
    return array


def max_value(image):
    """The value that means full intensity for this image's type (for display)."""
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    return float(max(image.max(), 1e-12))


def write_atomic(path, write):
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step.

    An interrupted run leaves either the old file or the new one, never half a
    file. The temporary file sits in the same folder so the rename is atomic.
    """
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def display_copy(image, labels):
    """Shrink an image and its label map for drawing.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
    labels : ndarray of shape (h, w)

    Returns
    -------
    image_small : ndarray of shape (h', w', c), float in [0, 1]
    labels_small : ndarray of shape (h', w')
        Both sampled on the same grid, with a stride that brings the longer side
        to at most ``DISPLAY_SIDE``.
    """
    step = max(1, int(np.ceil(max(labels.shape) / DISPLAY_SIDE)))
    image_small = image[::step, ::step].astype(np.float64) / max_value(image)
    return np.clip(image_small, 0.0, 1.0), labels[::step, ::step]


def visualize(image, labels, mus_rgb, log_likelihood_history=None, title=None,
              path=None, show=False):
    """Draw the segmentation: the image, its recolouring, one mask per cluster.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
        The image as loaded.
    labels : ndarray of shape (h, w)
        Component index of each pixel, 0..K-1.
    mus_rgb : ndarray of shape (K, c)
        Each component's mean, in the image's own units.
    log_likelihood_history : sequence of float, optional
        Mean log-likelihood per pixel after each EM step; drawn as a curve.
    title : str, optional
        The figure's title.
    path : str, optional
        Where to save the figure (PNG), atomically.
    show : bool, default=False
        Open a window. Only then is pyplot (and a GUI backend) used.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    if show:
        import matplotlib.pyplot as plt

        new_figure = plt.figure
    else:
        # A bare Figure draws with Agg and never touches a display.
        from matplotlib.figure import Figure as new_figure

    ncomp = len(mus_rgb)
    image_small, labels_small = display_copy(image, labels)
    grey = image_small.shape[2] == 1
    colours = np.clip(np.asarray(mus_rgb, dtype=np.float64) / max_value(image), 0, 1)
    recoloured = colours[labels_small]

    panels = 2 + ncomp + (log_likelihood_history is not None)
    ncols = min(panels, 4)
    nrows = int(np.ceil(panels / ncols))
    h, w = labels_small.shape
    aspect = h / w
    figure = new_figure(figsize=(3.2 * ncols, 3.2 * aspect * nrows + 0.9 + 0.5 * nrows),
                    dpi=100, layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    cmap = "gray" if grey else None

    def show_image(ax, data, text):
        ax.imshow(data[:, :, 0] if grey else data, cmap=cmap, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(text, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])

    show_image(axes[0], image_small, "input")
    show_image(axes[1], recoloured, f"{ncomp} components (mean colour)")
    share = np.bincount(labels.ravel(), minlength=ncomp) / labels.size
    for k in range(ncomp):
        ax = axes[2 + k]
        # The member pixels keep their colour; the rest turn pale, so the mask
        # reads as a shape and still shows what the cluster picked up.
        mask = labels_small == k
        panel = np.where(mask[:, :, None], image_small, 0.85 + 0.15 * image_small)
        show_image(ax, panel, f"component {k}: {100 * share[k]:.1f}% of pixels")
        for side in ax.spines.values():
            side.set_edgecolor(OKABE_ITO[k % len(OKABE_ITO)])
            side.set_linewidth(4)
    used = 2 + ncomp
    if log_likelihood_history is not None:
        ax = axes[used]
        history = np.asarray(log_likelihood_history)
        ax.plot(np.arange(1, len(history) + 1), history, marker="o", markersize=3,
                color=OKABE_ITO[4])
        ax.set_xlabel("EM iteration")
        ax.set_ylabel("log-likelihood / pixel (nats)")
        ax.set_title("convergence", fontsize=10)
        ax.grid(alpha=0.3)
        used += 1
    for ax in axes[used:]:
        ax.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=12)
    if path is not None:
        write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))
    if show:
        plt.show()
    return figure
