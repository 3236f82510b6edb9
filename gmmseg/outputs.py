"""Where results go: every output name, provenance, collision checks, the files of a fit.

The one module that knows the file names (``OutputNames``, ``sweep_name``);
what each file holds is in README's Outputs and docs/cli.md. Every file is
written atomically (``utils.write_atomic``): an interrupted run leaves the old
file or the new one. A record keeps the ``fingerprint`` of its input, so that
a later run tells its own earlier outputs, which it may replace, from
another input's, which it may not (``check_outputs_free``).
"""

import contextlib
import fcntl
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import utils
from gmmseg.params import ParameterError

__all__ = ["OutputNames", "check_outputs_free", "claim", "file_stem", "fingerprint", "fit_files",
           "prepare_out", "remove_stale_temporaries", "save_fit", "sweep_base", "sweep_name"]


class OutputNames:
    """The files of one input and one k in a folder.

    Parameters
    ----------
    out : str
        The folder.
    stem : str
        The input's name without extension (``file_stem``).
    k : int
        The number of components asked for.

    Attributes
    ----------
    base : str
        ``<out>/<stem>_k<K>``, the prefix of every file below.
    record, labels, figure, regions_png, regions_npy, hierarchy, cuts, frames
        ``.json``, ``_labels.png``, ``_segmentation.png``, ``_regions.png``,
        ``_regions.npy``, ``_hierarchy.npz``, ``_hierarchy.png`` and
        ``_frames.png`` (a clip's figure); a clip's label frames in
        ``labels_file(labels_format)``, a volume's labels in
        ``labels_file("npy")`` and, in its input's format, ``labels_nifti``
        (``_labels.nii.gz``) or ``labels_tiff`` (``_labels.tif``).
    """

    def __init__(self, out, stem, k):
        self.base = os.path.join(out, f"{stem}_k{k}")
        self.record = self.base + ".json"
        self.labels = self.base + "_labels.png"
        self.figure = self.base + "_segmentation.png"
        self.regions_png = self.base + "_regions.png"
        self.regions_npy = self.base + "_regions.npy"
        self.hierarchy = self.base + "_hierarchy.npz"
        self.cuts = self.base + "_hierarchy.png"
        self.frames = self.base + "_frames.png"
        self.labels_nifti = self.base + "_labels.nii.gz"
        self.labels_tiff = self.base + "_labels.tif"

    @property
    def files(self):
        """Every file an image's run may write for this k (a clip's included)."""
        return [self.record, self.labels, self.figure, self.regions_png, self.regions_npy,
                self.hierarchy, self.cuts, self.labels_file("npy"), self.labels_file("mkv"),
                self.frames, self.segmented("mp4"), self.segmented("gif"), self.labels_nifti,
                self.labels_tiff]

    def labels_file(self, labels_format):
        """A clip's label frames, ``_labels.mkv`` or ``_labels.npy``; None for "none"."""
        return None if labels_format == "none" else f"{self.base}_labels.{labels_format}"

    def segmented(self, container):
        """A clip's segmented video, ``_segmented.mp4`` or ``.gif``."""
        return f"{self.base}_segmented.{container}"

    @property
    def pattern(self):
        """A glob of all of them, for the console."""
        return self.base + "*"


def sweep_name(stem, ks):
    """The sweep's file name without extension, after the k it compares.

    ``<stem>_sweep_k2-6`` for a run of consecutive k (``--k 2 3 4 5 6``, or
    ``--k auto`` up to 6), ``<stem>_sweep_k2_4_8`` otherwise: two sweeps over
    different k never share a file.
    """
    ks = list(ks)
    if ks == list(range(ks[0], ks[-1] + 1)):
        return f"{stem}_sweep_k{ks[0]}-{ks[-1]}"
    return f"{stem}_sweep_k" + "_".join(map(str, ks))


def sweep_base(out, stem, ks, auto=False):
    """Where a run's sweep files go, without the extension; None for one k (not "auto").

    Its JSON is the last file a run writes (``pipeline.segment_file``): batch
    ``--resume`` looks for it.
    """
    ks = list(ks)
    return os.path.join(out, sweep_name(stem, ks)) if auto or len(ks) > 1 else None


def file_stem(path):
    """A file's or folder's name without its extension: the prefix of its outputs."""
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    if name.lower().endswith(".nii.gz"):  # one extension in two parts
        return name[:-len(".nii.gz")]
    return os.path.splitext(name)[0]


