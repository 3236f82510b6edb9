"""A Dask cluster as its users have it: the project's code shipped to it, the paths checked.

``connect`` opens a ``dask.distributed.Client`` and hands the scheduler and
every worker (those that join later too) this project's code, with Dask's own
upload plugins: the scheduler unpickles each task and the workers run it, and
neither needs the project installed or on its ``PYTHONPATH``, only the
requirements. ``check_visible`` asks every worker, before the first task,
whether it sees the batch's files where the client does: the workers read the
images and write the outputs themselves.
"""

import hashlib
import io
import os
import socket
import zipfile

from gmmseg.params import ParameterError

__all__ = ["check_visible", "code_archive", "connect", "ship_code"]

# The lab's two modules beside the package: the package imports them.
_MODULES = ("segmentation_GMM.py", "utils.py")


def connect(address, timeout="10s"):
    """A client of the scheduler at ``address``, the project's code shipped.

    Parameters
    ----------
    address : str
        The scheduler's address (``tcp://host:8786``), or the JSON file that
        ``dask scheduler --scheduler-file`` writes.
    timeout : str, default="10s"

    Raises
    ------
    ParameterError
        Naming ``dask``: Dask is not installed, or no scheduler answers.
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise ParameterError("dask", "dask needs Dask: pip install -r "
                                     "requirements-dask.txt") from None
    try:
        if os.path.isfile(address):
            client = Client(scheduler_file=address, timeout=timeout)
        else:
            client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, KeyError) as exc:  # KeyError: a JSON without one
        raise ParameterError("dask", f"dask {address}: no scheduler answers ({exc})") from None
    try:
        ship_code(client)
    except BaseException:
        client.close()
        raise
    return client


def code_archive():
    """The project's code as a zip archive, the same bytes for the same code.

    Returns
    -------
    name : str
        ``gmmseg-<first 12 hex digits of its SHA-256>.zip``.
    data : bytes
        The lab's modules and the package's files (no ``__pycache__``), at
        their paths from the project's folder, in sorted order, with one fixed
        date: a zip archive on ``sys.path`` imports as the folder would.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = list(_MODULES)
    for folder, dirs, files in os.walk(os.path.join(root, "gmmseg")):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        names += [os.path.relpath(os.path.join(folder, name), root) for name in files
                  if not name.endswith(".pyc")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(names):
            entry = zipfile.ZipInfo(name.replace(os.sep, "/"), date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            with open(os.path.join(root, name), "rb") as f:
                archive.writestr(entry, f.read())
    data = buffer.getvalue()
    return f"gmmseg-{hashlib.sha256(data).hexdigest()[:12]}.zip", data


def ship_code(client):
    """Upload the project's code to the scheduler and every worker, present and future.

    Dask's ``SchedulerUploadFile`` and ``UploadFile`` plugins (what
    ``Client.upload_file`` registers) put the archive first on each one's
    ``sys.path`` and import it; as registered plugins they reach workers that
    join later or that a nanny restarts. Named after the archive's digest and
    idempotent, the same code is uploaded once a cluster, not once a run. One
    cluster runs one version of the project at a time: two clients with
    different code would each replace the other's modules.

    Nothing goes where it would run in this process: the scheduler of a
    ``LocalCluster`` (always here), its workers with ``processes=False``.
    Uploading imports the archive's modules anew (``importlib.reload``), and
    here that would give ``utils.InputError`` and the rest new classes under
    the feet of the code already running (measured: the command line then
    let a refusal through as a traceback); this process has the code anyway.

    Returns
    -------
    shipped : list of str
        Where the code went: "scheduler", "workers", both or neither.
    """
    import tempfile

    from distributed.diagnostics.plugin import SchedulerUploadFile, UploadFile

    here = (socket.gethostname(), os.getpid())
    targets = []
    if (client.run_on_scheduler(socket.gethostname),
            client.run_on_scheduler(os.getpid)) != here:
        targets.append(("scheduler", SchedulerUploadFile))
    hosts, pids = client.run(socket.gethostname), client.run(os.getpid)
    if here not in {(hosts.get(worker), pid) for worker, pid in pids.items()}:
        targets.append(("workers", UploadFile))
    name, data = code_archive()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        for _, plugin_type in targets:
            plugin = plugin_type(path, load=True)  # reads the file here
            plugin.idempotent = True
            client.register_plugin(plugin, name=name[:-len(".zip")])
    return [target for target, _ in targets]


def check_visible(client, files, folders):
    """Refuse a batch that some worker cannot read or write where the client does.

    Parameters
    ----------
    client : dask.distributed.Client
    files : list of str
        Absolute paths every worker must be able to read.
    folders : list of str
        Absolute paths of folders every worker must be able to write in.

    Raises
    ------
    ParameterError
        Naming ``dask``, the first worker and the first path it cannot see.
    """
    unseen = client.run(_unseen, list(files), list(folders))
    for worker, path in sorted(unseen.items()):
        if path is not None:
            raise ParameterError("dask", f"dask: the worker at {worker} cannot see {path}; "
                                         f"the workers read the images and write the outputs "
                                         f"themselves, so they need the same files at the same "
                                         f"paths (a shared file system)")


def _unseen(files, folders):
    """On a worker: the first of ``files`` it cannot read, or of ``folders`` it cannot write."""
    for path in files:
        if not (os.path.isfile(path) and os.access(path, os.R_OK)):
            return path
    for path in folders:
        if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
            return path
    return None
