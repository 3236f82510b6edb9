"""Video: one mixture tracked through a clip, frame by frame.

The first frame is fitted as an image is (``segmentation_GMM.segment``); each
later frame is labelled by the E-step under the current mixture, read back
from a memo of every colour seen so far, and refitted from the current
parameters only when the mixture explains it clearly worse. Component k thus
stays "the same" segment through the clip. Reading and writing clips is
``gmmseg.video_io``'s.
"""

import copy
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

import segmentation_GMM as sg
import utils
from gmmseg import figures, outputs, video_io
from gmmseg.options import Options, make_options
from gmmseg.params import ParameterError, check_int, check_video_params
from gmmseg.video_io import colour_keys, key_colours, unpack_frame

__all__ = [
    "REFIT_DROP",
    "REFIT_ITERATIONS",
    "ColourMemo",
    "colour_keys",
    "key_colours",
    "label_frame",
    "refit",
    "segment_video",
    "track",
]

# A frame is labelled by the E-step alone (the previous frame's parameters,
# unchanged) while its mean log-likelihood per pixel stays within REFIT_DROP
# nats of the frame the mixture was last fitted on. A larger drop means the
# colours have moved away from the components (a pan, a new object, a change
# of light); then up to REFIT_ITERATIONS EM steps start from the current
# parameters. Starting there, EM moves each component to the nearby colours
# instead of re-seeding them, so component k stays "the same" segment. The
# reference is the last fitted frame, not the previous frame, so that a slow
# drift adds up to a refit instead of hiding under the threshold frame after
# frame. 0.1 nats per pixel (each pixel 10% less likely, on average) is above
# both the frame-to-frame jitter of a compressed clip and the error of the
# histogram refit (``refit``), so a refit is not triggered by noise; the
# benchmark's slow pan drifts by 0.001 nats over 150 frames and 0.03 over 600,
# so none of its frames is refitted, while a diagonal pan across the whole
# photo in 4 s crosses the threshold every 6 frames or so.
REFIT_DROP = 0.1
REFIT_ITERATIONS = 5

# Seconds between progress lines when stderr is no terminal (a log file).
PROGRESS_EVERY = 5.0

# Options that only an image takes: a clip is labelled colour by colour.
IMAGE_OPTIONS = (*Options.names("features", "labelling"), "mrf")


class ColourMemo:
    """The E-step of 8-bit RGB colours under one mixture, each colour computed once.

    Consecutive frames share most of their colours: in the benchmark's pan a
    frame has about 35 000 distinct colours, of which about 450 on average
    have not been seen before (2 000 in a pan four times as fast). So the
    E-step runs on a colour when it first appears and
    is read back from a table after that: a frame costs two table look-ups
    per pixel plus the E-step of its new colours. The labels are exactly the
    E-step's on every pixel. The tables have one entry per 24-bit colour
    (80 MB), whatever the clip's length.

    Parameters
    ----------
    gmm : GMM
        The mixture, in the Z-scored units given by ``mean`` and ``std``. Call
        ``reset`` after changing its parameters.
    mean, std : ndarray of shape (3,)
    """

    def __init__(self, gmm, mean, std):
        self.gmm, self.mean, self.std = gmm, mean, std
        self.log_p_x = np.full(2**24, np.nan, dtype=np.float32)  # NaN: not computed
        self.labels = np.zeros(2**24, dtype=np.uint8)

    def reset(self):
        """Forget every colour's E-step."""
        self.log_p_x.fill(np.nan)

    def label(self, keys):
        """Label pixels and measure how well the mixture explains them.

        Parameters
        ----------
        keys : ndarray of shape (n_pixels,)
            Packed colours (``colour_keys``).

        Returns
        -------
        labels : ndarray of shape (n_pixels,), uint8
            argmax_k gamma_nk.
        log_likelihood : float
            Mean ln p(x_n) per pixel.
        """
        # np.take with a platform-sized index, cast once for both tables, is
        # twice as fast as indexing each table with the 32-bit keys (which
        # casts them on every look-up): 7 against 15 ms at 1920x1080.
        index = keys.astype(np.intp)
        log_p_x = np.take(self.log_p_x, index)
        missing = np.isnan(log_p_x)
        if missing.any():
            self.learn(np.unique(keys[missing]))
            log_p_x[missing] = np.take(self.log_p_x, index[missing])
        return np.take(self.labels, index), float(log_p_x.sum(dtype=np.float64)) / len(keys)

    def learn(self, keys):
        """Run the E-step on distinct packed colours and remember the result.

        Parameters
        ----------
        keys : ndarray of shape (n_colours,)
            Packed colours, each once.
        """
        from scipy.special import logsumexp

        log_prob = self.gmm.log_prob((key_colours(keys) - self.mean) / self.std)
        self.log_p_x[keys] = logsumexp(log_prob, axis=1)
        self.labels[keys] = np.argmax(log_prob, axis=1)


