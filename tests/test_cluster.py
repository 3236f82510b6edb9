"""A Dask cluster as users start it: the ``dask`` command line, another folder, no
PYTHONPATH, nanny workers; relative paths, a worker killed mid-batch, the cluster
stopped by its own means."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import SCRIPT
from PIL import Image
from test_batch import make_images, outputs

from gmmseg import cli as command_line
from gmmseg import cluster

distributed = pytest.importorskip("dask.distributed")


def dask_command():
    """The ``dask`` command beside this Python, or ``python -m dask``."""
    found = shutil.which("dask", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "dask"]


def clean_environment():
    """This environment without anything that would put the project on sys.path."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def command_line_cluster(tmp_path):
    """A scheduler and two nanny workers of one thread, started in a folder of their own.

    Yields the scheduler's address and the folder; stops the cluster with
    ``Client.shutdown`` (docs/batch.md) and checks that every process ended.
    """
    folder = tmp_path / "cluster"
    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    env = clean_environment()
    logs = [open(folder / f"{name}.log", "w") for name in ("scheduler", "worker1", "worker2")]
    procs = [subprocess.Popen([*dask_command(), "scheduler", "--scheduler-file",
                               str(scheduler_file), "--port", "0", "--no-dashboard"],
                              cwd=folder, env=env, stdout=logs[0], stderr=subprocess.STDOUT)]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    procs += [subprocess.Popen([*dask_command(), "worker", "--scheduler-file",
                                str(scheduler_file), "--nthreads", "1", "--no-dashboard",
                                "--local-directory", str(folder / "scratch")],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
              for log in logs[1:]]
    try:
        with distributed.Client(scheduler_file=str(scheduler_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield address, folder
        with distributed.Client(address, timeout="30s") as client:
            client.shutdown()
        for proc in procs:
            assert proc.wait(timeout=60) is not None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def test_command_line_workers_elsewhere_run_a_batch_of_relative_paths(command_line_cluster,
                                                                      tmp_path):
    address, folder = command_line_cluster
    client_folder = tmp_path / "client"
    make_images(client_folder / "in", 3)
    assert command_line.main(["--image", str(client_folder / "in"), "--k", "3", "--jobs", "1",
                              "--out", str(tmp_path / "local")]) == 0
    proc = subprocess.run([sys.executable, SCRIPT, "--image", "in", "--k", "3", "--out", "out",
                           "--dask", address], cwd=client_folder, env=clean_environment(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "3 image(s), 0 failed" in proc.stdout
    found = outputs(client_folder / "out")
    local = outputs(tmp_path / "local")
    assert found.keys() == local.keys()
    for name, value in local.items():
        if name.endswith(".json"):  # the workers were given absolute paths
            assert found[name].pop("image") == str(client_folder / "in" / name.split("_")[0]
                                                   ) + ".png"
            value.pop("image")
        assert found[name] == value
    assert not list(folder.rglob("*_labels.png"))  # nothing written in the workers' folder
    with open(client_folder / "out" / "summary.csv") as f:
        assert str(client_folder / "in" / "img1.png") in f.read()


def test_a_nanny_worker_killed_mid_batch_costs_no_image(command_line_cluster, tmp_path):
    address, folder = command_line_cluster
    rng = np.random.default_rng(1)
    os.makedirs(tmp_path / "in")
    for i in range(10):  # large enough that the tasks in flight are still running
        image = np.repeat(rng.integers(0, 256, (4, 1, 3)), 300, axis=0) + np.zeros((1, 400, 1))
        image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / "in" / f"img{i + 1}.png")
    with distributed.Client(address) as client:
        pids = list(client.run(os.getpid).values())
    scheduler_file = os.path.relpath(folder / "scheduler.json", tmp_path)  # not the address
    proc = subprocess.Popen([sys.executable, SCRIPT, "--image", "in", "--k", "4", "--out",
                             "out", "--dask", scheduler_file], cwd=tmp_path,
                            env=clean_environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("images: 1/10"):
            os.kill(pids[0], signal.SIGKILL)
    stdout = proc.stdout.read()
    assert proc.wait(timeout=300) == 0, "".join(lines)
    assert "10 image(s), 0 failed" in stdout
    assert len(list((tmp_path / "out").glob("img*_k4_labels.png"))) == 10
    with distributed.Client(address) as client:  # the nanny's new worker has the code too
        client.wait_for_workers(2, timeout=60)
        seen = client.run(cluster._unseen, [str(tmp_path / "in" / "img1.png")],
                          [str(tmp_path / "out")])
    assert len(seen) == 2 and set(seen.values()) == {None}


def test_a_path_a_worker_cannot_see_is_named_before_any_task(tmp_path):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as local:
        with distributed.Client(local) as client:
            cluster.check_visible(client, [__file__], [str(tmp_path)])  # seen: no error
            with pytest.raises(ValueError, match=r"dask: the worker at tcp://\S+ cannot see "
                                                 r"\S+gone\.png; .*same paths") as info:
                cluster.check_visible(client, [__file__, str(tmp_path / "gone.png")],
                                      [str(tmp_path)])
            assert info.value.parameters == ("dask",)
            with pytest.raises(ValueError, match="cannot see .*nowhere"):
                cluster.check_visible(client, [], [str(tmp_path / "nowhere")])


def test_the_code_archive_is_the_same_bytes_for_the_same_code_and_imports(tmp_path):
    name, data = cluster.code_archive()
    assert cluster.code_archive() == (name, data)
    path = tmp_path / name
    path.write_bytes(data)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import gmmseg.batch, utils, "
             "segmentation_GMM; print(gmmseg.batch.__file__)")
    proc = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=tmp_path,
                          env=clean_environment(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == os.path.join(str(path), "gmmseg", "batch.py")


@pytest.mark.parametrize("processes", [True, False])
def test_nothing_is_shipped_into_this_process(processes):
    import utils

    before = (list(sys.path), utils.InputError, sys.modules["gmmseg.params"].ParameterError)
    where = {"host": "127.0.0.1"} if processes else {}  # threads: Dask's in-process transport
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=processes,
                                  dashboard_address=None, **where) as local:
        with distributed.Client(local) as client:  # its scheduler runs here
            shipped = cluster.ship_code(client)
            assert client.run(cluster._unseen, [__file__], []) == {
                address: None for address in client.scheduler_info()["workers"]}
    assert shipped == (["workers"] if processes else [])
    import utils as again

    assert (list(sys.path), again.InputError,
            sys.modules["gmmseg.params"].ParameterError) == before
