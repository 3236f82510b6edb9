"""Many images in one run: files, folders and globs, in worker processes or on a Dask cluster.

Each image is one task, ``process_image``: it reads the image, runs
``pipeline.segment_file`` and returns its summary rows, so a worker needs only
the paths and a shared file system. The tasks run on one of ``gmmseg.tasks``'
executors (this process, worker processes, a Dask cluster), at most ``jobs``
at once (a Dask cluster: its worker threads), so memory holds that many
images whatever the batch's length. One image that fails is reported and the
batch goes on; ``summary.csv`` lists every image and k, and a last line with
the totals. A shared model (``shared_model``) first has the workers count
each image's colours (``count_colours``) and fits once here.
"""

import csv
import glob
import io
import json
import os
import sys

import numpy as np
from tqdm import tqdm

import utils
from gmmseg import cluster, memory, outputs, pipeline, readers, selection, tasks
from gmmseg.model import check_poolable, fit_colour_counts
from gmmseg.model import count_colours as _count_colours
from gmmseg.options import make_options
from gmmseg.params import ParameterError, check_bool, check_components, check_int
from gmmseg.video_io import natural_key

__all__ = ["SUMMARY_FIELDS", "expand_inputs", "is_batch", "natural_key", "process_image",
           "run_batch"]

SUMMARY_FIELDS = ["image", "k", "n_components", "log_likelihood", "bic", "aic", "iterations",
                  "warm_up_iterations", "converged", "seconds", "n_regions", "pri", "voi",
                  "covering", "error"]

# A truth file for an image is found by the image's stem and one of these.
TRUTH_EXTENSIONS = (".npz", ".npy", ".mat", ".png", ".tif", ".tiff", ".bmp", ".gif")


def is_batch(patterns):
    """Whether ``--image`` values make a batch: several, a folder, or a glob."""
    return len(patterns) > 1 or any(os.path.isdir(p) or glob.has_magic(p) for p in patterns)


def _image_files(folder):
    from PIL import Image

    extensions = {*Image.registered_extensions(), *readers.TIFF_EXTENSIONS}
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder), key=natural_key)
            if not name.startswith(".") and os.path.isfile(os.path.join(folder, name))
            and (os.path.splitext(name)[1].lower() in extensions
                 or name.lower().endswith(readers.NIFTI_EXTENSIONS))]


def expand_inputs(patterns, *, folder_inputs=_image_files, match=os.path.isfile,
                  what="image file"):
    """The image files that paths, folders and glob patterns name, each once.

    Parameters
    ----------
    patterns : list of str
        Files; folders (their image files, not recursively, in natural order:
        ``img2`` before ``img10``); glob patterns (``photos/*.jpg``,
        ``data/**/*.png``), their matches in natural order.
    folder_inputs : callable, default: a folder's image files
        A folder's inputs (``clips.expand_clips`` gives its clips).
    match : callable, default=os.path.isfile
        Which of a pattern's matches are inputs.
    what : str, default="image file"
        What an input is, for the errors.

    Returns
    -------
    paths : list of str
        In the order given.

    Raises
    ------
    InputError
        For a name that is no file, a folder with no image, or a pattern
        matching nothing.
    """
    paths = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found = folder_inputs(pattern)
        elif os.path.exists(pattern):
            found = [pattern]
        elif glob.has_magic(pattern):
            found = sorted((p for p in glob.glob(pattern, recursive=True) if match(p)),
                           key=natural_key)
        else:
            raise utils.InputError(f"{pattern}: no such file")
        if not found:
            raise utils.InputError(f"{pattern}: {'holds' if os.path.isdir(pattern) else 'matches'}"
                                   f" no {what}")
        paths += found
    unique = {os.path.normpath(path): path for path in reversed(paths)}
    return [path for path in paths if unique[os.path.normpath(path)] is path]


