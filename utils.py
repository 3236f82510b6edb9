"""Helpers for Lab 10: reading an image, writing a file atomically, drawing the result.

Nothing here runs on import: matplotlib is imported only when a figure is drawn,
so the module loads fast and works on a machine without a display. This module
imports nothing of the project.
"""

import contextlib
import functools
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


# Files that are clips, not images: named in the error when one is given as an image.
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ts"}


class InputError(ValueError):
    """An input the program cannot use; its message is shown to the user as is."""


def load_image(path):
    """Read an image file into an array of shape (h, w, c).

    Any format Pillow reads is accepted. The image is turned upright by its
    EXIF orientation; alpha is dropped; palette images become RGB; CMYK and
    YCbCr become RGB; greyscale (8-bit, 16-bit, 32-bit or float) stays one
    channel; a 16-bit colour PNG keeps its 16 bits (Pillow would reduce it to
    8; imagecodecs decodes it). Integer images keep their integer type so
    that their distinct colours can be counted exactly.

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
    path = file_path(path)
    check_file(path)
    try:
        with warnings.catch_warnings():
            # A file over Pillow's pixel limit is refused below; one just under
            # it is a large photo, not an attack, so its warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format == "PNG" and _png_16_bit_colour(path):
                    return _png_16_bit(path)
                frames = getattr(img, "n_frames", 1)
                img.load()
                # In place: a copy would cost a second decoded image at the peak.
                ImageOps.exif_transpose(img, in_place=True)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        hint = ("; a video? give it with --video"
                if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS else "")
        raise InputError(f"{path}: not a readable image ({exc}){hint}") from None
    if frames > 1:
        warnings.warn(f"{path} has {frames} frames: the first is segmented "
                      f"(gmmseg.segment_video, or --video, segments them all)", stacklevel=2)
    return _to_array(img)


def check_file(path):
    """Refuse a path that is missing, a directory or an empty file, in one line each."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an image")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty")


def _png_16_bit_colour(path):
    """Whether a PNG holds 16-bit colour or grey-and-alpha, which Pillow reads as 8 bits.

    Its header (IHDR, the first chunk) gives the bit depth at byte 24 and
    the colour type at byte 25: 2 RGB, 4 grey and alpha, 6 RGBA.
    """
    with open(path, "rb") as f:
        header = f.read(26)
    return len(header) == 26 and header[24] == 16 and header[25] in (2, 4, 6)


def _png_16_bit(path):
    """A 16-bit colour PNG at full depth, alpha dropped: (h, w, c) uint16, c in {1, 3}.

    Pillow has checked its size against its decompression-bomb limit.
    """
    import imagecodecs

    with open(path, "rb") as f:
        try:
            array = imagecodecs.png_decode(f.read())
        except imagecodecs.PngError as exc:  # load_image says it is unreadable
            raise OSError(str(exc)) from None
    array = array.reshape(*array.shape[:2], -1)
    return np.ascontiguousarray(array[:, :, :1] if array.shape[2] == 2 else array[:, :, :3])


def file_path(path, name="path"):
    """``os.fspath(path)``, or an InputError naming ``name`` for what is not a path."""
    try:
        return os.fspath(path)
    except TypeError:
        raise InputError(f"{name} must be a file's path, not {type(path).__name__}") from None


def image_array(img):
    """A Pillow image as ``load_image`` reads a file: upright, (h, w, c) with c in {1, 3}.

    Raises
    ------
    InputError
        If the image cannot be decoded (a truncated file opened lazily).
    """
    try:
        return _to_array(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"image: not a readable image ({exc})") from None


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
    array = _pixels(img)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError("the image has no pixels")
    return array


def _pixels(img, rows=256):
    """``np.asarray(img)``, a band of rows at a time.

    Pillow builds the whole image's bytes as a list of chunks and then joins
    them: two more copies of the image at the peak, 290 MB on a 48 MP photo.
    """
    first = np.asarray(img.crop((0, 0, img.width, min(rows, img.height))))
    array = np.empty((img.height, *first.shape[1:]), first.dtype)
    array[:len(first)] = first
    for top in range(rows, img.height, rows):
        array[top:top + rows] = np.asarray(img.crop((0, top, img.width,
                                                     min(top + rows, img.height))))
    return array


