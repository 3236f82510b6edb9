"""Helpers for Lab 10: reading an image, writing files safely, drawing the result.

Nothing here runs on import: matplotlib is imported only when a figure is drawn,
so the module loads fast and works on a machine without a display. This module
imports nothing of the project.
"""

import contextlib
import json
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


def label_means(image, labels, ncomp):
    """Mean colour of each label's pixels.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
    labels : ndarray of shape (h, w)
    ncomp : int

    Returns
    -------
    means : ndarray of shape (ncomp, c)
        In the image's units; 0 for a label no pixel has.
    """
    flat = labels.ravel()
    counts = np.maximum(np.bincount(flat, minlength=ncomp), 1)
    return np.stack([np.bincount(flat, weights=image[:, :, ch].ravel(), minlength=ncomp)
                     for ch in range(image.shape[2])], axis=1) / counts[:, None]


def max_value(image):
    """The value that means full intensity for this image's type (for display)."""
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    return float(max(image.max(), 1e-12))


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path that is moved onto ``path`` when the block succeeds.

    An interrupted run leaves either the old file or the new one, never half a
    file. The temporary file sits in the same folder so the rename is atomic,
    and keeps ``path``'s extension so tools that go by it (ffmpeg) still can.

    Raises
    ------
    InputError
        If the file cannot be written (a read-only folder, a full disk): the
        temporary file is removed and ``path`` is left as it was.
    """
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror or exc})") from None
    os.close(fd)
    # mkstemp creates the file private (0600); the result should carry the
    # permissions any new file of the user's gets.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write it ({exc.strerror or exc})") from None
        raise


def write_atomic(path, write):
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_png(path, array):
    """Write a 2-D uint8 or uint16 array as a greyscale PNG, atomically."""
    write_atomic(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def write_json(path, record):
    """Write ``record`` as indented JSON, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)

    write_atomic(path, write)


def file_stem(path):
    """A file's or folder's name without its extension: the prefix of its outputs."""
    return os.path.splitext(os.path.basename(os.path.normpath(os.fspath(path))))[0]