def _patterns(patterns):
    """``patterns`` as a list of str: one path or pattern alone is a list of one."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)):
        raise ParameterError("patterns", f"patterns must be a list of paths or glob patterns, "
                                         f"not {type(patterns).__name__}")
    return [utils.file_path(pattern, "patterns") for pattern in patterns]


def pair_truths(paths, folder):
    """Each image's human segmentation in ``folder``, found by the image's stem."""
    if not os.path.isdir(folder):
        raise ParameterError("truth", f"truth {folder}: several images need a folder of "
                                      f"truths, one per image stem")
    by_stem = {}
    for name in os.listdir(folder):
        stem, extension = os.path.splitext(name)
        if extension.lower() in TRUTH_EXTENSIONS:
            by_stem.setdefault(stem, os.path.join(folder, name))
    missing = [path for path in paths if outputs.file_stem(path) not in by_stem]
    if missing:
        raise ParameterError("truth", f"truth {folder}: no truth for {len(missing)} image(s), "
                                      f"e.g. {missing[0]} (looked for <stem>.npz, .npy, .mat, "
                                      f".png ...)")
    return {path: by_stem[outputs.file_stem(path)] for path in paths}


def _row(record, error=""):
    truth = record.get("truth", {})
    row = {name: record.get(name, "") for name in SUMMARY_FIELDS}
    row.update(pri=truth.get("pri", ""), voi=truth.get("voi", ""),
               covering=truth.get("covering", ""), error=error)
    return row


def process_image(path, job, truth=None, threads=None, describe=str):
    """One batch task: segment one image file and write its outputs.

    Parameters
    ----------
    path : str
    job : dict
        The keywords of ``pipeline.segment_file`` that every image shares
        (``n_components``, ``options``, ``out``, ``overwrite``, ``k_max``,
        ``criterion``, ``model``).
    truth : str, optional
        This image's human segmentation.
    threads : int, optional
        Threads BLAS and OpenMP may use in this task (worker processes share
        the machine's cores).
    describe : callable, default=str
        The text of a refusal (a ``utils.InputError``) in the row (``run_batch``).

    Returns
    -------
    rows : list of dict
        One per k fitted (the chosen k's alone with "auto"), ``SUMMARY_FIELDS``
        as keys; for an image that failed, one row whose ``error`` says why.
    """
    return task_rows(path, threads, describe,
                     lambda: pipeline.segment_file(path, truth=truth, progress=False, **job))


def task_rows(path, threads, describe, work):
    """A task's rows: ``work()``'s records as rows, or its failure as one error row.

    ``work`` runs under ``threads`` BLAS/OpenMP threads (and EM threads,
    ``utils.em_threads``), with the allocator
    tuned before and memory handed back after (``gmmseg.memory``). The rows
    name the input by its record's ``image`` (a clip's record gives it too).
    """
    from threadpoolctl import threadpool_limits

    memory.tune_allocator()
    try:
        with threadpool_limits(limits=threads), utils.em_threads(threads):
            records = work()
    except utils.InputError as exc:
        return [_row({"image": path}, describe(exc))]
    except Exception as exc:  # noqa: BLE001 - one input's failure must not stop the batch
        return [_row({"image": path}, tasks.first_line(exc))]
    finally:
        memory.trim_memory()
    return [_row(record) for record in records]


def count_colours(path, options, threads=None, describe=str):
    """One task of a shared model's first pass: an image's distinct colours and counts.

    Returns
    -------
    counted : (colours, counts, top) or str
        ``distinct_colours``' first two and ``utils.max_value`` of the image,
        for ``model.fit_colour_counts`` (``model.count_colours``); or why the image cannot be used.
    """
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=threads):
            image = readers.read(path)[0]
            options.check_for(image.shape)
            return _count_colours(image)
    except utils.InputError as exc:
        return describe(exc)
    except Exception as exc:  # noqa: BLE001 - one image's failure must not stop the batch
        return tasks.first_line(exc)
    finally:
        memory.trim_memory()


def resume_settings(job):
    """What every finished image of ``job`` was run with: ``(ks, auto, settings)``.

    The k to look for, whether they are "auto", and the record fields the
    settings must have given (``seed``, the options, the model's path and
    SHA-256). The same for every image: ``run_batch`` asks once, not once an
    image (a model file would be read and hashed for each).
    """
    n_components, options, model = job["n_components"], job["options"], job["model"]
    auto = n_components == "auto"
    model_record = None
    if model is not None:
        model, model_record = pipeline.resolve_model(model)
        options = model.label_options(model.check_options(options))
        ks = [model.n_components]
    else:
        ks = (list(range(2, job["k_max"] + 1)) if auto
              else [n_components] if isinstance(n_components, int) else n_components)
    settings = {"seed": options.random_state, **options.record()}
    if model_record is not None:
        settings["model"] = model_record
    return ks, auto, settings


def finished_rows(path, job, expected=None):
    """The rows of an earlier run of ``path`` with these settings, or None.

    A run is finished when the last file it writes exists and was made from
    this image's content with the same settings (and the same model, if
    one labels the images): the sweep's JSON with several k (or "auto"), else
    the one k's record; and when every other file it writes is there too
    (``outputs.fit_files``; the sweep's figure).

    Parameters
    ----------
    path : str
    job : dict
        As ``process_image`` takes it.
    expected : tuple, optional
        ``resume_settings(job)``, if already known.
    """
    stem, out = outputs.file_stem(path), job["out"]
    ks, auto, settings = expected or resume_settings(job)
    sweep = outputs.sweep_base(out, stem, ks, auto)
    last = sweep + ".json" if sweep else outputs.OutputNames(out, stem, ks[0]).record
    try:
        with open(last) as f:
            record = json.load(f)
        if "criterion" in record:  # a sweep: its star (and the auto choice) too
            settings = {**settings, "criterion": job["criterion"]}
        if record.get("source_sha256") != outputs.fingerprint(path) or any(
                record.get(name) != value for name, value in settings.items()):
            return None
        wanted = [record["marked_k"]] if auto else ks
        files = [sweep + ".png"] if sweep and len(record["fits"]) > 1 else []
        rows = []
        for k in wanted:
            names = outputs.OutputNames(out, stem, k)
            with open(names.record) as f:
                fitted = json.load(f)
            files += outputs.fit_files(names, fitted)
            rows.append(_row(fitted))
        return rows if all(os.path.isfile(name) for name in files) else None
    except (OSError, ValueError, KeyError):
        return None


def run_batch(patterns, n_components=None, *, options=None, out="results", jobs=None,
              dask=None, resume=False, truth=None, overwrite=False, progress=True,
              k_max=selection.K_MAX, criterion="gain", model=None, shared_model=False,
              save_model=None, describe=str, channel_axis="auto", **kwargs):
    """Segment many images, each as ``pipeline.segment_file`` does one, and summarise them.

    Parameters
    ----------
    patterns : list of str
        Files, folders and glob patterns (``expand_inputs``).
    n_components, options, k_max, criterion, overwrite, model, channel_axis
        As ``pipeline.segment_file`` takes them, for every image; keyword
        arguments of the options' names replace some options.
    out : str, default="results"
        Folder for every image's outputs and ``summary.csv``.
    jobs : int, optional
        Worker processes on this machine; default: its cores. 1 runs the
        images in this process.
    dask : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``): the tasks
        go to its workers, which read the inputs and write the outputs on a
        file system they share with this machine; ``jobs`` is then ignored.
        The paths are made absolute here (the records and ``summary.csv``
        name them so), each worker must see them (``cluster.check_visible``),
        and the project's code goes to the cluster (``cluster.connect``).
    resume : bool, default=False
        Skip images whose outputs are already complete with these settings
        (``finished_rows``).
    truth : str, optional
        A folder of human segmentations, one per image stem (``pair_truths``).
    progress : bool, default=True
        A tqdm bar over the images, with an ETA.
    shared_model : bool, default=False
        Fit one mixture on all the images (the workers count each image's
        colours, the counts are pooled, one fit here: ``model.fit_colour_counts``)
        and label every image with it, so that label k is the same colour
        class in every image. Needs one ``n_components``; not with ``model``.
    save_model : str, optional
        With ``shared_model``: write that model there; the records name it.
    describe : callable, default=str
        The text of an image's refusal (a ``utils.InputError``) on stderr and in
        its row: the command line's names its flags (``cli.describe``). Sent
        to the workers: a module-level function.

    Returns
    -------
    rows : list of dict
        Every image's rows (``process_image``), in the order of the inputs; also
        written, with a line of totals, to ``out/summary.csv``.

    Raises
    ------
    ValueError
        ``utils.InputError`` before any image is fitted: a bad parameter, a
        name that matches no image, two images of one name stem, a missing
        truth, an unusable ``out``.
    KeyboardInterrupt
        After the images in flight have stopped and ``summary.csv`` holds the
        finished ones.
    """
    options = make_options(options, **kwargs)
    check_bool(shared_model, "shared_model")
    jobs = check_int(jobs if jobs is not None else os.cpu_count() or 1, "jobs", 1, 256)
    if model is not None:
        if shared_model:
            raise ParameterError(("shared_model", "model"), "shared_model fits a model and "
                                                            "model gives one; give one of them")
        loaded = pipeline.resolve_model(model)[0]
        loaded.check_options(options)
        loaded.check_components(n_components, k_max)
        ks = None
    else:
        ks = check_components(4 if n_components is None else n_components, k_max)
        ks = ks if ks == "auto" else ks[0] if len(ks) == 1 else ks
    if shared_model:
        if not isinstance(ks, int):
            raise ParameterError(("shared_model", "n_components"),
                                 "shared_model fits one model: give one n_components")
        check_poolable(options)
    if save_model is not None and not shared_model:
        raise ParameterError(("save_model", "shared_model"),
                             "save_model in a batch writes its shared model: add shared_model "
                             "(each image has its own mixture otherwise)")
    paths = expand_inputs(_patterns(patterns))
    if dask is not None:  # the workers may run in another folder, or on another machine
        paths, out = [os.path.abspath(path) for path in paths], os.path.abspath(out)
        truth, model, save_model = (_absolute(name) for name in (truth, model, save_model))
    check_stems(paths)
    truths = pair_truths(paths, truth) if truth is not None else {}
    outputs.prepare_out(out)
    if save_model is not None:
        pipeline.check_model_free(save_model, overwrite, [
            *paths, os.path.join(out, "summary.csv"),
            *(name for path in paths
              for name in outputs.OutputNames(out, outputs.file_stem(path), ks).files)])
    job = {"n_components": ks, "options": options, "out": out, "overwrite": overwrite,
           "k_max": k_max, "criterion": criterion, "model": model,
           "channel_axis": channel_axis}

    def run(executor, threads, slots, rows_by_path):
        if shared_model:
            shared = _fit_shared(executor, threads, slots, paths, ks, options,
                                 rows_by_path, progress, describe)
            if progress:  # the records say iterations 0: the fit happened here
                history = shared.gmm.log_likelihood_history
                tqdm.write(f"shared model: k={shared.n_components}, {shared.n_images} "
                           f"images, {shared.n_colours} colours, "
                           f"{max(len(shared.warm_up_history) - 1, 0)} warm-up + "
                           f"{len(history) - 1} EM iterations, log-likelihood "
                           f"{history[-1]:.4f} nats/pixel", file=sys.stderr)
            if save_model is not None:
                shared.save(save_model)
            job.update(model=shared if save_model is None else os.fspath(save_model),
                       n_components=None)
        if resume:
            expected = resume_settings(job)
            for path in paths:
                rows = None if path in rows_by_path else finished_rows(path, job, expected)
                if rows is not None:
                    rows_by_path[path] = rows
        todo = [path for path in paths if path not in rows_by_path]
        tasks.run_tasks(executor, slots, todo, rows_by_path,
                        lambda path: (process_image, path, job, truths.get(path), threads,
                                      describe),
                        _failed_row, _row_error, progress, "images")

    return execute(paths, out, jobs, dask, [
        *paths, *truths.values(), *([model] if isinstance(model, str) else [])], run)


def check_stems(paths):
    """Refuse inputs whose outputs would share a name stem in one ``out``."""
    stems = {}
    for path in paths:
        other = stems.setdefault(outputs.file_stem(path), path)
        if other != path:
            raise ParameterError("out", f"{other} and {path} share the name stem of their "
                                        f"outputs; run them into separate out folders")


def execute(paths, out, jobs, dask, inputs, run, what="images"):
    """Run a batch's tasks on its executor and write ``out/summary.csv``, whatever happens.

    Parameters
    ----------
    paths : list of str
        The batch's inputs, in the order of the summary.
    out : str
    jobs, dask
        As ``run_batch`` takes them (``tasks.make_executor``).
    inputs : list of str
        The files a Dask worker must see (``cluster.check_visible``).
    run : callable
        ``run(executor, threads, slots, rows_by_path)`` fills ``rows_by_path``,
        a list of rows for each path.
    what : str, default="images"
        What the inputs are, for the summary's totals line.

    Returns
    -------
    rows : list of dict
        Every path's rows, in order.
    """
    rows_by_path = {}
    executor, threads, slots = tasks.make_executor(jobs, dask)
    if dask is not None:
        try:
            cluster.check_visible(executor.client, inputs, [out])
        except BaseException:
            executor.shutdown()
            raise
    try:
        with executor:
            try:
                run(executor, threads, slots, rows_by_path)
            except KeyboardInterrupt:
                # The workers had the signal too: their atomic writes leave
                # nothing half-written. The queued tasks are dropped.
                executor.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        rows = [row for path in paths for row in rows_by_path.get(path, [])]
        write_summary(os.path.join(out, "summary.csv"), rows, len(paths), what)
    return rows


def _absolute(path):
    """A path as absolute, for workers elsewhere; anything else (None, a model) as it is."""
    return os.path.abspath(path) if isinstance(path, (str, os.PathLike)) else path


def _failed_row(path, why):
    return [_row({"image": path}, why)]


def _row_error(rows):
    return rows[0]["error"] if rows else ""


def _fit_shared(executor, threads, slots, paths, n_components, options, rows_by_path,
                progress, describe=str):
    """A shared model's first pass: every image's colours counted by the workers, one fit.

    An image that cannot be read, or whose channels or type differ from the
    first readable image's, gets its error row in ``rows_by_path`` and is not
    labelled.
    """
    counted = {}
    tasks.run_tasks(executor, slots, paths, counted,
                    lambda path: (count_colours, path, options, threads, describe),
                    lambda path, why: why, lambda result: "", progress, "counting colours")
    kinds = [_kind(counted[path]) for path in paths if not isinstance(counted[path], str)]
    # The kind most images have (the first of them on a tie) is the model's.
    kind = max(kinds, key=kinds.count) if kinds else None
    kept = []
    for path in paths:
        result = counted[path]
        if not isinstance(result, str) and _kind(result) != kind:
            result = (f"{_kind(result)} images; the shared model is fitted on the {kind} "
                      f"images, which most of the batch is")
        if isinstance(result, str):
            error = result if path in result else f"{path}: {result}"
            rows_by_path[path] = [_row({"image": path}, error)]
            print(f"error: {error}", file=sys.stderr)
            continue
        kept.append(result)
    if not kept:
        raise utils.InputError("no image of the batch can be counted for the shared model")
    return fit_colour_counts(kept, n_components, options, progress)


def _kind(counted):
    """'3-channel uint8' of an image's ``count_colours``."""
    colours = counted[0]
    return f"{colours.shape[1]}-channel {colours.dtype.name}"