# EM's loop over its components (a logpdf each) and over its rows (the
# log-sum-exp) run on up to this many threads once there are
# PARALLEL_ROWS rows: NumPy and BLAS release the GIL inside each, and each
# component's or row's numbers are those one thread computes, bit for bit. An
# E-step on 294 000 colours took 55 ms on one thread and about 30 on two
# (docs/speed.md); more than two threads were not measured (2 cores).
EM_THREADS = min(2, os.cpu_count() or 1)
PARALLEL_ROWS = 20_000
_em_threads = [EM_THREADS]  # lowered by em_threads for a batch task's share of the cores


@contextlib.contextmanager
def em_threads(n):
    """Let EM use at most ``n`` threads (None: ``EM_THREADS``) within the block."""
    before = _em_threads[0]
    _em_threads[0] = EM_THREADS if n is None else max(1, min(n, EM_THREADS))
    try:
        yield
    finally:
        _em_threads[0] = before


@functools.cache
def _thread_pool(n):
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(n, thread_name_prefix="em")


def for_each(function, parts, n_rows):
    """Call ``function(part)`` for each of ``parts``, on EM's threads for ``n_rows`` rows.

    On one thread, in order, when ``n_rows`` is below ``PARALLEL_ROWS`` (a
    thread's hand-over would cost more than it saves) or ``em_threads`` is 1.
    """
    n = _em_threads[0]
    if n <= 1 or n_rows < PARALLEL_ROWS:
        for part in parts:
            function(part)
        return
    for future in [_thread_pool(n).submit(function, part) for part in parts]:
        future.result()


def row_blocks(n_rows):
    """``n_rows`` split into one slice per thread ``for_each`` uses for them."""
    n = _em_threads[0] if n_rows >= PARALLEL_ROWS else 1
    edges = np.linspace(0, n_rows, n + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def label_counts(labels, ncomp):
    """How many pixels carry each label 0 .. ncomp - 1, shape (ncomp,), int64.

    ``bincount`` first copies 8-bit labels to 64-bit integers: 5 ms for a
    1920x1080 frame and 50 ms for 12 MP, against 1 and 12 ms for comparing
    them with each of four labels in turn. A comparison costs about a fifth
    of a ``bincount``, so beyond 16 labels ``bincount`` is the quicker.
    """
    if ncomp > 16 or labels.dtype != np.uint8:
        return np.bincount(labels.ravel(), minlength=ncomp)[:ncomp]
    return np.array([np.count_nonzero(labels == k) for k in range(ncomp)], dtype=np.int64)


def label_means(image, labels, ncomp):
    """Mean colour of each label's pixels.

    Parameters
    ----------
    image : ndarray of shape (h, w, c), or (..., c)
    labels : ndarray of shape (h, w), or the image's (...)
    ncomp : int

    Returns
    -------
    means : ndarray of shape (ncomp, c)
        In the image's units; 0 for a label no pixel has.
    """
    flat = labels.ravel()
    counts = np.maximum(np.bincount(flat, minlength=ncomp), 1)
    return np.stack([np.bincount(flat, weights=image[..., ch].ravel(), minlength=ncomp)
                     for ch in range(image.shape[-1])], axis=1) / counts[:, None]


def max_value(image):
    """The value that means full intensity for this image's type (for display)."""
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    return float(max(image.max(), 1e-12))


def temporary_prefix():
    """How this process's temporaries begin: ``.tmp-<host>-<pid>-``, their owner named.

    A run killed while it writes leaves its temporary behind; the name lets a
    later run tell a dead owner's (removable) from a live one's
    (``gmmseg.outputs.remove_stale_temporaries``).
    """
    import socket

    return f".tmp-{socket.gethostname()}-{os.getpid()}-"


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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=temporary_prefix(), suffix=suffix)
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


