"""Helpers for Lab 10: reading an image, writing files safely, drawing the result.

Nothing here runs on import: matplotlib is imported only when a figure is drawn,
so the module loads fast and works on a machine without a display.
"""

import contextlib
import itertools
import json
import os
import re
import tempfile
import warnings

import numpy as np
from PIL import Image, ImageOps, ImageSequence

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


def load_truth(path):
    """Read one or several human segmentations of an image.

    Parameters
    ----------
    path : str or path-like
        A label image (any file Pillow reads; an RGB label image is read as one
        label per distinct colour), a ``.npy`` array of shape (h, w) or
        (n_humans, h, w), a ``.npz`` with key ``segs`` of either shape, or a
        BSDS ``.mat`` (``groundTruth{i}.Segmentation``, one per human).

    Returns
    -------
    truths : ndarray of shape (n_humans, h, w), int64
        Region labels; their values mean nothing beyond equal or not.

    Raises
    ------
    InputError
        If the file is missing or unreadable, or holds no integer label array.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"--truth {path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".npy":
            truths = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                truths = data["segs"]
        elif suffix == ".mat":
            import scipy.io  # only here: no other input needs it

            humans = scipy.io.loadmat(path)["groundTruth"].ravel()
            truths = np.stack([human["Segmentation"][0, 0] for human in humans])
        else:
            image = load_image(path)
            truths = np.unique(image.reshape(-1, image.shape[2]), axis=0,
                               return_inverse=True)[1].reshape(image.shape[:2])
    except InputError as exc:
        raise InputError(f"--truth {exc}") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"--truth {path}: not a readable label file ({exc})") from None
    truths = np.asarray(truths)
    if truths.ndim == 2:
        truths = truths[None]
    if truths.ndim != 3 or truths.size == 0 or not (
            np.issubdtype(truths.dtype, np.integer) or np.issubdtype(truths.dtype, np.bool_)):
        raise InputError(f"--truth {path}: expected integer labels of shape (h, w) or "
                         f"(humans, h, w), not {truths.dtype} {truths.shape}")
    return truths.astype(np.int64)


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
    """
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    # mkstemp creates the file private (0600); the result should carry the
    # permissions any new file of the user's gets.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_atomic(path, write):
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json(path, record):
    """Write ``record`` as indented JSON, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)

    write_atomic(path, write)


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


# --------------------------------------------------------------------------
# Video: frames are read and written one at a time, so memory does not grow
# with the clip's length.
# --------------------------------------------------------------------------

# A folder of frames has no frame rate of its own, and a GIF may not give one.
DEFAULT_FPS = 25.0

# libx264's speed/size trade-off for the segmented MP4. A segmented frame is a
# few flat colours, which every preset compresses well; "fast" costs about as
# much CPU as the segmentation itself.
MP4_PRESET = "fast"


def open_video(path):
    """Open a clip to read one frame at a time.

    An animated GIF is read with Pillow, a folder as one frame per image file
    in name order, anything else with ffmpeg (through ``imageio_ffmpeg``).

    Parameters
    ----------
    path : str or path-like
        A video file, an animated GIF, or a folder of images.

    Returns
    -------
    info : dict
        ``container`` ("gif" for a GIF, else "mp4": the format to write the
        result in), ``fps`` (float) and ``frames`` (int, or an estimate from the
        duration for ffmpeg inputs; for progress only).
    frames : iterator of ndarray of shape (h, w, 3), uint8
        The frames as 8-bit RGB. Decoding errors midway raise ``InputError``.

    Raises
    ------
    InputError
        If the path is missing, is not a video, or has no frames.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        info, frames = _folder_frames(path)
    elif _is_gif(path):
        info, frames = _gif_frames(path)
    else:
        info, frames = _ffmpeg_frames(path)
    # Reading the first frame now puts "not a video" and "no frames" before
    # any output is created.
    try:
        first = next(frames)
    except StopIteration:
        raise InputError(f"{path}: the video has no frames") from None
    return info, itertools.chain([first], frames)


