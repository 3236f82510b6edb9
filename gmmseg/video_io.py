"""Reading and writing clips one frame at a time, so memory does not grow with their length.

An MP4 (or anything ffmpeg reads, through ``imageio_ffmpeg``), an animated GIF
(Pillow) or a folder of frames in; an H.264 MP4 or a GIF, and the label
frames (a lossless grey H.264 ``.mkv`` by default, or a ``.npy``), out, each
written atomically. ``read_labels`` reads the label frames back, any one of
them without the rest.
"""

import contextlib
import itertools
import logging
import os
import re

import numpy as np
from PIL import Image, ImageSequence

from utils import InputError, atomic_path, load_image, max_value

__all__ = ["DEFAULT_FPS", "LABEL_FORMATS", "MP4_PRESET", "MP4_PRESETS", "colour_keys",
           "gif_delay", "key_colours", "labels_writer", "natural_key", "npy_frames_writer",
           "open_video", "read_labels", "unpack_frame", "video_writer"]

# A folder of frames has no frame rate of its own, and a GIF may not give one.
DEFAULT_FPS = 25.0

# libx264's speed/size trade-off for the segmented MP4. A segmented frame is a
# few flat colours, which every preset compresses well; "fast" costs about as
# much CPU as the segmentation itself (48 ms a 1920x1080 frame, against 28 for
# "veryfast", whose frames were 1.3 dB further from the painted ones at the
# same size: docs/video.md). A faster preset is the user's choice (--preset).
MP4_PRESET = "fast"
# How a clip's label frames are kept (--labels): "mkv", lossless H.264 of one
# grey plane (x264 at qp 0, "ultrafast", a keyframe every LABELS_GOP frames),
# chosen by measurement among FFV1, x264 and zlib'd .npz members (docs/video.md):
# at 640x360, 2.4 KB a frame against 230 KB raw, 2 ms of ffmpeg's CPU a frame,
# beside the segmentation on the other core; "npy", the raw uint8 array; "none".
LABEL_FORMATS = ("mkv", "npy", "none")
LABELS_GOP = 30  # reading one frame decodes at most this many

MP4_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
               "slower", "veryslow")


def open_video(path, packed=False):
    """Open a clip to read one frame at a time.

    An animated GIF is read with Pillow, a folder as one frame per image file
    in natural order, anything else with ffmpeg (through ``imageio_ffmpeg``).

    Parameters
    ----------
    path : str or path-like
        A video file, an animated GIF, or a folder of images.
    packed : bool, default=False
        Give each frame as its pixels' packed colours (``colour_keys``) instead
        of RGB. ffmpeg then decodes to 4 bytes a pixel, B, G, R and a zero,
        which read as one little-endian integer already are the packed colour:
        at 1920x1080 that saves the 6 ms a frame of packing it in NumPy.

    Returns
    -------
    info : dict
        ``container`` ("gif" for a GIF, else "mp4": the format to write the
        result in), ``fps`` (float) and ``frames`` (int, or an estimate from the
        duration for ffmpeg inputs; for progress only).
    frames : iterator of ndarray of shape (h, w, 3), uint8
        The frames as 8-bit RGB (with ``packed``: shape (h, w), int32).
        Decoding errors midway raise ``InputError``.

    Raises
    ------
    InputError
        If the path is missing, is not a video, or has no frames.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path) or _is_gif(path):
        info, frames = _folder_frames(path) if os.path.isdir(path) else _gif_frames(path)
        if packed:
            frames = (colour_keys(frame).reshape(frame.shape[:2]) for frame in frames)
    else:
        info, frames = _ffmpeg_frames(path, packed)
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


def colour_keys(frame):
    """Each pixel's 8-bit RGB colour packed into one integer.

    Parameters
    ----------
    frame : ndarray of shape (h, w, 3), uint8

    Returns
    -------
    keys : ndarray of shape (h * w,), int32
        ``r << 16 | g << 8 | b``, from 0 to 2**24 - 1.
    """
    pixels = frame.reshape(-1, 3).astype(np.int32)
    return (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]


def key_colours(keys):
    """The colours of packed keys (see ``colour_keys``), shape (n, 3)."""
    return np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1)


def unpack_frame(keys):
    """A frame of packed colours, shape (h, w), back to RGB, shape (h, w, 3), uint8."""
    return key_colours(keys.ravel()).astype(np.uint8).reshape(*keys.shape, 3)


def _as_rgb8(image):
    """An (h, w, c) image from ``load_image`` as (h, w, 3) uint8."""
    if image.dtype != np.uint8:
        scaled = image.astype(np.float64) * (255.0 / max_value(image))
        image = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def natural_key(name):
    """Sort key that orders the numbers in names by value: frame2 before frame10."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name)]