def paint(colours, labels):
    """Each label's colour, (..., c); labels beyond the colours (outside a mask) black."""
    palette = np.vstack([colours, np.zeros((1, colours.shape[1]))])
    return palette[np.minimum(labels, len(colours))]


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


def new_figure(show, **kwargs):
    """A figure that opens a window only if ``show``; only then is pyplot imported."""
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(**kwargs)
    # A bare Figure draws with Agg and never touches a display.
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def finish_figure(figure, path, show):
    """Save the figure atomically if ``path`` is given; open its window if ``show``."""
    if path is not None:
        # No "Software" entry: the PNG's bytes then depend on what is drawn, not
        # on matplotlib's version, so a rerun leaves a committed figure as it was.
        write_atomic(path, lambda tmp: figure.savefig(tmp, format="png",
                                                       metadata={"Software": None}))
    if show:
        import matplotlib.pyplot as plt

        plt.show()


def _luminance(rgb):
    """Relative luminance of colours in [0, 1], shape (..., 3): for black or white text on them."""
    return np.asarray(rgb) @ np.array([0.2126, 0.7152, 0.0722])


def _as_rgb(colours):
    """Colours of shape (K, 1) (grey) or (K, 3) as (K, 3)."""
    colours = np.asarray(colours, dtype=np.float64)
    return np.repeat(colours, 3, axis=1) if colours.shape[1] == 1 else colours


def checkerboard(shape, side=8):
    """A neutral grey checkerboard of shape (h, w, 1), values 0.30 and 0.42.

    Behind a mask, it shows which pixels are not the component's whatever the
    component's colour: a light component stands out from its darkness, a
    dark one from its pattern.
    """
    rows, cols = np.indices(shape) // side
    return np.where((rows + cols) % 2 == 1, 0.30, 0.42)[:, :, None]


@functools.lru_cache(maxsize=1)
def _font_charmap():
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap()


def drawable(text):
    """``text`` as matplotlib's default font can draw it.

    A character the font lacks (a CJK file name, say) is written as its
    escape, ``\\u732b``, instead of an empty box and a "Glyph missing"
    warning; a ``$`` is escaped so that it does not start mathtext.
    """
    charmap = _font_charmap()
    return "".join(ascii(ch)[1:-1] if ord(ch) not in charmap else ch
                   for ch in text).replace("$", r"\$")