def prepare_out(out):
    """Create the output folder and make sure files can be written in it.

    Called before any fitting, so that a folder that cannot take the results
    fails in a second, not after the whole fit.

    Raises
    ------
    InputError
        If ``out`` is a file, cannot be created, or does not take a file.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


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


def _new_figure(show, **kwargs):
    """A figure that opens a window only if ``show``; only then is pyplot imported."""
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(**kwargs)
    # A bare Figure draws with Agg and never touches a display.
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _finish(figure, path, show):
    """Save the figure atomically if ``path`` is given; open its window if ``show``."""
    if path is not None:
        write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))
    if show:
        import matplotlib.pyplot as plt

        plt.show()


def visualize(image, labels, mus_rgb, log_likelihood_history=None, title=None,
              path=None, show=False, regions=None):
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
    regions : ndarray of shape (h, w), optional
        Region of each pixel, 0..R-1 (``--min-region``, ``--merge``): the
        second panel then paints each region with its mean colour instead of
        each pixel with its component's.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
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
    figure = _new_figure(show, figsize=(3.2 * ncols, 3.2 * aspect * nrows + 0.9 + 0.5 * nrows),
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
    if regions is None:
        show_image(axes[1], recoloured, f"{ncomp} components (mean colour)")
    else:
        # The segmentation that was scored: each region in its mean colour
        # (over the display copy's pixels, which is all the panel shows).
        _, regions_small = display_copy(image, regions)
        n_regions = int(regions.max()) + 1
        means = label_means(image_small, regions_small, n_regions)
        show_image(axes[1], means[regions_small], f"{n_regions} regions (mean colour)")
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
    _finish(figure, path, show)
    return figure


def visualize_sweep(image, labels_by_k, mus_rgb_by_k, records, marked_k=None,
                    criterion="bic", title=None, path=None, show=False):
    """Draw a sweep over K: each segmentation, then BIC, AIC and log-likelihood against K.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
        The image as loaded.
    labels_by_k : list of ndarray of shape (h, w)
        One label image per fit.
    mus_rgb_by_k : list of ndarray of shape (K, c)
        Each fit's component means, in the image's own units.
    records : list of dict
        Each fit's record: ``k``, ``bic``, ``aic``, ``log_likelihood``.
    marked_k : int, optional
        The K to mark on the curves (the criterion's choice).
    criterion : str, default="bic"
        Named in the mark's legend; "bic" and "aic" are marked on their
        curve, any other rule on the log-likelihood's.
    title, path, show : see ``visualize``.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    scored = criterion in ("bic", "aic")  # else marked on the log-likelihood curve
    chosen_by = f"lowest {criterion.upper()}" if scored else f"{criterion} rule"
    image_small, _ = display_copy(image, labels_by_k[0])
    grey = image_small.shape[2] == 1
    h, w = image_small.shape[:2]
    panels = len(records) + 1
    nrows = int(np.ceil(panels / 5))
    ncols = int(np.ceil(panels / nrows))  # rows as even as they can be
    side = 2.6
    figure = _new_figure(show, figsize=(side * ncols, side * h / w * nrows + 3.6 + 0.4 * nrows),
                         dpi=100, layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[side * h / w * nrows + 0.4 * nrows, 3.6])
    axes = top.subplots(nrows, ncols, squeeze=False).ravel()
    shown = [(image_small, "input")]
    for labels, mus_rgb, record in zip(labels_by_k, mus_rgb_by_k, records, strict=True):
        _, labels_small = display_copy(image, labels)
        colours = np.clip(np.asarray(mus_rgb, dtype=np.float64) / max_value(image), 0, 1)
        mark = f" ({chosen_by})" if record["k"] == marked_k else ""
        shown.append((colours[labels_small], f"k = {record['k']}{mark}"))
    for ax, (data, text) in zip(axes, shown):
        ax.imshow(data[:, :, 0] if grey else data, cmap="gray" if grey else None, vmin=0,
                  vmax=1, interpolation="nearest")
        ax.set_title(text, fontsize=10, fontweight="bold" if chosen_by in text else None)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(shown):]:
        ax.set_axis_off()

    ks = [record["k"] for record in records]
    scores, likelihood = bottom.subplots(1, 2)
    # On photos AIC and BIC differ by far less than they vary with k, so BIC is
    # drawn wide and AIC thin and dashed over it: both stay visible.
    scores.plot(ks, [record["bic"] for record in records], marker="o", markersize=9,
                linewidth=4, color=OKABE_ITO[1], label="BIC")
    scores.plot(ks, [record["aic"] for record in records], marker="s", markersize=4,
                linewidth=1.2, linestyle="--", color=OKABE_ITO[5], label="AIC")
    if marked_k is not None:
        best = next(record for record in records if record["k"] == marked_k)
        ax, name = (scores, criterion) if scored else (likelihood, "log_likelihood")
        ax.plot([marked_k], [best[name]], marker="*", markersize=16, linestyle="none",
                color=OKABE_ITO[7], label=f"{chosen_by}: k = {marked_k}")
        ax.legend(fontsize=8)
    scores.set_xlabel("k (components)")
    scores.set_ylabel("criterion (lower is better)")
    scores.set_title("BIC and AIC", fontsize=10)
    scores.legend(fontsize=8)
    likelihood.plot(ks, [record["log_likelihood"] for record in records], marker="o",
                    color=OKABE_ITO[2])
    likelihood.set_xlabel("k (components)")
    likelihood.set_ylabel("log-likelihood / pixel (nats)")
    likelihood.set_title("fit", fontsize=10)
    for ax in (scores, likelihood):
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=12)
    _finish(figure, path, show)
    return figure