def label_frame(memo, frame):
    """Label a frame with the memo's mixture.

    Parameters
    ----------
    memo : ColourMemo
    frame : ndarray of shape (h, w, 3), uint8, or (h, w), int32
        RGB, or packed colours (``video_io.open_video(..., packed=True)``).

    Returns
    -------
    labels : ndarray of shape (h, w), uint8
    log_likelihood : float
        Mean ln p(x_n) per pixel.
    """
    keys = frame.ravel() if frame.ndim == 2 else colour_keys(frame)
    labels, log_likelihood = memo.label(keys)
    return labels.reshape(frame.shape[:2]), log_likelihood


def refit(memo, frame, iteration=REFIT_ITERATIONS, tol=sg.TOL):
    """Run EM on a frame's colours, starting from the current parameters.

    As in ``segment``, EM runs on the colour histogram when that has several
    times fewer points than the frame has distinct colours. On the frames of
    a fast pan this took a quarter of the time of EM on the exact colours and
    ended within 0.04 nats per pixel of it (either side), well under
    ``REFIT_DROP``: a warm-started refit only has to follow the colours, and
    the labels still come from the exact E-step on every colour.

    Parameters
    ----------
    memo : ColourMemo
        Its mixture is updated in place and its E-steps forgotten.
    frame : ndarray of shape (h, w, 3), uint8
    iteration, tol : see ``GMM.fit``.

    Returns
    -------
    labels, log_likelihood : as ``label_frame``, under the new parameters.
    """
    colours, counts, _ = sg.distinct_colours(frame)
    colours_norm = (colours - memo.mean) / memo.std
    centres, bin_counts = sg.colour_histogram(colours_norm, counts)
    if len(centres) * 3 < len(colours):
        colours_norm, counts = centres, bin_counts
    memo.gmm.fit(colours_norm, iteration, weights=counts, tol=tol, progress=False)
    memo.reset()
    memo.learn(colour_keys(colours))
    return label_frame(memo, frame)