def fingerprint(path):
    """What tells one input's content from another's, as a hex SHA-256.

    Of a file, its bytes; of a folder (a clip's frames), its file names and
    sizes. Recorded with every result, so that a later run can tell its own
    earlier outputs, which it may replace, from another input's.
    """
    import hashlib  # here: 7 ms of the CLI's start, which --help need not pay

    digest = hashlib.sha256()
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            digest.update(f"{name}\0{os.path.getsize(os.path.join(path, name))}\0".encode())
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_outputs_free(records, source_path, source, overwrite=False):
    """Refuse to replace the results of a different input.

    A rerun on the same input (another k, say) may replace its own results;
    an input of the same name stem but other content (``a.tif`` after
    ``a.bmp``, a clip after an image of the same name) may not.

    Parameters
    ----------
    records : iterable of str
        The JSON records a run is about to write; each stands for the files
        written beside it (same name prefix).
    source_path : str
        The input.
    source : str
        Its ``fingerprint``, which the caller records with its results too.
    overwrite : bool, default=False
        Replace them anyway.

    Raises
    ------
    ValueError
        ``ParameterError`` naming ``out`` and ``overwrite``, if a record
        exists and was made from other content (or, for a record that
        predates fingerprints, from a file of another name).
    """
    if overwrite:
        return
    for path in records:
        try:
            with open(path) as f:
                recorded = json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            recorded = {}
        made_from = recorded.get("image", recorded.get("video", "?"))
        if "source_sha256" in recorded:
            same = recorded["source_sha256"] == source
        else:
            same = os.path.basename(os.path.normpath(str(made_from))) == os.path.basename(
                os.path.normpath(os.fspath(source_path)))
        if not same:
            raise ParameterError(("out", "overwrite"),
                                 f"{path} holds the results of another input ({made_from}); "
                                 f"give out another folder, or overwrite to replace them")


# ``utils.temporary_prefix`` names: .tmp-<host>-<pid>-<mkstemp's letters, no "-"><suffix>.
_TEMPORARY = re.compile(r"^\.tmp-(?P<host>.+)-(?P<pid>\d+)-[^-]*$")