def _panel_axes(show, n_images, aspect, plot):
    """A figure with ``n_images`` image panels and an optional plot, four to a row.

    Placed by hand, in inches: matplotlib's constrained layout took a third of
    the figure's time (0.12 of 0.35 s) and widened a whole column for the
    plot's tick labels. The plot's row is at least 2.3 inches high, so that it
    stays readable beside a panorama.

    Returns
    -------
    figure : matplotlib.figure.Figure
    axes : list of Axes
        The image panels in reading order, then the plot's.
    """
    cell, title, pad, top = 3.2, 0.36, 0.08, 0.42  # cell width, title band, margin, suptitle band
    image_w = cell - 2 * pad
    image_h = image_w * aspect
    n_cells = n_images + plot
    ncols = min(n_cells, 4)
    nrows = -(-n_cells // ncols)
    heights = [title + image_h + pad] * nrows
    if plot:
        heights[-1] = title + max(image_h, 2.3) + pad
    width, height = cell * ncols, top + sum(heights) + pad
    figure = new_figure(show, figsize=(width, height), dpi=100)
    axes = []
    for index in range(n_cells):
        row, col = divmod(index, ncols)
        x = col * cell + pad
        y = height - top - sum(heights[: row + 1]) + pad  # the bottom of the panel
        box = [x, y, image_w, heights[row] - title - pad]
        if index == n_images:  # the plot: room for its tick labels and axis labels
            box = [x + 0.8, y + 0.5, image_w - 0.9, box[3] - 0.5]
        axes.append(figure.add_axes([box[0] / width, box[1] / height, box[2] / width,
                                     box[3] / height]))
    return figure, axes


def visualize(image, labels, mus_rgb, log_likelihood_history=None, title=None,
              path=None, show=False, regions=None, warm_up_history=None):
    """Draw the segmentation: the image, its recolouring, one mask per component, EM's progress.

    Each component is named by its mean colour: the recoloured panel paints
    its pixels with it, and its mask's title sits on a box of that colour.
    A mask shows the component's pixels in their true colours over a grey
    checkerboard, so light and dark components both stand out.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
        The image as loaded.
    labels : ndarray of shape (h, w)
        Component index of each pixel, 0..K-1; a label beyond (outside a
        mask) is in no component's panel.
    mus_rgb : ndarray of shape (K, c)
        Each component's mean, in the image's own units.
    log_likelihood_history : sequence of float, optional
        Mean log-likelihood per pixel of EM's start and after each step on the
        exact colours; drawn as a curve.
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
    warm_up_history : sequence of float, optional
        The same for the warm-up EM on the colour histogram, which ran first
        (``segmentation_GMM.fit_colours``); drawn before the exact steps, in
        another style.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    ncomp = len(mus_rgb)
    image_small, labels_small = display_copy(image, labels)
    grey = image_small.shape[2] == 1
    colours = np.clip(np.asarray(mus_rgb, dtype=np.float64) / max_value(image), 0, 1)
    recoloured = paint(colours, labels_small)
    swatches = _as_rgb(colours)

    h, w = labels_small.shape
    figure, axes = _panel_axes(show, 2 + ncomp, h / w, log_likelihood_history is not None)
    cmap = "gray" if grey else None

    def show_image(ax, data, text, **title_options):
        ax.imshow(data[:, :, 0] if grey and data.shape[2] == 1 else data, cmap=cmap, vmin=0,
                  vmax=1, interpolation="nearest")
        ax.set_title(text, fontsize=10, **title_options)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_anchor("N")  # in a row made taller by the plot, under its title

    show_image(axes[0], image_small, "input")
    if regions is None:
        show_image(axes[1], recoloured,
                   f"{ncomp} component{'s' if ncomp != 1 else ''} (mean colour)")
    else:
        # The segmentation that was scored: each region in its mean colour
        # (over the display copy's pixels, which is all the panel shows).
        _, regions_small = display_copy(image, regions)
        n_regions = int(regions.max()) + 1
        means = label_means(image_small, regions_small, n_regions)
        show_image(axes[1], means[regions_small], f"{n_regions} regions (mean colour)")
    counts = label_counts(labels, ncomp)
    share = counts / max(counts.sum(), 1)  # of the pixels fitted: a mask's outside is not
    background = checkerboard(labels_small.shape)
    for k in range(ncomp):
        panel = np.where((labels_small == k)[:, :, None], image_small, background)
        dark = _luminance(swatches[k]) < 0.45
        show_image(axes[2 + k], panel, f"component {k}: {100 * share[k]:.1f}% of pixels",
                   color="white" if dark else "black",
                   bbox={"facecolor": swatches[k], "edgecolor": "0.3", "pad": 2.5})
    if log_likelihood_history is not None:
        ax = axes[-1]
        warm = np.asarray(warm_up_history if warm_up_history is not None else [])
        exact = np.asarray(log_likelihood_history)
        start = max(len(warm) - 1, 0)  # the exact steps start from the warm-up's end
        if len(warm):
            ax.plot(np.arange(len(warm)), warm, marker="o", markersize=3, linestyle="--",
                    color="0.55", label=f"warm-up on the colour histogram: {len(warm) - 1}")
        ax.plot(start + np.arange(len(exact)), exact, marker="o", markersize=3,
                color=OKABE_ITO[4], label=f"EM on the exact colours: {len(exact) - 1}")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.tick_params(labelsize=9)
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.set_xlabel("EM iteration (0: the k-means seed)", fontsize=9)
        ax.set_ylabel("log-likelihood / pixel (nats)", fontsize=9)
        ax.set_title("convergence", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(drawable(title), fontsize=12, y=1 - 0.12 / figure.get_figheight(),
                        va="top")
    finish_figure(figure, path, show)
    return figure