def track(frames, ncomp, iteration=100, tol=sg.TOL, seed=0, refit_drop=REFIT_DROP,
          refit_iterations=REFIT_ITERATIONS, model=None):
    """Segment a clip frame by frame, each frame starting from the last one's model.

    The first frame is fitted as an image is (``segment``). Its Z-score then
    stays fixed for the whole clip, so every frame's parameters are in the same
    units and can be compared. Each further frame is labelled by the E-step
    under the current mixture, and refitted only when it explains the frame
    worse than ``refit_drop`` (see ``REFIT_DROP``).

    Parameters
    ----------
    frames : iterable of ndarray of shape (h, w, 3), uint8, or (h, w), int32
        RGB or packed colours (``label_frame``), read one at a time; none is
        kept.
    ncomp : int
    iteration, tol, seed : for the first frame, see ``segment``.
    refit_drop : float, default=REFIT_DROP
        Nats per pixel.
    refit_iterations : int, default=REFIT_ITERATIONS
    model : MixtureModel, optional
        The starting mixture and its Z-score (8-bit RGB colours, no position),
        instead of a fit of the first frame; ``ncomp`` is then its K.

    Yields
    ------
    step : dict
        ``labels`` (h, w) uint8; ``means_rgb`` (K, 3), the components' means in
        the frame's units; ``log_likelihood``, mean ln p(x) per pixel;
        ``refit``, whether EM was re-run on this frame (False on the first,
        which is fitted from scratch). The first frame's step also has
        ``first``: the result of ``segment``.
    """
    frames = iter(frames)
    if model is None:
        first = sg.segment(_rgb(next(frames)), ncomp, iteration, tol, seed, progress=False)
    else:
        first = model.segment(_rgb(next(frames)))
    mean, std = first["mean"], first["std"]
    # A copy, so that refits leave the first frame's fit (its record) intact.
    gmm = copy.deepcopy(first["gmm"])
    reference = first["log_likelihood_history"][-1]
    yield {"labels": first["labels"], "means_rgb": gmm.mus * std + mean,
           "log_likelihood": reference, "refit": False, "first": first}
    memo = ColourMemo(gmm, mean, std)
    for frame in frames:
        labels, log_likelihood = label_frame(memo, frame)
        refitted = reference - log_likelihood > refit_drop
        if refitted:
            labels, log_likelihood = refit(memo, _rgb(frame), refit_iterations, tol)
            reference = log_likelihood
        yield {"labels": labels, "means_rgb": gmm.mus * std + mean,
               "log_likelihood": log_likelihood, "refit": refitted}


def _rgb(frame):
    """A frame as RGB, whether it is RGB or packed colours."""
    return frame if frame.ndim == 3 else unpack_frame(frame)


class FrameSampler:
    """Keeps the first, last and about the middle frame of a clip of unknown length.

    Frames at multiples of a stride are kept, at most ``size`` of them; when
    there would be more, the stride doubles and every other one is dropped. At
    the end the kept frame nearest the middle is within an eighth of the clip
    of it (for ``size`` 8), and memory holds ``size`` + 1 frames at the most.
    """

    def __init__(self, size=8):
        self.size, self.stride, self.kept, self.count, self.last = size, 1, {}, 0, None

    def add(self, item):
        """Offer the next frame's ``item`` (any object: frame, labels, ...)."""
        if self.count % self.stride == 0:
            self.kept[self.count] = item
            if len(self.kept) > self.size:
                self.stride *= 2
                self.kept = {i: kept for i, kept in self.kept.items() if i % self.stride == 0}
        self.last = item
        self.count += 1

    def picks(self):
        """[(index, item)] for the first, the middle and the last frame, each once."""
        middle = min(self.kept, key=lambda i: abs(i - (self.count - 1) / 2))
        picks = {0: self.kept[0], middle: self.kept[middle], self.count - 1: self.last}
        return sorted(picks.items())