def _frame_files(folder):
    """The image files of a folder in natural order (``natural_key``); hidden files are skipped.

    Most exporters do not zero-pad frame numbers, and a plain sort would read
    frame1, frame10, frame11, frame2, ... and scramble the clip.
    """
    extensions = Image.registered_extensions()
    names = sorted((name for name in os.listdir(folder)
                    if not name.startswith(".")
                    and os.path.splitext(name)[1].lower() in extensions), key=natural_key)
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


def _probe(path, what="a readable video"):
    """imageio-ffmpeg's metadata of a video file (``size`` as (w, h) upright, ``fps``, ...).

    Raises
    ------
    InputError
        Naming the file as not ``what``, or as holding no video stream.
    """
    import imageio_ffmpeg

    probe = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
    # A clip with rotation metadata decodes upright, as players show it (ffmpeg
    # rotates), and imageio-ffmpeg warned on its logger that the size differs
    # from the stored one: a stray line about intended behaviour.
    quiet = logging.getLogger("imageio_ffmpeg")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return next(probe)
    except (OSError, RuntimeError, StopIteration) as exc:
        if "does not contain any stream" in str(exc):
            raise InputError(f"{path}: no video stream (no frames)") from None
        raise InputError(f"{path}: not {what} ({_last_line(exc)})") from None
    finally:
        quiet.setLevel(level)
        probe.close()


def _ffmpeg_frames(path, packed=False):
    meta = _probe(path)
    fps = float(meta.get("fps") or 0) or DEFAULT_FPS
    frames = round(float(meta.get("duration") or 0) * fps) or None
    width, height = meta["size"]
    return {"container": "mp4", "fps": fps, "frames": frames}, \
        _read_ffmpeg(path, height, width, packed)


def _read_ffmpeg(path, height, width, packed=False):
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
               "-i", path, "-map", "0:v:0", "-f", "rawvideo",
               "-pix_fmt", "bgr0" if packed else "rgb24", "pipe:1"]
    shape = (height, width) if packed else (height, width, 3)
    dtype = np.dtype("<i4" if packed else np.uint8)
    frame_bytes = height * width * 4 if packed else height * width * 3
    # With "-v error -xerror" ffmpeg writes at most a few lines to stderr, so
    # reading it only at the end cannot fill its pipe and stall ffmpeg.
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        decoded, size = 0, 0
        try:
            # A fresh buffer for each frame: the caller may keep its frames.
            while (size := process.stdout.readinto(buffer := bytearray(frame_bytes))) \
                    == frame_bytes:
                frame = np.frombuffer(buffer, dtype).reshape(shape)
                if packed:
                    frame &= 0xFFFFFF  # the fourth byte is padding, which ffmpeg sets to 255
                yield frame
                decoded += 1
        except BaseException:
            process.kill()  # the caller stopped early, or failed
            raise
        error = process.stderr.read().decode(errors="replace")
        if process.wait() != 0 or size:
            raise InputError(f"{path}: damaged or truncated after {decoded} frame(s) "
                             f"({_last_line(error) if error.strip() else 'cut short'})")