def remove_stale_temporaries(folder):
    """Remove the temporaries in ``folder`` whose writer is dead (killed while it wrote).

    Only this machine's: a process of another host (a shared file system)
    cannot be asked whether it lives, so its temporaries stay. A live
    process's, and names that are no temporary's, are never touched.

    Returns
    -------
    removed : list of str
        The files removed.
    """
    import socket

    host, removed = socket.gethostname(), []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None or match["host"] != host or _alive(int(match["pid"])):
            continue
        try:
            os.remove(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
        except OSError:  # removed meanwhile by another run, or not ours to remove
            pass
    return removed


def _alive(pid):
    """Whether process ``pid`` runs on this machine (a reused pid counts: kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


@contextlib.contextmanager
def claim(out, stem, source, overwrite=False):
    """Hold the outputs of one name stem in ``out`` for this run, against concurrent runs.

    Another run that claims the same stem meanwhile waits until this one has
    written its last file; then its collision check (``check_outputs_free``)
    sees this run's records: the same input replaces them, another input is
    refused. Another input is refused at once, before it fits, where the
    holder's claim says whose it is. So two runs never leave mixed files.

    The claim is ``flock`` on ``.<stem>.claim`` in ``out``, which holds the
    holder's input ``fingerprint``; the file is removed when the claim ends
    (a run killed meanwhile leaves it, and the kernel its lock: the next run
    takes it over and removes it). One machine's processes exclude each other;
    on a shared file system, as far as its locks reach other machines (NFSv4
    and Lustre pass ``flock`` on, some do not: then only the collision check
    holds).

    Parameters
    ----------
    out : str
    stem : str
    source : str
        This run's input's ``fingerprint``.
    overwrite : bool, default=False
        Wait for another input's run too, then replace its results.

    Raises
    ------
    ValueError
        ``ParameterError`` naming ``out`` and ``overwrite``: another input's run
        holds the stem.
    """
    path = os.path.join(out, f".{stem}.claim")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace")
                if holder and holder != source and not overwrite:
                    raise ParameterError(("out", "overwrite"),
                                         f"{out}: another run is writing the results of "
                                         f"another input named {stem} there; give out another "
                                         f"folder, or overwrite to replace them when it is "
                                         f"done") from None
                fcntl.flock(fd, fcntl.LOCK_EX)  # the same input's, or unknown yet: wait
            if _same_file(fd, path):  # else its holder removed it: claim the new one
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, source.encode(), 0)
        yield
    finally:
        try:
            os.remove(path)  # still holding it: no run waits on a file it cannot see
        except OSError:
            pass
        os.close(fd)


def _same_file(fd, path):
    """Whether ``path`` still names the open file ``fd`` (a claim not removed meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def prepare_out(out):
    """Create the output folder and make sure files can be written in it.

    Called before any fitting, so that a folder that cannot take the results
    fails in a second, not after the whole fit; it also removes what a run
    killed while it wrote there left (``remove_stale_temporaries``).

    Raises
    ------
    ValueError
        ``ParameterError`` naming ``out``, if it is a file, cannot be created,
        or does not take a file.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ParameterError("out", f"out {out}: exists and is not a folder")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ParameterError("out", f"out {out}: cannot write there "
                                    f"({exc.strerror or exc})") from None
    remove_stale_temporaries(out)


def fit_files(names, record):
    """The files ``save_fit`` writes for a fit whose record is ``record``.

    The record says which: ``n_regions`` the region map (a PNG up to 2**16
    regions, else ``.npy``), ``fine_regions`` the hierarchy and its figure.
    """
    files = [*label_files(names, record.get("input")), names.figure, names.record]
    if "fine_regions" in record:
        files += [names.hierarchy, names.cuts]
    if "n_regions" in record:
        files.append(names.regions_png if record["n_regions"] <= 2**16 else names.regions_npy)
    return files


def label_files(names, source):
    """Where a fit's labels go: a PNG for a 2-D image; for a volume a ``.npy`` and a file
    in its input's format (``source``, a record's ``input``), NIfTI or TIFF."""
    if source is None or len(source["spatial_shape"]) == 2:
        return [names.labels]
    return [names.labels_file("npy"),
            names.labels_nifti if source["format"] == "nifti" else names.labels_tiff]


def write_volume_labels(names, source, labels):
    """Write a volume's labels (``label_files``): ``.npy``, and NIfTI with the input's
    affine or a multi-page TIFF, each atomically."""
    npy, other = label_files(names, source)
    utils.write_atomic(npy, lambda tmp: np.save(tmp, labels))
    if source["format"] == "nifti":
        import gzip

        import nibabel

        # As bytes: nibabel.save goes by the name, and a temporary's ends in ".gz" alone.
        data = gzip.compress(nibabel.Nifti1Image(labels, np.asarray(source["affine"]))
                             .to_bytes(), compresslevel=6)

        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(data)

        utils.write_atomic(other, write)
    else:
        import tifffile

        utils.write_atomic(other, lambda tmp: tifffile.imwrite(
            tmp, labels, photometric="minisblack", metadata={"axes": "ZYX"}))


def save_fit(image, segmentation, record, names, stem, show=False):
    """Write one fit's files: label map, figure, record; regions and hierarchy if any.

    Parameters
    ----------
    image : ndarray of shape (h, w, c) or (z, y, x, c)
    segmentation : Segmentation
    record : dict
        The fit's record (``segmentation_GMM.summary`` and the options): its
        ``k``, ``n_components``, ``n_colours``, ``means_rgb`` and histories
        are drawn; its ``input`` says where a volume's labels go
        (``label_files``).
    names : OutputNames
    stem : str
        For the figures' titles.
    show : bool, default=False
        Also open the figures in windows.

    The region map is a 16-bit PNG, or a ``.npy`` when there are more regions
    than 16 bits can number; the hierarchy an ``.npz`` and a figure of cuts.
    The record is written last: its presence says the fit's files are there.
    """
    from gmmseg import figures
    from gmmseg.hierarchy import save_hierarchy

    regions = segmentation.regions
    if segmentation.merges is not None:
        save_hierarchy(names.hierarchy, segmentation.fine, segmentation.merges)
        figures.visualize_cuts(image, segmentation.fine, segmentation.merges,
                               record["n_regions"], title=f"{stem}: region hierarchy from the "
                               f"GMM, k = {record['k']}", path=names.cuts, show=show,
                               order=record["merge_order"])
    if regions is not None and regions.max() < 2**16:
        utils.write_png(names.regions_png, regions.astype(np.uint16))
    elif regions is not None:
        utils.write_atomic(names.regions_npy, lambda tmp: np.save(tmp, regions))
    fitted = record["n_components"]
    asked = "" if fitted == record["k"] else (
        f" (k = {record['k']} asked; the image has {record['n_colours']} colours)")
    # Pillow compresses without holding the GIL: the label map is written on
    # the other core while matplotlib draws (0.1 s at 11 MP).
    shown, (labels,), (means,) = figures.display_view(image, [segmentation.labels],
                                                       [np.asarray(record["means_rgb"])])
    with ThreadPoolExecutor(max_workers=1) as pool:
        labels_written = pool.submit(
            *((utils.write_png, names.labels) if image.ndim == 3 else
              (write_volume_labels, names, record["input"])), segmentation.labels)
        utils.visualize(shown, labels, means, record["log_likelihood_history"],
                        title=(f"{stem}: GMM, k = {fitted}{asked}, "
                               f"log-likelihood {record['log_likelihood']:.3f} nats/pixel"),
                        path=names.figure, show=show, regions=regions,
                        warm_up_history=record["warm_up_log_likelihood_history"])
        labels_written.result()
    # Another input's label files of this name (replaced with overwrite) would
    # sit beside this fit's, and not match it.
    kept = set(label_files(names, record.get("input")))
    for stale in (names.labels, names.labels_file("npy"), names.labels_nifti, names.labels_tiff):
        if stale not in kept and os.path.exists(stale):
            os.remove(stale)
    utils.write_json(names.record, record)