def segment_video(video_path, n_components=None, *, options=None, out="results", fps=None,
                  progress=True, stem=None, show=False, overwrite=False, preset=None,
                  model=None, labels="mkv", **kwargs):
    """Segment one clip for one K and write its four files.

    Writes ``<stem>_k<K>_segmented.<gif|mp4>`` (each pixel painted with its
    component's mean colour), ``<stem>_k<K>_labels.mkv`` (each frame's
    labels, lossless: ``video_io.read_labels``; ``labels`` chooses),
    ``<stem>_k<K>_frames.png`` (the first, middle and last frames above
    their segmentation) and ``<stem>_k<K>.json``, each
    atomically, the clip and the labels frame by frame. Every argument is
    checked first (``gmmseg.params``).

    Parameters
    ----------
    video_path : str
        An MP4 (or any video ffmpeg reads), an animated GIF, or a folder of frames.
    n_components : int, optional
        K; default 4, or the model's K (the only one it takes) with ``model``.
    options : Options, optional
        ``max_iter``, ``tol`` and ``random_state`` fit the first frame (see
        ``gmmseg.segment``); the others are for images and must keep their
        defaults. Keyword arguments of those names replace some.
    out : str, default="results"
        Folder for the files (created if missing).
    fps : float, optional
        Frame rate to write; default: the input's. A GIF stores whole
        hundredths of a second between frames (``video_io.gif_delay``): the
        record gives the rate it plays at.
    progress : bool, default=True
        Show a tqdm bar over the frames.
    stem : str, optional
        File name prefix; default: the input's name without extension.
    show : bool, default=False
        Also open the frames figure in a window.
    overwrite : bool, default=False
        Replace the results of another input of the same name stem
        (``outputs.check_outputs_free``); a rerun on the same clip always may.
    preset : str, optional
        libx264's preset for the MP4 (``video_io.MP4_PRESETS``); default
        ``video_io.MP4_PRESET``. A faster one encodes with less CPU and lower
        quality or larger files; the labels do not depend on it. A GIF output
        refuses it.
    model : MixtureModel or str, optional
        The starting mixture (or its file), fitted on 8-bit RGB colours
        without position: the first frame is labelled with it, not fitted.
        The record's ``model`` says which.
    labels : {"mkv", "npy", "none"}, default="mkv"
        How the label frames are kept (``video_io.LABEL_FORMATS``): lossless
        grey H.264 in Matroska, about 1% of the raw size, any frame readable
        alone; the raw uint8 array of shape (frames, h, w); or not at all.

    Returns
    -------
    record : dict
        The first frame's fit as ``summary`` gives it (it fixes what each label
        means), with ``video`` in place of ``image``, plus ``frames``, ``fps``
        (as written), ``seconds`` (the whole clip, decoding and encoding
        included), ``seconds_per_frame``, ``refit_frames``,
        ``frame_log_likelihood``, ``share`` (each component's share of the
        clip's pixels), ``labels_file`` (its name, or None) and
        ``segmented_size`` ([h, w] of the segmented video: an MP4's sides are
        even, a row or column of an odd-sized clip repeated).
    """
    start = time.perf_counter()
    video_path = utils.file_path(video_path, "video_path")
    options = make_options(options, **kwargs)
    for name in IMAGE_OPTIONS:
        if getattr(options, name) != getattr(Options(), name):
            raise ParameterError(name, f"{name} is for images, not a clip")
    model_record = None
    if model is not None:
        from gmmseg.pipeline import resolve_model

        model, model_record = resolve_model(model)
        model.check_options(options)
        if (model.n_channels, model.options.color_space, model.options.spatial,
                model.top) != (3, "rgb", 0.0, 255.0):
            raise ParameterError("model", "model must be fitted on 8-bit RGB colours without "
                                          "position to label a clip")
        model.check_components(n_components)
        n_components = model.n_components
    ncomp = check_int(4 if n_components is None else n_components, "n_components", 1,
                      sg.MAX_COMPONENTS)
    params = check_video_params(fps, preset, labels)
    info, frames = video_io.open_video(video_path, packed=True)
    if params["preset"] is not None and info["container"] == "gif":
        raise ParameterError("preset", "preset is for an MP4; a GIF input is written as a GIF")
    fps = params["fps"] or info["fps"]
    if info["container"] == "gif":
        written = 1000 / video_io.gif_delay(fps)
        if abs(written - fps) > 0.01 * fps:
            warnings.warn(f"a GIF stores whole hundredths of a second between frames: "
                          f"{fps:g} frames/s is written as {written:g}", stacklevel=2)
        fps = written
    stem = stem or outputs.file_stem(video_path)
    names = outputs.OutputNames(out, stem, ncomp)
    outputs.prepare_out(out)
    source = outputs.fingerprint(video_path)
    with outputs.claim(out, stem, source, overwrite):
        outputs.check_outputs_free([names.record], video_path, source, overwrite)
        return _segment_clip(video_path, info, frames, ncomp, options, model, model_record,
                             source, names, stem, fps, params, progress, show, start)