def score_means(rows):
    """Mean PRI, VoI and Covering over the rows scored against humans.

    Parameters
    ----------
    rows : list of dict
        ``SUMMARY_FIELDS`` rows.

    Returns
    -------
    means : dict
        ``pri``, ``voi`` and ``covering``, each a mean or "" where no row has
        it (records written before Covering lack it); ``scored`` and
        ``covered``, the rows the means are over.
    """
    scored = [row for row in rows if row["pri"] != ""]
    covered = [row["covering"] for row in scored if row["covering"] != ""]
    return {"pri": np.mean([row["pri"] for row in scored]) if scored else "",
            "voi": np.mean([row["voi"] for row in scored]) if scored else "",
            "covering": np.mean(covered) if covered else "",
            "scored": len(scored), "covered": len(covered)}


def write_summary(path, rows, n_images, what="images"):
    """``summary.csv``: the rows, then one line of totals, atomically.

    The totals line gives how many of the images finished (fewer after an
    interruption), the rows, how many failed, the seconds spent fitting, and
    the mean PRI, VoI and Covering over the scored rows.
    """
    failed = sum(1 for row in rows if row["error"])
    finished = len({row["image"] for row in rows})
    means = score_means(rows)
    total = {name: "" for name in SUMMARY_FIELDS}
    total.update(image=f"total: {finished} of {n_images} {what}, {len(rows) - failed} rows, "
                       f"{failed} failed",
                 seconds=sum(float(row["seconds"] or 0) for row in rows),
                 pri=means["pri"], voi=means["voi"], covering=means["covering"])
    text = io.StringIO()
    writer = csv.DictWriter(text, SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([*rows, total])

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            f.write(text.getvalue())

    utils.write_atomic(path, write)
