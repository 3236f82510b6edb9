"""Many clips in one run: files, folders and globs of videos, one clip a task.

The clips' counterpart of ``gmmseg.batch``, on the same executors
(``batch.execute``: this process, worker processes, a Dask cluster) with the
same ``summary.csv``: each clip is one task, ``process_clip``, which runs
``video.segment_video`` for each k and returns a row per k; a clip that fails
is one row, and the others go on. ``--resume`` skips the clips whose files
are all there from the same content and settings (``finished_clip``).
"""

import glob
import json
import os

import utils
from gmmseg import batch, outputs, tasks
from gmmseg.batch import _absolute, _failed_row, _row, _row_error
from gmmseg.params import check_components, check_int, check_video_params
from gmmseg.video_io import natural_key

__all__ = ["VIDEO_EXTENSIONS", "expand_clips", "finished_clip", "is_clip_batch",
           "process_clip", "run_clips"]

# What a folder's clips are recognised by (ffmpeg reads more: name them one by one).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".gif")


def _clip_files(folder):
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder), key=natural_key)
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
            and os.path.isfile(os.path.join(folder, name))]


def is_clip_batch(patterns):
    """Whether ``--video`` values make a batch: several, a glob, or a folder of clips.

    A folder of image frames is one clip, as ``--video folder`` always was.
    """
    return len(patterns) > 1 or any(glob.has_magic(p) or (os.path.isdir(p) and _clip_files(p))
                                    for p in patterns)


def expand_clips(patterns):
    """The clips that paths, folders and glob patterns name, each once, in order.

    Parameters
    ----------
    patterns : list of str
        Video files; folders of clips (their files of ``VIDEO_EXTENSIONS``, in
        natural order) or of frames (the folder is one clip); glob patterns,
        whose matches may be either.

    Raises
    ------
    InputError
        For a name that is nothing, or a pattern with no match.
    """
    return batch.expand_inputs(patterns, folder_inputs=_folder_clips, match=os.path.exists,
                               what="clip")


def _folder_clips(folder):
    """A folder's clips, or the folder itself when it holds none (a clip of frames)."""
    return _clip_files(folder) or [folder]


def process_clip(path, job, threads=None, describe=str):
    """One task: segment one clip for each k of ``job`` and write its files.

    Parameters
    ----------
    path : str
    job : dict
        ``ks`` and the keywords of ``video.segment_video`` every clip shares.
    threads : int, optional
        Threads BLAS and OpenMP may use (worker processes share the cores).
    describe : callable, default=str
        The text of a refusal in the row (``batch.run_batch``).

    Returns
    -------
    rows : list of dict
        One per k (``batch.SUMMARY_FIELDS``, the clip's path as ``image``); for a
        clip that failed, one row whose ``error`` says why.
    """
    from gmmseg.video import segment_video

    keywords = {name: value for name, value in job.items() if name != "ks"}
    return batch.task_rows(path, threads, describe, lambda: [
        _named(segment_video(path, k, progress=False, **keywords)) for k in job["ks"]])


def _named(record):
    """A clip's record with its path as ``image``, the column the summary names inputs by."""
    return {**record, "image": record["video"]}


def finished_clip(path, job, model_record=None):
    """The rows of an earlier run of ``path`` with these settings, or None.

    Finished: for each k the record was made from this clip's content with
    the same seed and model (``model_record``: its path and SHA-256, as
    ``pipeline.resolve_model`` gives them), the labels in the same format (and
    the frame rate, if one is given), and the segmented clip, the labels and
    the frames figure are all there.
    """
    stem, rows = outputs.file_stem(path), []
    try:
        source = outputs.fingerprint(path)
        for k in job["ks"]:
            names = outputs.OutputNames(job["out"], stem, k)
            with open(names.record) as f:
                record = json.load(f)
            labels = names.labels_file(job["labels"])
            if (record.get("source_sha256") != source
                    or record.get("seed") != job["options"].random_state
                    or record.get("labels_file") != (labels and os.path.basename(labels))
                    or job["fps"] is not None and record.get("fps") != job["fps"]
                    or record.get("model") != model_record):
                return None
            files = [names.frames, *([labels] if labels else [])]
            if not all(os.path.isfile(name) for name in files) or not any(
                    os.path.isfile(names.segmented(kind)) for kind in ("mp4", "gif")):
                return None
            rows.append(_row(_named(record)))
    except (OSError, ValueError, KeyError):
        return None
    return rows


def run_clips(patterns, n_components=None, *, options=None, out="results", jobs=None,
              dask=None, resume=False, overwrite=False, progress=True, fps=None, preset=None,
              labels="mkv", model=None, describe=str):
    """Segment many clips, each as ``video.segment_video`` does one, and summarise them.

    Parameters
    ----------
    patterns : list of str
        Video files, folders and glob patterns (``expand_clips``).
    n_components : int or list of int, optional
        K, or several; default 4 (the model's with ``model``).
    options, fps, preset, labels, model, overwrite
        As ``video.segment_video`` takes them, for every clip.
    out, jobs, dask, resume, progress, describe
        As ``batch.run_batch`` takes them: one clip a worker at a time.

    Returns
    -------
    rows : list of dict
        Every clip's rows, in order; also in ``out/summary.csv``.
    """
    from gmmseg.options import make_options

    options = make_options(options)
    check_video_params(fps, preset, labels)
    jobs = check_int(jobs if jobs is not None else os.cpu_count() or 1, "jobs", 1, 256)
    ks = [None] if model is not None and n_components is None else check_components(
        4 if n_components is None else n_components)
    if ks == "auto":
        raise utils.InputError("n_components auto is for images; give a clip its k")
    paths = expand_clips(batch._patterns(patterns))
    if dask is not None:
        paths, out, model = [os.path.abspath(p) for p in paths], os.path.abspath(out), \
            _absolute(model)
    batch.check_stems(paths)
    outputs.prepare_out(out)
    job = {"ks": ks, "options": options, "out": out, "overwrite": overwrite, "fps": fps,
           "preset": preset, "labels": labels, "model": model}
    model_record = None
    if model is not None:  # read and hashed once, not once a clip
        from gmmseg.pipeline import resolve_model

        loaded, model_record = resolve_model(model)
        job["ks"] = [loaded.n_components] if ks == [None] else ks

    def run(executor, threads, slots, rows_by_path):
        if resume:
            for path in paths:
                rows = finished_clip(path, job, model_record)
                if rows is not None:
                    rows_by_path[path] = rows
        todo = [path for path in paths if path not in rows_by_path]
        tasks.run_tasks(executor, slots, todo, rows_by_path,
                        lambda path: (process_clip, path, job, threads, describe),
                        _failed_row, _row_error, progress, "clips")

    return batch.execute(paths, out, jobs, dask, [
        *(p for p in paths if os.path.isfile(p)), *([model] if isinstance(model, str) else [])],
        run, "clips")