def _segment_clip(video_path, info, frames, ncomp, options, model, model_record, source, names,
                  stem, fps, params, progress, show, start):
    """``segment_video`` once its arguments are checked and its outputs claimed."""
    first, log_likelihoods, refit_frames = None, [], []
    counts = np.zeros(ncomp, dtype=np.int64)
    sampler = FrameSampler()

    def write(labels, palette):
        video.write(labels, palette)
        labels_out.write(labels)
        counts[:] += utils.label_counts(labels, ncomp)

    # Writing frame n (painting it, piping it to the encoder) overlaps with
    # labelling frame n + 1; numpy and the pipe release the GIL. One frame in
    # flight keeps memory flat and brings a writer's error back at once.
    frames = _tee(frames, sampler)
    steps = track(frames, ncomp, options.max_iter, options.tol, options.random_state,
                  model=model)
    labels_file = names.labels_file(params["labels"])
    with video_io.video_writer(names.segmented(info["container"]), fps,
                               params["preset"] or video_io.MP4_PRESET) as video, \
            video_io.labels_writer(labels_file, fps, params["labels"]) as labels_out, \
            ThreadPoolExecutor(max_workers=1) as writer, \
            tqdm(steps, total=info["frames"], desc=f"video k={ncomp}", unit="frame",
                 disable=None if progress else True, leave=False) as bar:
        written = None
        # On a terminal tqdm's bar; in a log, where the bar is off, a line now and then.
        lines, reported = progress and not sys.stderr.isatty(), time.perf_counter()
        for step in bar:
            first = step.get("first", first)
            palette = np.clip(np.rint(step["means_rgb"]), 0, 255).astype(np.uint8)
            sampler.last[1] = step["labels"]
            if written is not None:
                written.result()
            written = writer.submit(write, step["labels"], palette)
            log_likelihoods.append(step["log_likelihood"])
            if step["refit"]:
                refit_frames.append(len(log_likelihoods) - 1)
            if lines and time.perf_counter() - reported >= PROGRESS_EVERY:
                reported = time.perf_counter()
                print(f"video k={ncomp}: frame {len(log_likelihoods)} of "
                      f"{info['frames'] or '?'}, {len(log_likelihoods) / (reported - start):.1f} "
                      f"frames/s", file=sys.stderr, flush=True)
        written.result()
        palette = first["means_rgb"][: first["gmm"].ncomp]
        picks = sampler.picks()
        figures.visualize_frames([_rgb(frame) for _, (frame, _) in picks],
                               [labels for _, (_, labels) in picks], palette,
                               [index for index, _ in picks], sampler.count,
                               share=counts[: len(palette)] / counts.sum(),
                               title=f"{stem}: GMM, k = {len(palette)}, {sampler.count} frames",
                               path=names.frames, show=show)
    seconds = time.perf_counter() - start
    record = sg.summary(first, video_path, ncomp, options.random_state)
    record = {"video": record.pop("image"), **record,
              "source_sha256": source, **({"model": model_record} if model_record else {}),
              "frames": len(log_likelihoods),
              "fps": fps, "seconds": seconds,
              "seconds_per_frame": seconds / len(log_likelihoods),
              "refit_frames": refit_frames, "frame_log_likelihood": log_likelihoods,
              "share": (counts / counts.sum()).tolist(),
              "labels_file": labels_file and os.path.basename(labels_file),
              "segmented_size": _segmented_size(first["labels"].shape, info["container"])}
    utils.write_json(names.record, record)
    return record


def _segmented_size(shape, container):
    """[h, w] of the segmented video: H.264's 4:2:0 needs even sides (``video_io``)."""
    h, w = shape
    return [h, w] if container == "gif" else [h + h % 2, w + w % 2]


def _tee(frames, sampler):
    """Pass frames on, offering each to ``sampler`` as [frame, labels-to-come]."""
    for frame in frames:
        sampler.add([frame, None])
        yield frame