def _last_line(exc):
    """The last line of an error (ffmpeg's carry its whole log), without ffmpeg's
    "[demuxer @ 0x...]" prefixes."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
             for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else type(exc).__name__


def _as_rgb8(image):
    """An (h, w, c) image from ``load_image`` as (h, w, 3) uint8."""
    if image.dtype != np.uint8:
        scaled = image.astype(np.float64) * (255.0 / max_value(image))
        image = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def _frame_files(folder):
    """The image files of a folder, sorted by name; hidden files are skipped."""
    extensions = Image.registered_extensions()
    names = sorted(name for name in os.listdir(folder)
                   if not name.startswith(".")
                   and os.path.splitext(name)[1].lower() in extensions)
    if not names:
        raise InputError(f"{folder}: the folder holds no image files")
    return [os.path.join(folder, name) for name in names]


def _folder_frames(folder):
    paths = _frame_files(folder)
    return {"container": "mp4", "fps": DEFAULT_FPS, "frames": len(paths)}, \
        _read_folder(paths)


def _read_folder(paths):
    shape = None
    for path in paths:
        frame = _as_rgb8(load_image(path))
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise InputError(f"{path}: {frame.shape[1]}x{frame.shape[0]} pixels, but the "
                             f"first frame is {shape[1]}x{shape[0]}")
        yield frame


def _is_gif(path):
    try:
        with Image.open(path) as img:
            return img.format == "GIF"
    except (OSError, SyntaxError, ValueError):
        return False


def _gif_frames(path):
    try:
        img = Image.open(path)
        n_frames = img.n_frames
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable GIF ({exc})") from None
    duration = img.info.get("duration") or 0
    fps = 1000.0 / duration if duration > 0 else DEFAULT_FPS
    return {"container": "gif", "fps": fps, "frames": n_frames}, _read_gif(path, img)


def _read_gif(path, img):
    try:
        with img:
            # Pillow composites each frame onto the previous ones as the GIF's
            # disposal says; converting to RGB resolves the (local) palettes.
            for frame in ImageSequence.Iterator(img):
                yield np.asarray(frame.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot decode the GIF ({exc})") from None


def _ffmpeg_frames(path):
    import imageio_ffmpeg

    probe = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
    try:
        meta = next(probe)
    except (OSError, RuntimeError, StopIteration) as exc:
        if "does not contain any stream" in str(exc):
            raise InputError(f"{path}: no video stream (no frames)") from None
        raise InputError(f"{path}: not a readable video ({_last_line(exc)})") from None
    finally:
        probe.close()
    fps = float(meta.get("fps") or 0) or DEFAULT_FPS
    frames = round(float(meta.get("duration") or 0) * fps) or None
    width, height = meta["size"]
    return {"container": "mp4", "fps": fps, "frames": frames}, \
        _read_ffmpeg(path, height, width)


def _read_ffmpeg(path, height, width):
    """Decode a video's first stream to RGB frames with the bundled ffmpeg.

    ``-xerror`` makes ffmpeg stop with an error at the first damaged packet,
    and its exit code is checked: a truncated file whose index survives (an
    MP4 written with "faststart") otherwise decodes without complaint to a
    shorter clip. (``imageio_ffmpeg.read_frames`` does not report the exit
    code, hence this reader.)
    """
    import subprocess

    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-xerror",
               "-i", path, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    frame_bytes = height * width * 3
    # With "-v error -xerror" ffmpeg writes at most a few lines to stderr, so
    # reading it only at the end cannot fill its pipe and stall ffmpeg.
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        decoded = 0
        try:
            while len(buffer := process.stdout.read(frame_bytes)) == frame_bytes:
                yield np.frombuffer(buffer, np.uint8).reshape(height, width, 3)
                decoded += 1
        except BaseException:
            process.kill()  # the caller stopped early, or failed
            raise
        error = process.stderr.read().decode(errors="replace")
        if process.wait() != 0 or buffer:
            raise InputError(f"{path}: damaged or truncated after {decoded} frame(s) "
                             f"({_last_line(error) if error.strip() else 'cut short'})")


@contextlib.contextmanager
def video_writer(path, fps):
    """Write a label video frame by frame, atomically.

    Parameters
    ----------
    path : str
        Ends in ".gif" (written with Pillow) or anything else (an H.264 MP4
        written by ffmpeg).
    fps : float

    Yields
    ------
    writer
        ``writer.write(labels, palette)`` appends the frame ``palette[labels]``,
        with ``labels`` of shape (h, w), uint8, and ``palette`` (K, 3), uint8.
    """
    with atomic_path(path) as tmp:
        if path.lower().endswith(".gif"):
            with open(tmp, "wb") as file:
                writer = _GifWriter(file, fps)
                yield writer
                writer.finish()
        else:
            writer = _Mp4Writer(tmp, fps)
            try:
                yield writer
            finally:
                writer.close()


class _GifWriter:
    """Streams GIF frames: a header, then each frame with its own colour table."""

    def __init__(self, file, fps):
        self._file = file
        # GIF stores delays in 1/100 s and Pillow truncates: 1000 / (1000 / 30)
        # is 29.999... ms, which it writes as 20 ms. Round to the nearest 10 ms.
        self._duration = 10 * max(1, round(100.0 / fps))
        self._started = False

    def write(self, labels, palette):
        from PIL import GifImagePlugin

        # The labels are the palette indices: no colour quantisation needed.
        frame = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))
        frame.putpalette(np.asarray(palette, dtype=np.uint8).tobytes())
        if not self._started:
            header, _ = GifImagePlugin.getheader(frame, info={"loop": 0})
            self._file.write(b"".join(header))
            self._started = True
        self._file.write(b"".join(GifImagePlugin.getdata(
            frame, duration=self._duration, include_color_table=True)))

    def finish(self):
        self._file.write(b";")  # the GIF trailer


class _Mp4Writer:
    """Pipes RGB frames to ffmpeg's libx264; ffmpeg starts with the first frame."""

    def __init__(self, path, fps):
        self._path = path
        self._fps = fps
        self._pipe = None

    def write(self, labels, palette):
        # yuv420p needs even sides: repeat the last row or column if odd.
        h, w = labels.shape
        if h % 2 or w % 2:
            labels = np.pad(labels, ((0, h % 2), (0, w % 2)), mode="edge")
        frame = np.asarray(palette, dtype=np.uint8)[labels]
        if self._pipe is None:
            import imageio_ffmpeg

            self._pipe = imageio_ffmpeg.write_frames(
                self._path, (frame.shape[1], frame.shape[0]), fps=self._fps,
                codec="libx264", macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-preset", MP4_PRESET])
            self._pipe.send(None)
        self._pipe.send(frame)

    def close(self):
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None


@contextlib.contextmanager
def npy_frames_writer(path):
    """Write equal-shaped frames into one .npy array, one frame at a time.

    The header is written first with 0 frames and rewritten with the count at
    the end; numpy pads every header so that the first axis can grow in place.

    Yields
    ------
    writer
        ``writer.write(frame)`` appends a frame; ``writer.count`` is how many.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        writer = _NpyFrames(file)
        yield writer
        writer.finish()


class _NpyFrames:
    def __init__(self, file):
        self._file = file
        self._shape = None
        self._dtype = None
        self.count = 0

    def _header(self):
        np.lib.format.write_array_header_1_0(self._file, {
            "descr": np.lib.format.dtype_to_descr(self._dtype),
            "fortran_order": False,
            "shape": (self.count, *self._shape)})

    def write(self, frame):
        frame = np.ascontiguousarray(frame)
        if self._shape is None:
            self._shape, self._dtype = frame.shape, frame.dtype
            self._header()
            self._data_start = self._file.tell()
        elif frame.shape != self._shape or frame.dtype != self._dtype:
            raise ValueError(f"frame {self.count} is {frame.shape} {frame.dtype}, "
                             f"not {self._shape} {self._dtype}")
        self._file.write(frame.data)
        self.count += 1

    def finish(self):
        if self._shape is None:
            self._shape, self._dtype = (), np.dtype(np.uint8)
            self._header()
            return
        end = self._file.tell()
        self._file.seek(0)
        self._header()
        if self._file.tell() != self._data_start:
            raise RuntimeError("the .npy header changed length when the frame count grew")
        self._file.seek(end)