@contextlib.contextmanager
def video_writer(path, fps, preset=MP4_PRESET):
    """Write a label video frame by frame, atomically.

    Parameters
    ----------
    path : str
        Ends in ".gif" (written with Pillow) or anything else (an H.264 MP4
        written by ffmpeg).
    fps : float
    preset : str, default=MP4_PRESET
        libx264's preset (one of ``MP4_PRESETS``), for an MP4.

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
            writer = _Mp4Writer(tmp, fps, preset)
            try:
                yield writer
            finally:
                writer.close()


def gif_delay(fps):
    """The delay between GIF frames nearest to ``fps``, in ms.

    GIF stores delays in whole hundredths of a second (at least one), and
    Pillow truncates: 1000 / (1000 / 30) is 29.999... ms, which it would write
    as 20 ms. So the delay is rounded here, to the nearest 10 ms; a GIF plays
    at 1000 / ``gif_delay(fps)`` frames per second, 100 at the most.
    """
    return 10 * max(1, round(100.0 / fps))


class _GifWriter:
    """Streams GIF frames: a header, then each frame with its own colour table."""

    def __init__(self, file, fps):
        self._file = file
        self._duration = gif_delay(fps)
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
    """Pipes label frames to ffmpeg's libx264; ffmpeg starts with the first frame.

    Each frame goes down the pipe as its labels, one byte a pixel, followed by
    the palette (ffmpeg's "pal8"), and ffmpeg paints it: at 1920x1080 painting
    in NumPy took 16 ms a frame and piped three times the bytes. ffmpeg's
    ``format=rgb24`` turns it into the very RGB frame NumPy painted before the
    conversion to YUV, so the MP4 is the same, byte for byte.
    """

    def __init__(self, path, fps, preset):
        self._path = path
        self._fps = fps
        self._preset = preset
        self._pipe = None

    def write(self, labels, palette):
        # yuv420p needs even sides: repeat the last row or column if odd.
        h, w = labels.shape
        if h % 2 or w % 2:
            labels = np.pad(labels, ((0, h % 2), (0, w % 2)), mode="edge")
        if self._pipe is None:
            import imageio_ffmpeg

            self._pipe = imageio_ffmpeg.write_frames(
                self._path, (labels.shape[1], labels.shape[0]), pix_fmt_in="pal8",
                fps=self._fps, codec="libx264", macro_block_size=1,
                ffmpeg_log_level="error",
                output_params=["-vf", "format=rgb24", "-preset", self._preset])
            self._pipe.send(None)
        self._pipe.send(np.ascontiguousarray(labels, dtype=np.uint8))
        self._pipe.send(_pal8_palette(palette))

    def close(self):
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None


def _pal8_palette(palette):
    """256 colours as ffmpeg's "pal8" reads them: 32-bit ARGB in the machine's byte order."""
    rgb = np.asarray(palette, dtype=np.uint32)
    table = np.zeros(256, dtype=np.uint32)
    table[: len(rgb)] = 0xFF000000 | rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]
    return table


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


@contextlib.contextmanager
def labels_writer(path, fps, labels_format="mkv"):
    """Write a clip's label frames, one at a time, atomically, as ``labels_format`` says.

    Parameters
    ----------
    path : str or None
        The file (``outputs.OutputNames.labels_file``); None with "none".
    fps : float
        The clip's rate, kept in the ``.mkv``'s timestamps.
    labels_format : {"mkv", "npy", "none"}
        See ``LABEL_FORMATS``; "none" writes nothing.

    Yields
    ------
    writer
        ``writer.write(labels)`` appends a frame of shape (h, w), uint8.
    """
    if labels_format == "none":
        yield _NoLabels()
    elif labels_format == "npy":
        with npy_frames_writer(path) as writer:
            yield writer
    else:
        with atomic_path(path) as tmp:
            writer = _MkvLabels(tmp, fps)
            try:
                yield writer
            finally:
                writer.close()


class _NoLabels:
    def write(self, labels):
        pass


class _MkvLabels:
    """Label frames as lossless H.264 of one grey plane: any size, odd ones too."""

    def __init__(self, path, fps):
        self._path, self._fps, self._pipe = path, fps, None

    def write(self, labels):
        if self._pipe is None:
            import imageio_ffmpeg

            # quality=None: imageio-ffmpeg would add a lossy -qscale; -qp 0 is lossless.
            self._pipe = imageio_ffmpeg.write_frames(
                self._path, (labels.shape[1], labels.shape[0]), pix_fmt_in="gray",
                pix_fmt_out="gray", fps=self._fps, codec="libx264", quality=None,
                macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-qp", "0", "-preset", "ultrafast", "-g", str(LABELS_GOP)])
            self._pipe.send(None)
        self._pipe.send(np.ascontiguousarray(labels, dtype=np.uint8))

    def close(self):
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None


def read_labels(path, frame=None):
    """A clip's label frames as ``segment_video`` wrote them (``.mkv`` or ``.npy``).

    Parameters
    ----------
    path : str or os.PathLike
        ``<stem>_k<K>_labels.mkv`` or ``_labels.npy``.
    frame : int, optional
        Only this frame (0-based; negative counts from the end for a ``.npy``):
        a ``.mkv`` is read from the keyframe before it, at most ``LABELS_GOP``
        frames, a ``.npy`` through a memory map; the rest is not read.

    Returns
    -------
    labels : ndarray of uint8, shape (n_frames, h, w), or (h, w) with ``frame``
        Each pixel's component, as in the clip's record; read-only for a whole
        ``.mkv`` (the decoder's buffer, not a copy).

    Raises
    ------
    InputError
        For a file that is not a label file, or a ``frame`` beyond the clip.
    """
    import subprocess

    import imageio_ffmpeg

    path = os.fspath(path)
    if path.endswith(".npy"):
        stack = np.load(path, mmap_mode="r")
        if frame is None:
            return np.array(stack)
        if not -len(stack) <= frame < len(stack):
            raise InputError(f"{path}: frame {frame} is beyond its {len(stack)} frames")
        return np.array(stack[frame])
    meta = _probe(path, "a label file")
    width, height = meta["size"]
    seek = []
    if frame is not None:
        if frame < 0:
            raise InputError(f"{path}: frame {frame}: give a frame from 0")
        # Seeking to half a frame before it lands on it whatever the rounding of
        # the container's millisecond timestamps.
        seek = ["-ss", f"{max(0.0, (frame - 0.5) / float(meta['fps'])):.6f}"]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", *seek, "-i", path,
               *(["-frames:v", "1"] if frame is not None else []),
               "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        raise InputError(f"{path}: not a label file ({_last_line(done.stderr.decode())})")
    labels = np.frombuffer(done.stdout, np.uint8)
    if frame is not None and labels.size == 0:
        raise InputError(f"{path}: frame {frame} is beyond its frames")
    labels = labels.reshape(-1, height, width)
    return labels[0] if frame is not None else labels
